"""Stack files as the Pulumi CLI reads them, for the operator side (labstack/stacks/stackfile.py) to read them the same way.

The CLI reads stacks/Pulumi.<stack>.yaml with Go's gopkg.in/yaml.v3 (v3.0.1), in two passes
(pulumi/pulumi sdk/go/common/workspace/loaders.go, `LoadProjectStackBytes`): the file is decoded into plain values,
keys without a namespace are moved into the project's (`stackConfigNamespacedWithProject`), the result is encoded
to YAML again and decoded into the config map (sdk/go/common/resource/config/object.go, `unmarshalObject`). What the
program receives is what survives both passes, so this module reads scalars as yaml.v3's `resolve` (resolve.go) does
and then as the second pass hands them on:

* numbers: `_` is dropped, then Go's `strconv.ParseInt(text, 0, 64)`: `0x1F`, `0o17`, `0b101` and the YAML 1.1
  octal `01234` (668) are numbers, `1_000` is 1000; a float that is a whole number comes back as an int (yaml.v3
  encodes 1e3 as `1000`);
* timestamps: an unquoted `2026-01-01` is a time.Time, which the second pass turns into Go's `Time.String()`,
  "2026-01-01 00:00:00 +0000 UTC"; one with a zone offset depends on the time zone of the machine running
  `pulumi`, so it is refused here ("quote it");
* booleans and nulls: only true/True/TRUE, false/False/FALSE, ~/null/Null/NULL and the empty value (`yes`, `on`
  stay text);
* `<<` is a merge key (yaml.v3's decode.go `merge`: the map's own keys win, then earlier merged maps);
* a tab after a value (`key: value<TAB>`) is blank space, as in libyaml's scanner (PyYAML refuses every tab).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Optional

import yaml

NULL, BOOL, INT, FLOAT, STR = (f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float", "str"))
TIMESTAMP, MERGE = "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:merge"
_NULLS = ("", "~", "null", "Null", "NULL")
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_SPECIAL_FLOATS = {".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan}
_SPECIAL_FLOATS.update({f"{sign}{inf}": (-math.inf if sign == "-" else math.inf)
                        for sign in ("", "+", "-") for inf in (".inf", ".Inf", ".INF")})
# yaml.v3's yamlStyleFloat, and the forms Go's strconv.ParseInt(s, 0, 64) accepts (its base prefixes and the legacy
# leading-zero octal).
_YAML_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_GO_INT = re.compile(r"^([-+]?)(?:0[xX]([0-9a-fA-F]+)|0[oO]([0-7]+)|0[bB]([01]+)|0([0-7]*)|([1-9][0-9]*))$")
# yaml.v3's allowedTimestampFormats: 2006-1-2T15:4:5.999999999Z07:00 (also with t), "2006-1-2 15:4:5.999999999",
# 2006-1-2.
_TIMESTAMP = re.compile(r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:(?:([Tt])|( ))([0-9]{1,2}):([0-9]{1,2}):"
                        r"([0-9]{1,2})(\.[0-9]{1,9})?(Z|[-+][0-9]{2}:[0-9]{2})?)?$")
_INT64 = (-(2 ** 63), 2 ** 63 - 1)


class AmbiguousValue(ValueError):
    """A value Pulumi reads in a way that depends on where it runs; the message says how to write it."""


def _go_int(text: str) -> Optional[int]:
    """strconv.ParseInt(text, 0, 64), then ParseUint (no sign); None where both fail (yaml.v3 then tries a float)."""
    match = _GO_INT.match(text)
    if not match:
        return None
    sign, hexa, octal, binary, legacy_octal, decimal = match.groups()
    if hexa is not None:
        number = int(hexa, 16)
    elif octal is not None:
        number = int(octal, 8)
    elif binary is not None:
        number = int(binary, 2)
    elif legacy_octal is not None:
        number = int(legacy_octal or "0", 8)
    else:
        number = int(decimal)
    number = -number if sign == "-" else number
    if _INT64[0] <= number <= _INT64[1] or (not sign and number < 2 ** 64):
        return number
    return None


def _days_in(year: int, month: int) -> int:
    import calendar

    return calendar.monthrange(year, month)[1]


def _timestamp(text: str) -> Optional[str]:
    """Go's Time.String() of the time yaml.v3 parses from text, or None when it is no timestamp. AmbiguousValue for
    one with a zone offset: Go names the zone after the local time zone of the machine running `pulumi`."""
    match = _TIMESTAMP.match(text)
    if not match:
        return None
    year, month, day, t_sep, space_sep, hour, minute, second, fraction, zone = match.groups()
    year, month, day = int(year), int(month), int(day)
    if not 1 <= month <= 12 or not 1 <= day <= _days_in(year, month):
        return None
    if hour is None:
        hour = minute = second = "0"
    elif t_sep and zone is None or space_sep and zone is not None:
        return None  # the T form needs a zone, the space form takes none
    if int(hour) > 23 or int(minute) > 59 or int(second) > 59:
        return None
    if zone not in (None, "Z"):
        raise AmbiguousValue(f"Pulumi reads an unquoted {text} as a time named after the time zone of the machine "
                             f"that runs `pulumi`; quote it \"{text}\"")
    digits = (fraction or "").lstrip(".").rstrip("0")
    return (f"{year:04d}-{month:02d}-{day:02d} {int(hour):02d}:{int(minute):02d}:{int(second):02d}"
            f"{'.' + digits if digits else ''} +0000 UTC")


def resolve_plain(text: str) -> tuple[str, Any]:
    """(tag, value) of an unquoted scalar as the program receives it after Pulumi's two yaml.v3 passes."""
    if text in _NULLS:
        return NULL, None
    if text in _BOOLS:
        return BOOL, _BOOLS[text]
    if text in _SPECIAL_FLOATS:
        return FLOAT, _SPECIAL_FLOATS[text]
    if text == "<<":
        return MERGE, text
    if text[0] == ".":
        if "_" in text:  # Go's ParseFloat takes no `_` here; Python's float() would
            return STR, text
        try:
            return _number(float(text))
        except ValueError:
            return STR, text
    if text[0] not in "+-0123456789":
        return STR, text
    stamp = _timestamp(text)
    if stamp is not None:
        return TIMESTAMP, stamp
    plain = text.replace("_", "")
    number = _go_int(plain)
    if number is not None:
        return INT, number
    if _YAML_FLOAT.match(plain):
        return _number(float(plain))
    return STR, text


def _number(value: float) -> tuple[str, Any]:
    # yaml.v3 writes a whole float without a fraction (strconv 'g'), so the second pass reads an int; Go's JSON
    # writes one below 1e21 without an exponent, so the program's json.loads reads an int too.
    if math.isfinite(value) and value == int(value) and abs(value) < 1e21:
        return INT, int(value)
    return FLOAT, value


class Loader(yaml.SafeLoader):
    """PyYAML with yaml.v3's implicit types (above) and its handling of tabs after a token."""

    yaml_implicit_resolvers: dict = {}

    def __init__(self, stream):
        super().__init__(stream)
        self.anchored: set[int] = set()  # ids of the nodes that carry an anchor (&name)

    def compose_node(self, parent, index):  # noqa: D102 - PyYAML's hook
        event = self.peek_event()
        node = super().compose_node(parent, index)
        if not isinstance(event, yaml.AliasEvent) and event.anchor:
            self.anchored.add(id(node))
        return node

    def resolve(self, kind, value, implicit):  # noqa: D102
        if kind is yaml.ScalarNode and implicit[0]:
            try:
                return resolve_plain(value)[0]
            except AmbiguousValue:
                return TIMESTAMP  # reported with its line by the reader, before anything is constructed
        return super().resolve(kind, value, implicit)

    def scan_to_next_token(self):  # noqa: D102
        # libyaml eats tabs between tokens in the flow context and where no simple key may start (after a value);
        # PyYAML eats none, so a tab after `key: value` would be "a character that cannot start any token".
        while True:
            while self.peek() == "\t" and (self.flow_level or not self.allow_simple_key):
                self.forward()
            if self.peek() == " ":
                self.forward()
                continue
            break
        return super().scan_to_next_token()

    def scan_plain_spaces(self, indent, start_mark):  # noqa: D102
        # libyaml's plain scalars take tabs as blanks (`a<TAB>b` is one value; a tab before the line break is dropped)
        length = 0
        while self.peek(length) in " \t":
            length += 1
        if self.peek(length) in "\r\n\x85\u2028\u2029":
            self.forward(length)  # trailing blanks: PyYAML's own code then folds the line break
            return super().scan_plain_spaces(indent, start_mark)
        blanks = self.prefix(length)
        self.forward(length)
        return [blanks] if blanks else []


def _construct_resolved(loader: Loader, node: yaml.ScalarNode) -> Any:
    return resolve_plain(loader.construct_scalar(node))[1]


for _tag in (INT, FLOAT, TIMESTAMP, BOOL, NULL):
    Loader.add_constructor(_tag, _construct_resolved)


def surprise(text: str, value: Any) -> Optional[str]:
    """How Pulumi's reading of an unquoted scalar differs from its text, for a warning; None when it does not."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        shown = repr(value) if isinstance(value, float) else str(value)
        if shown == text:
            return None
        return f"Pulumi reads an unquoted {text} as the number {shown}; quote it \"{text}\" if the text is meant"
    if isinstance(value, str) and value != text:
        return (f"Pulumi reads an unquoted {text} as a timestamp and hands the program the text {value!r}; quote it "
                f"\"{text}\" if the text is meant")
    return None


@dataclass(frozen=True)
class ConfigKey:
    """A key of `config:` as Pulumi's config.ParseKey reads it (sdk/go/common/resource/config/key.go)."""

    full: str  # namespace:name
    written: str  # as in the file


def config_key(written: str, project: str) -> ConfigKey:
    """A key without a namespace is the project's (loaders.go, stackConfigNamespacedWithProject: `instanceType` is
    `labstack:instanceType`); `ns:config:name` is the old spelling of `ns:name` (key.go, ParseKey); any other key
    with two or more colons is refused, with ParseKey's own words."""
    colons = written.count(":")
    if colons == 0:
        return ConfigKey(f"{project}:{written}", written)
    if colons == 1:
        return ConfigKey(written, written)
    namespace, module, name = (written.split(":") + [""])[:3]
    if colons == 2 and module == "config" and namespace and name:
        return ConfigKey(f"{namespace}:{name}", written)
    raise ValueError(f"could not parse {written} as a configuration key (configuration keys should be of the form "
                     "`<namespace>:<name>`)")

"""The value types of the stack file, as `pulumi config set` and YAML hand them to us.

`pulumi config set labstack:storageGb 32` stores the text "32", YAML may say `32`; both are the number 32, exactly as
labstack always read them (`int(str(value).strip())`), so these are pydantic before-validators rather than pydantic's
own lax parsing. Each refusal is a `problem`: our fix text, never pydantic's wording, turned into one line by
`components.config.messages`. An unset value (missing, or empty text) takes the field's default.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal, Optional, Union

from pydantic import BeforeValidator, ConfigDict, Field, SecretStr, ValidationError
from pydantic_core import PydanticCustomError, PydanticUseDefault
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

_NOT_GIVEN = object()
# Booleans only in YAML 1.1 (PyYAML's default); YAML 1.2, which Pulumi reads stack files with, keeps them as text.
YAML11_TRUE = ("yes", "y", "on")
YAML11_BOOLEANS = YAML11_TRUE + ("no", "n", "off")
LIST_FIX = "expected a list, e.g. `pulumi config set --path 'KEY[0]' VALUE` or a comma list"


@dataclass(frozen=True)
class Shown:
    """How the configuration reference's default column shows a default that is not a plain value (e.g. "the stack name")."""

    text: str


def problem(fix: str = "", *, shown: Any = _NOT_GIVEN, line: Optional[str] = None,
            secret: bool = False, example: Optional[str] = None) -> PydanticCustomError:
    """One refusal. `fix` follows `key = 'value': `; `line` replaces the whole line (placeholders `{key}`, `{app}`);
    `shown` is the value to quote when it is not the input as written (e.g. normalised); `secret` masks it."""
    context: dict[str, Any] = {"fix": fix}
    if shown is not _NOT_GIVEN:
        context["shown"] = shown
    if line is not None:
        context["line"] = line
    if secret:
        context["secret"] = True
    if example is not None:  # `{default}` in the fix, for a field whose default is no value (None)
        context["example"] = example
    return PydanticCustomError("labstack", "{fix}", context)


def raise_all(problems: list[tuple[tuple, Any, PydanticCustomError]]) -> None:
    """Refuse several parts of one value at once (each list item, each map entry): (loc below the value, input,
    problem)."""
    if problems:
        raise ValidationError.from_exception_data("labstack", [
            {"type": error, "loc": loc, "input": value} for loc, value, error in problems])


def _unset_if_empty(value: Any) -> None:
    if value is None or value == "":
        raise PydanticUseDefault()


def text(*checks: Callable[[str], str], schema: Any = str) -> BeforeValidator:
    """Text, stripped; each check returns the (possibly normalised) value or raises a problem."""
    def parse(value: Any) -> str:
        _unset_if_empty(value)
        if not isinstance(value, str):
            raise problem("expected a text value")
        value = value.strip()
        _unset_if_empty(value)
        for check in checks:
            value = check(value)
        return value
    return BeforeValidator(parse, json_schema_input_type=schema)


def passes(test: Callable[[str], Any], fix: str) -> Callable[[str], str]:
    """A check from a predicate (e.g. a regex's match): the value passes, or the fix is its problem."""
    def check(value: str) -> str:
        if not test(value):
            raise problem(fix, shown=value)
        return value
    return check


def choice(*choices: str, fix: str) -> BeforeValidator:
    """Text that must be one of `choices` (an enum in the JSON schema)."""
    return text(passes(lambda value: value in choices, fix), schema=Literal[choices])


def _int_text_schema(low: int, high: int) -> Any:
    return Union[Annotated[int, Field(ge=low, le=high)], Annotated[str, Field(pattern=r"^\s*[+-]?[0-9]+\s*$")]]


def whole_number(low: int, high: int, unit: str = "", example: Optional[int] = None) -> BeforeValidator:
    """An int or its text form, between low and high. `{config_set}` and `{default}` in the fix are filled in where
    the key and the field's default are known; a field without a default value shows `example` (else `low`)."""
    def parse(value: Any) -> int:
        _unset_if_empty(value)
        try:
            number = int(str(value).strip())
        except ValueError:
            raise problem(f"expected a whole number{unit}, e.g. `{{config_set}} {{default}}`",
                          example=str(low if example is None else example)) from None
        if not low <= number <= high:
            raise problem(f"must be between {low} and {high}{unit}")
        return number
    return BeforeValidator(parse, json_schema_input_type=_int_text_schema(low, high))


def flag(fix: str = "expected true or false") -> BeforeValidator:
    """A YAML boolean or the text true/false in any case (what `pulumi config set KEY true` stores)."""
    def parse(value: Any) -> bool:
        if value is None:
            raise PydanticUseDefault()
        if str(value).lower() not in ("true", "false"):
            if str(value).lower() in YAML11_BOOLEANS:  # YAML 1.1 said true/false; Pulumi (YAML 1.2) reads text
                raise problem(f"{fix}: Pulumi reads `{value}` as the text {str(value)!r}, not a boolean; write "
                              f"{'true' if str(value).lower() in YAML11_TRUE else 'false'}")
            raise problem(fix)
        return str(value).lower() == "true"
    schema = Union[bool, Annotated[str, Field(pattern="^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$")]]
    return BeforeValidator(parse, json_schema_input_type=schema)


def _items(value: Any) -> tuple[str, ...]:
    """A YAML list, or the comma list `pulumi config set labstack:ingressCidrs 1.2.3.0/24,5.6.7.0/24` stores."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(item, (str, int)) for item in value):
        raise problem(LIST_FIX)
    return tuple(str(item).strip() for item in value)


def port_list() -> BeforeValidator:
    def parse(value: Any) -> tuple[int, ...]:
        if value is None:
            raise PydanticUseDefault()
        items = _items(value)
        raise_all([((), item, problem("each port must be a number from 1 to 65535", shown=item))
                   for item in items if not item.isdigit() or not 1 <= int(item) <= 65535])
        ports = [int(item) for item in items]
        if len(set(ports)) != len(ports):
            raise problem("lists a port twice; remove the duplicate", shown=ports)
        return tuple(ports)
    return BeforeValidator(parse, json_schema_input_type=Union[list[Union[int, str]], str])


def network_list(kind: type) -> BeforeValidator:
    """IPv4 or IPv6 networks in CIDR form; a host address with a prefix gets the network it meant as a hint."""
    family, example = {ipaddress.IPv4Network: ("IPv4", "203.0.113.0/24"),
                       ipaddress.IPv6Network: ("IPv6", "2001:db8::/32")}.get(kind, ("IPv4 or IPv6", "203.0.113.0/24"))

    def parse(value: Any) -> tuple[str, ...]:
        if value is None:
            raise PydanticUseDefault()
        good, bad = [], []
        for item in _items(value):
            try:
                good.append(str(kind(item, strict=True)))
            except ValueError:
                try:
                    suggestion = f"; did you mean {kind(item, strict=False)}?"
                except ValueError:
                    suggestion = ""
                bad.append(((), item, problem(f"expected an {family} network in CIDR form such as {example}"
                                              f"{suggestion}", shown=item)))
        raise_all(bad)
        return tuple(good)
    return BeforeValidator(parse, json_schema_input_type=Union[list[str], str])


def mapping(fix: str, entry: Optional[Callable[[str, Any], Optional[PydanticCustomError]]] = None,
            convert: Callable[[Any], Any] = lambda item: item, schema: Any = dict[str, Any]) -> BeforeValidator:
    """A map; an empty value is an empty map. `entry(name, item)` returns a problem for a bad entry, reported under
    the entry's own key (`labstack:tags.Name`); `convert` makes each item the value the model keeps."""
    def parse(value: Any) -> dict:
        if not value:
            return {}
        if not isinstance(value, dict):
            raise problem(fix)
        if entry:
            raise_all([((str(name),), item, error) for name, item in value.items()
                       if (error := entry(str(name), item)) is not None])
        return {str(name): convert(item) for name, item in value.items()}
    return BeforeValidator(parse, json_schema_input_type=schema)


def env_text(value: Any) -> str:
    """An env value as the user wrote it: YAML's true stays `true` (Python would say `True`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def secret_text(value: Any) -> SecretStr:
    """A secret scalar, kept as a SecretStr so it never prints; the text the app receives is `env_text`'s."""
    if isinstance(value, (dict, list)):
        raise problem("expected a text value", secret=True)
    return SecretStr(env_text(value))


def secret_field() -> BeforeValidator:
    """A secret setting of its own (not a map of them): empty means not set."""
    def parse(value: Any) -> SecretStr:
        _unset_if_empty(value)
        return secret_text(value)
    return BeforeValidator(parse, json_schema_input_type=str)


class Secure(TypedDict):
    """A value set with `pulumi config set --secret`: the stack file holds its ciphertext."""

    __pydantic_config__ = ConfigDict(extra="forbid")
    secure: str


def secret_entry() -> BeforeValidator:
    """One secret of a map of them, as written (`--secret --path` puts the ciphertext at the entry)."""
    return BeforeValidator(secret_text, json_schema_input_type=Union[str, int, float, bool, Secure])

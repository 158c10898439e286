"""Problems of a stack file as the user reads them: all at once, one line each, `key = 'value': fix`, in the order of
the keys in the schema, secrets masked."""
from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping

from pydantic import ValidationError

SECRET_SHOWN_AS = "[secret]"


class ConfigError(Exception):
    """All the problems of one stack file. Plain, so the operator tasks need no Pulumi; the program raises
    `components.config.pulumi_source.StackConfigError`, which `pulumi up` prints without a Python traceback."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"labstack: the stack configuration has {len(problems)} problem(s):\n{lines}")


def looks_secret(key: str) -> bool:
    """A mistyped secret key is still a secret: judge by its name too."""
    lowered = key.lower()
    return any(word in lowered for word in ("password", "secret", "token", "passphrase", "apikey", "api_key"))


_PULUMI_SPAN = re.compile(r"`pulumi ([^`]*)`")
_CONFIG_SET = re.compile(r"^config set((?: --path| --secret)*) ('[^']*'|\S+) ?(.*?)(?: (?:-s|--stack) \S+)?$")
_STACK_FLAG = re.compile(r" (?:-s|--stack) \S+")


def _as_invoke(words: str, stack: str) -> str:
    config_set = _CONFIG_SET.match(words)
    if config_set:
        flags, key, value = config_set.groups()
        secret = " --secret" if "--secret" in flags else ""
        return f"invoke config -s {stack}{secret} --set {key}={value}" if value else \
            f"invoke config -s {stack}{secret} --set {key}=VALUE"
    words = _STACK_FLAG.sub("", words).strip()
    verb = {"up": "up", "preview": "preview", "destroy": "destroy", "stack output": "outputs"}.get(words)
    if verb:
        return f"invoke {verb} -s {stack}"
    return f"invoke pulumi -s {stack} -- {words}"


def as_invoke(text: str, stack: str = "<stack>") -> str:
    """A message's `pulumi ...` commands as the labstack tasks that run them with the project's state backend and
    passphrase file (a bare `pulumi` in a new shell knows neither), naming the stack: `pulumi config set --path
    'labstack:autoStop.idleMinutes' 60` becomes
    `invoke config -s paris-batch2 --set 'labstack:autoStop.idleMinutes'=60`."""
    return _PULUMI_SPAN.sub(lambda found: f"`{_as_invoke(found.group(1), stack)}`", text)


def problem_lines(error: ValidationError, order: Mapping[str, int], secret_keys: Iterable[str],
                  stack: str = "<stack>") -> list[str]:
    """One line per problem. `order` ranks the root keys (unknown keys come first); values of `secret_keys`, of keys
    that look secret and of problems marked secret are never quoted: messages reach terminals and CI logs."""
    secret = set(secret_keys)
    ranked: list[tuple[int, str]] = []
    for e in error.errors(include_url=False):
        loc = [str(part) for part in e["loc"] if part != "[key]"]  # a map key's own problem names the key
        key = ".".join(loc)
        context = e.get("ctx") or {}
        if e["type"] != "labstack":  # never pydantic's wording: every model explains its errors (base.Settings)
            context = {"fix": "not a valid value here; see docs/configuration.md"}
        # Our texts may say `{key}`, `{app}` (the name under the root key: the app under labstack:apps) and
        # `{config_set}` (how to set this key); the value is put in after, so it is never read as a placeholder.
        config_set = "pulumi config set " + (f"--path '{key}'" if len(loc) > 1 else key)
        text = context.get("line", context["fix"])
        text = text.replace("{config_set}", config_set).replace("{app}", loc[1] if len(loc) > 1 else "")
        if "line" in context:
            line = text.replace("{key}", key)
        else:
            value: Any = context.get("shown", e["input"])
            if context.get("secret") or (loc and loc[0] in secret) or looks_secret(key):
                value = SECRET_SHOWN_AS
            elif not isinstance(value, str):
                value = json.dumps(value, default=str)
            line = f"{key} = {value!r}: {text}"
        ranked.append((order.get(loc[0], -1) if loc else -1, line))
    ranked.sort(key=lambda item: item[0])  # stable: a key's own problems keep their order
    lines = list(dict.fromkeys(as_invoke(line, stack).replace("-s <stack>", f"-s {stack}") for _, line in ranked))
    # A misspelt required key (aws:regoin) is one mistake: its "did you mean aws:region?" line already says what
    # to fix, so the "aws:region is not set" line it causes is left out.
    meant = {line.rsplit("did you mean ", 1)[1].rstrip("?") for line in lines if "did you mean " in line}
    return [line for line in lines if not any(line.startswith(f"{key} is not set") for key in meant)]

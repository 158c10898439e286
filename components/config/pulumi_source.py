"""The stack's config as the Pulumi engine hands it to the program (with cloud.py, the only config modules that
import pulumi)."""
from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

import pulumi

from components.config.messages import ConfigError
from components.config.stack import StackConfig
from components.config.stack import load_stack_config as load_offline


class StackConfigError(ConfigError, pulumi.RunError):
    """A ConfigError as the program raises it: `pulumi up` prints a RunError's message without a traceback."""


def load_stack_config(raw: Mapping[str, Any], stack: str, project: str = "labstack",
                      secret_keys: Iterable[str] = ()) -> StackConfig:
    """`components.config.load_stack_config`, raising its problems as a StackConfigError."""
    try:
        return load_offline(raw, stack, project=project, secret_keys=secret_keys)
    except ConfigError as error:
        raise StackConfigError(error.problems) from None


def secret_config_keys() -> set[str]:
    """The stack's `--secret` keys, as Pulumi tells the program."""
    return {key for key in pulumi.runtime.config.CONFIG.get() if pulumi.runtime.config.is_config_secret(key)}


def raw_config_from_pulumi() -> dict[str, Any]:
    """Every key of the stack's config, with structured values decoded. StackFile judges the `labstack:` keys and
    aws:region, and also the keys of a namespace close to ours (`labstak:dnsHost`): Pulumi hands those to the
    program like any other provider's, and dropping them here would leave the setting silently unset."""
    return {full_key: _decode(value) for full_key, value in pulumi.runtime.config.CONFIG.get().items()}


def _decode(value: Any) -> Any:
    """Pulumi hands structured config (lists, maps) to Python as JSON text."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value

"""`labstack:autoStop`: the server stops itself when idle, and after a lifetime cap in any case.

A watcher on each node (hooks/auto-stop.sh, run every minute by a systemd timer) decides; a CloudWatch alarm on low
CPU is the backstop if the watcher dies. Default: on (30 idle minutes) for stacks without apps (clusters, batch and
throwaway job servers), off for servers with apps (participants arrive sporadically) and for an existing server
(labstack did not make it and never powers it off).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Optional, Union

from pydantic import BeforeValidator, Field

from components.config.base import Settings
from components.config.values import YAML11_BOOLEANS, flag, problem, whole_number

FIX = "expected true, false or a map such as {idleMinutes: 60, maxHours: 72}"
DEFAULT_IDLE_MINUTES = 30
DEFAULT_CPU_PERCENT = 10
# The alarm's CPU is averaged over 5-minute periods (basic monitoring): shorter idle times cannot be watched by it.
MIN_IDLE_MINUTES = 5
MAX_IDLE_MINUTES = 7 * 24 * 60
MAX_LIFETIME_HOURS = 365 * 24


class AutoStopSettings(Settings):
    """When the stack's servers stop themselves."""

    shape_fix: ClassVar[str] = FIX

    enabled: Annotated[bool, flag()] = Field(
        True, description="`false` turns the watcher off (also written `autoStop: false`)")
    idle_minutes: Annotated[Optional[int],
                            whole_number(MIN_IDLE_MINUTES, MAX_IDLE_MINUTES, " minutes", example=60)] = Field(
        None, description=f"stop after this long without an SSH session, a running job, a Ray task, an HTTP request "
                          f"to an app, an app's busy signal or CPU above cpuPercent (default {DEFAULT_IDLE_MINUTES})")
    max_hours: Annotated[Optional[int], whole_number(1, MAX_LIFETIME_HOURS, " hours", example=72)] = Field(
        None, description="stop this long after the server started, busy or not (a warning goes to the server's "
                          "log an hour before); default: no cap")
    cpu_percent: Annotated[Optional[int], whole_number(1, 100, " %")] = Field(
        None, description=f"CPU use (all cores, averaged over a minute) below which the server counts as idle "
                          f"(default {DEFAULT_CPU_PERCENT}); the CloudWatch backstop alarm uses it too")


def _auto_stop(value: Any) -> Any:
    """`true` is the defaults, `false` off, a map the settings."""
    if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in ("true", "false")):
        return {} if str(value).strip().lower() == "true" else {"enabled": False}
    if isinstance(value, str) and value.strip().lower() in YAML11_BOOLEANS:
        raise problem(f"{FIX}: Pulumi reads `{value}` as text, not a boolean")
    if value is not None and not isinstance(value, dict):
        raise problem(FIX)
    return value


AutoStop = Annotated[Optional[AutoStopSettings], BeforeValidator(
    _auto_stop, json_schema_input_type=Union[bool, str, AutoStopSettings])]


@dataclass(frozen=True)
class AutoStopConfig:
    """The watcher's settings, in the units it works in."""

    idle_seconds: int
    max_seconds: Optional[int]
    cpu_percent: int

    @property
    def idle_minutes(self) -> int:
        return self.idle_seconds // 60


def auto_stop_config(settings: Optional[AutoStopSettings], has_apps: bool,
                     existing_server: bool) -> Optional[AutoStopConfig]:
    """None: no watcher. Unset means on for stacks without apps, off with apps or on a server labstack did not make."""
    if settings is None:
        if has_apps or existing_server:
            return None
        settings = AutoStopSettings()
    if not settings.enabled:
        return None
    return AutoStopConfig(idle_seconds=(settings.idle_minutes or DEFAULT_IDLE_MINUTES) * 60,
                          max_seconds=settings.max_hours * 3600 if settings.max_hours else None,
                          cpu_percent=settings.cpu_percent or DEFAULT_CPU_PERCENT)


def auto_stop_problem(settings: Optional[AutoStopSettings], existing_server: bool) -> Optional[Any]:
    """A server labstack did not make is never powered off by it."""
    if settings is not None and settings.enabled and existing_server:
        return problem(line="{key} cannot be used with labstack:existingServer: labstack never powers off a server "
                            "it did not make; remove it (or set it to false)")
    return None

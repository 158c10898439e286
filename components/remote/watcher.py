"""The auto-stop watcher on one node (labstack:autoStop, and labstack:budget.total): hooks/watcher-up.sh installs
its settings and a systemd timer running hooks/auto-stop.sh every minute; the same step with no settings turns it
off. It has no delete command: a destroyed node goes with its watcher, and a stopped one (the watcher's own doing)
must not block `pulumi destroy` with an SSH step."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import pulumi
import pulumi_command as command

from components.config.auto_stop import AutoStopConfig
from components.layout import hook
from components.nodes import NodeHandle
from components.render.bundle import make_bundle
from hooks.agent import contract


@dataclass
class WatcherArgs:
    node: NodeHandle
    auto_stop: Optional[AutoStopConfig]  # None: no idle stop or lifetime cap
    budget_env: Mapping[str, str]  # HOURLY_PRICE + BUDGET_TOTAL, or empty (components/config/cost.py)
    busy_commands: Mapping[str, str] = field(default_factory=dict)  # app -> its busy command (apps on this node)
    after: list[pulumi.Resource] = field(default_factory=list)  # the hooks installed


def watcher_files(auto_stop: Optional[AutoStopConfig], budget_env: Mapping[str, str],
                  busy_commands: Mapping[str, str]) -> dict[str, str]:
    """The settings the node agent's watcher reads (contract.WATCHER_SETTINGS); no files at all turn it off."""
    if auto_stop is None and not budget_env:
        return {}
    settings = {"IDLE_SECONDS": str(auto_stop.idle_seconds) if auto_stop else "0",  # 0: no idle stop
                "MAX_SECONDS": str(auto_stop.max_seconds or "") if auto_stop else "",
                "CPU_PERCENT": str(auto_stop.cpu_percent if auto_stop else contract.DEFAULT_CPU_PERCENT),
                "BUSY_COMMANDS": " ".join(sorted(busy_commands)) if auto_stop else "",
                **budget_env}
    files = {contract.WATCHER_ENV: "# labstack's auto-stop watcher (written by watcher-up.sh; read by auto-stop.sh)\n"
                                   + "".join(f"{key}='{value}'\n" for key, value in settings.items())}
    if auto_stop:
        files.update({contract.busy_command_file(app): command_line for app, command_line in busy_commands.items()})
    return files


class Watcher(pulumi.ComponentResource):
    def __init__(self, name: str, args: WatcherArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("labstack:index:Watcher", name, None, opts)
        files = watcher_files(args.auto_stop, args.budget_env, args.busy_commands)
        # A replaced instance is a new server: the step runs there again.
        triggers = [args.node.instance_id] if args.node.instance_id is not None else []
        command.remote.Command(
            f"{name}-watcher", connection=args.node.connection, create=hook("watcher-up.sh"),
            stdin=make_bundle(files), triggers=triggers, add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.after))
        self.register_outputs({"autoStop": bool(files)})

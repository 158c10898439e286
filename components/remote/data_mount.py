"""The data volume's mount step: hooks/mount-data.sh on the node, after the volume is attached and before Docker and
the apps start (HostSetup makes Docker depend on it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_command as command

from components.layout import hook
from components.nodes import NodeHandle


@dataclass
class DataMountArgs:
    node: NodeHandle
    volume_id: pulumi.Input[str]
    size_gb: int  # a bigger volume runs the step again, which grows the filesystem online
    after: list[pulumi.Resource] = field(default_factory=list)  # the hooks installed, the volume attached


class DataMount(pulumi.ComponentResource):
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: DataMountArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("labstack:remote:DataMount", name, None, opts)
        volume_id = pulumi.Output.from_input(args.volume_id)
        # A replaced instance (new instance id) is a new server: the step runs there again and finds the volume.
        triggers = [volume_id, args.size_gb, *([args.node.instance_id] if args.node.instance_id is not None else [])]
        mount = command.remote.Command(
            f"{name}-data-mount", connection=args.node.connection,
            create=volume_id.apply(lambda vol: hook("mount-data.sh", vol)), triggers=triggers,
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.after))
        self.ready = [mount]
        self.register_outputs({})

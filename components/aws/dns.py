"""Route53 records that point the experiment's host name, and every name under it, at the server."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

RECORD_TTL_SECONDS = 300


@dataclass
class DnsArgs:
    host: str
    zone_id: str
    address: pulumi.Input[str]


class Dns(pulumi.ComponentResource):
    host: pulumi.Output[str]

    def __init__(self, name: str, args: DnsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("labstack:index:Dns", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # The wildcard lets each app get its own name (<app>.<host>) without another DNS change.
        for record_name, label in ((args.host, "host"), (f"*.{args.host}", "wildcard")):
            aws.route53.Record(f"{name}-{label}", zone_id=args.zone_id, name=record_name, type="A",
                               ttl=RECORD_TTL_SECONDS, records=[args.address], opts=child)
        self.host = pulumi.Output.from_input(args.host)
        self.register_outputs({"host": self.host})

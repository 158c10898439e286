"""The EC2 key pair the server's login user trusts: an existing one, or the public half of the operator's key."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_aws as aws


@dataclass
class KeyPairArgs:
    existing_name: Optional[str] = None
    public_key: Optional[str] = None
    tags: dict[str, str] = field(default_factory=dict)


class KeyPair(pulumi.ComponentResource):
    key_name: pulumi.Output[str]

    def __init__(self, name: str, args: KeyPairArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("labstack:index:KeyPair", name, None, opts)
        if args.existing_name:
            self.key_name = pulumi.Output.from_input(args.existing_name)
        else:
            # Only the public half goes to AWS; the private key stays on this machine (and, encrypted, in the
            # Pulumi state as part of the SSH connection secret).
            imported = aws.ec2.KeyPair(f"{name}-key", public_key=args.public_key, tags=args.tags,
                                       opts=pulumi.ResourceOptions(parent=self))
            self.key_name = imported.key_name
        self.register_outputs({"keyName": self.key_name})

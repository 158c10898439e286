"""The server's SSH host key, made at provisioning so the very first connection can already be verified."""
from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_tls as tls
import yaml


class HostKey(pulumi.ComponentResource):
    """An Ed25519 host key for sshd, delivered through cloud-init; its public half is pinned by every connection."""

    public_key: pulumi.Output[str]
    private_key: pulumi.Output[str]

    def __init__(self, name: str, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("labstack:index:HostKey", name, None, opts)
        key = tls.PrivateKey(f"{name}-host-key", algorithm="ED25519", opts=pulumi.ResourceOptions(parent=self))
        self.public_key = key.public_key_openssh.apply(lambda text: " ".join(text.split()[:2]))
        self.private_key = pulumi.Output.secret(key.private_key_openssh)
        self.register_outputs({"publicKey": self.public_key})

    def cloud_init(self) -> pulumi.Output[str]:
        """cloud-config that replaces the image's host keys with ours before sshd first starts."""
        return pulumi.Output.secret(pulumi.Output.all(self.private_key, self.public_key).apply(
            lambda keys: "#cloud-config\n" + yaml.safe_dump({
                "ssh_deletekeys": True,
                "ssh_genkeytypes": [],  # only our key: an unpinned second key would be a way around the pin
                "ssh_keys": {"ed25519_private": keys[0], "ed25519_public": keys[1]},
            }, sort_keys=False)))

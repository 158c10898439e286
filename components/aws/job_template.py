"""The stack's launch template: how the operator side launches throwaway job instances that Pulumi does not own.

Pulumi owns the template (so its settings are reviewed, tagged and versioned with the stack); the instances launched
from it belong to the task that launched them (docs/lifecycle.md). They get the nodes' settings
(components/aws/baseline.py) and end themselves: `shutdown` on a job instance terminates it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_aws as aws

from components.aws.baseline import JOB_SHUTDOWN, template_metadata, template_root_volume


@dataclass
class JobTemplateArgs:
    ami_id: str
    root_device_name: str  # the AMI's, so the root volume settings replace its root volume
    instance_type: str
    storage_gb: int
    key_name: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    tags: dict[str, str] = field(default_factory=dict)
    spot: bool = False  # the cost-control work turns this into a stack setting


def spot_market_options() -> aws.ec2.LaunchTemplateInstanceMarketOptionsArgs:
    """One-time spot requests, terminated on interruption: a job instance is never resumed, its task records the
    job as interrupted. (A stop-on-interruption node needs a persistent request and is a node setting instead.)"""
    return aws.ec2.LaunchTemplateInstanceMarketOptionsArgs(
        market_type="spot", spot_options=aws.ec2.LaunchTemplateInstanceMarketOptionsSpotOptionsArgs(
            spot_instance_type="one-time", instance_interruption_behavior="terminate"))


class JobTemplate(pulumi.ComponentResource):
    template_id: pulumi.Output[str]

    def __init__(self, name: str, args: JobTemplateArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("labstack:index:JobTemplate", name, None, opts)
        template = aws.ec2.LaunchTemplate(
            f"{name}-job-template",
            description=f"labstack {name}: throwaway job instances (launched by invoke tasks, not by Pulumi)",
            # Unlike the nodes, the template follows a moving AMI: a new version, and only new jobs use it.
            image_id=args.ami_id,
            instance_type=args.instance_type,
            key_name=args.key_name,
            vpc_security_group_ids=[args.security_group_id],
            metadata_options=template_metadata(),
            block_device_mappings=[template_root_volume(args.root_device_name, args.storage_gb)],
            instance_initiated_shutdown_behavior=JOB_SHUTDOWN,
            instance_market_options=spot_market_options() if args.spot else None,
            tag_specifications=[aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=args.tags)
                                for kind in ("instance", "volume")],
            tags=args.tags,
            # Launches name no version: they get the newest settings.
            update_default_version=True,
            opts=pulumi.ResourceOptions(parent=self))
        self.template_id = template.id
        self.register_outputs({"templateId": self.template_id})

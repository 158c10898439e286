"""The nodes' instance profile: a role that may pull the stack's ECR repositories and nothing else, so the server
pulls private images without a stored password (its docker credential helper asks the instance role)."""
from __future__ import annotations

import json
from typing import Optional

import pulumi
import pulumi_aws as aws

from components.config.registry import EcrRepository

# The read-only calls `docker pull` makes; no push, no listing, no other repository.
PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
EC2_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def pull_policy(repositories: tuple[EcrRepository, ...]) -> dict:
    """GetAuthorizationToken has no resource to scope (AWS requires `*`); the pulls are limited to the repositories."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Sid": "PullStackImages", "Effect": "Allow", "Action": list(PULL_ACTIONS),
         "Resource": [repository.arn for repository in repositories]}]}


class RegistryAccess(pulumi.ComponentResource):
    profile_name: pulumi.Output[str]

    def __init__(self, name: str, repositories: tuple[EcrRepository, ...], tags: dict[str, str],
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("labstack:index:RegistryAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(f"{name}-role", assume_role_policy=json.dumps(EC2_TRUST), tags=tags, opts=child)
        aws.iam.RolePolicy(f"{name}-ecr-pull", role=role.id, policy=json.dumps(pull_policy(repositories)), opts=child)
        # An IAM role's and an instance profile's id is its name (the provider's, as Terraform's).
        profile = aws.iam.InstanceProfile(f"{name}-profile", role=role.id, tags=tags, opts=child)
        self.profile_name = profile.id
        self.register_outputs({"profileName": self.profile_name})

"""Private image registries: which ECR repositories the stack's app images name (the server pulls them with its
instance role, no stored password) and the credentials for any other registry (`labstack:registryAuth`, secrets)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Iterable

from pydantic import Field, SecretStr

from components.config.base import Settings
from components.config.formats import is_dns_name
from components.config.values import problem, secret_entry, text

# <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>[:tag]@sha256:<digest>, as `invoke build push` pins it.
ECR_IMAGE_RE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?P<china>\.cn)?/"
                          r"(?P<repository>[a-z0-9][a-z0-9._/-]*)(?::[\w.-]+)?@sha256:[0-9a-f]{64}$")
REGISTRY_AUTH_FIX = ("expected a map registry -> {username, password}: `pulumi config set --path "
                     "'labstack:registryAuth[\"ghcr.io\"].username' <user>` and `pulumi config set --secret --path "
                     "'labstack:registryAuth[\"ghcr.io\"].password' <token>`")


@dataclass(frozen=True, order=True)
class EcrRepository:
    account: str
    region: str
    name: str
    partition: str = "aws"

    @property
    def registry(self) -> str:
        suffix = ".cn" if self.partition == "aws-cn" else ""
        return f"{self.account}.dkr.ecr.{self.region}.amazonaws.com{suffix}"

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:ecr:{self.region}:{self.account}:repository/{self.name}"


def ecr_repositories(images: Iterable[str]) -> tuple[EcrRepository, ...]:
    """The ECR repositories among the images, each once, in a stable order (so the policy does not churn)."""
    found = set()
    for image in images:
        if match := ECR_IMAGE_RE.match(image):
            found.add(EcrRepository(match["account"], match["region"], match["repository"],
                                    "aws-cn" if match["china"] else "aws"))
    return tuple(sorted(found))


class RegistryLogin(Settings):
    """A registry's login; the password (a token) is a secret."""

    shape_fix: ClassVar[str] = REGISTRY_AUTH_FIX

    username: Annotated[str, text()] = Field(description="the registry user name")
    password: Annotated[SecretStr, secret_entry()] = Field(description="secret: its password or access token")


def registry_hosts(value: Any) -> Any:
    """Registry names are host names (with an optional port); ECR needs no entry, the server's role reaches it."""
    if not value:
        return {}
    if not isinstance(value, dict):
        raise problem(REGISTRY_AUTH_FIX, secret=True)
    for host in value:
        name, _, port = str(host).partition(":")
        if not (is_dns_name(name) and "." in name and (not port or port.isdigit())):
            raise problem(f"registry {host!r} is not a registry host name such as ghcr.io or registry.example.org:5000",
                          secret=True)
        if ".dkr.ecr." in name:
            raise problem(f"registry {host!r} is ECR: the server pulls from the stack's ECR repositories with its "
                          "instance role, so remove this entry", secret=True)
    return value

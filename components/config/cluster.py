"""`labstack:cluster`: the stack is a head (the server) plus N workers, running Ray or nothing.

flambe's AWSCluster had an orchestrator and N factories of their own type; here the head is the server of
`labstack:instanceType` and the workers are `<server>-worker-<i>`, i from 1. The settings are checked offline, before
anything is created; the cross-checks with the head's settings (ARM types, existingServer) are StackFile rules
(components/config/schema.py, e.g. `architecture_problem`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, ClassVar, Optional

from pydantic import Field
from pydantic_core import PydanticCustomError

from components.config.aws_names import did_you_mean, known_instance_types
from components.config.base import Settings
from components.config.formats import INSTANCE_TYPE_RE, MAX_STORAGE_GB, PINNED_IMAGE_RE, is_arm
from components.config.values import Shown, choice, problem, text, whole_number

MAX_WORKERS = 500  # well above any lab's sweep; a typo (5000) is refused instead of billed
ENGINES = ("ray", "none")
# The official Ray images: `rayproject/ray:<version>-py311` is amd64 only; Ray publishes arm64 as `...-aarch64`.
OFFICIAL_RAY_REPOSITORY = "rayproject/ray"
ARM_TAG_RE = re.compile(r":[\w.-]*(aarch64|arm64)[\w.-]*@")


def _worker_type(value: str) -> str:
    if not INSTANCE_TYPE_RE.match(value):
        raise problem("expected an EC2 instance type such as c7i.4xlarge", shown=value)
    names = known_instance_types()
    if value not in names:
        hint = did_you_mean(value, names)
        raise problem("AWS has no EC2 instance type of that name" + (f"; did you mean {hint}?" if hint else ""),
                      shown=value)
    return value


def _pinned_image(value: str) -> str:
    if not PINNED_IMAGE_RE.match(value):
        raise problem("must be pinned by digest, e.g. ghcr.io/my-lab/sweep@sha256:<64 hex>, so every node runs the "
                      "same image: `docker buildx imagetools inspect <image:tag>` prints the digest", shown=value)
    return value


class ClusterSettings(Settings):
    """The workers of a cluster stack and what runs on them."""

    shape_fix: ClassVar[str] = "expected a map such as {workers: 4, workerType: c7i.4xlarge}"

    workers: Annotated[int, whole_number(0, MAX_WORKERS)] = Field(
        0, description=f"worker nodes (0–{MAX_WORKERS}; 0 = the head alone); raising adds the missing ones, lowering "
                       "drains and removes the highest-numbered")
    worker_type: Annotated[Optional[str], text(_worker_type), Shown("instanceType")] = Field(
        None, description="the workers' EC2 instance type; changing it resizes each worker in place (EC2 stops it, "
                          "changes the type, starts it: disks kept, Ray rejoins on boot)")
    worker_storage_gb: Annotated[Optional[int], whole_number(8, MAX_STORAGE_GB, " GB"), Shown("storageGb")] = Field(
        None, description="each worker's encrypted gp3 root volume, GB")
    engine: Annotated[str, choice(*ENGINES, fix="must be `ray` (Ray on every node, workers joined to the head) or "
                                               "`none` (plain machines on a private network)")] = Field(
        "ray", description="`ray` or `none`")
    image: Annotated[Optional[str], text(_pinned_image), Shown("the official Ray image")] = Field(
        None, description="the image Ray runs in on every node, pinned by digest (`registry/name@sha256:…`); "
                          "default: the official Ray image of the pinned Ray version (components/render/images.json)")


@dataclass(frozen=True)
class ClusterConfig:
    """The program's view: defaults resolved against the head's settings."""

    workers: int
    worker_type: str
    worker_storage_gb: int
    engine: str  # ray | none
    image: Optional[str]  # None: the default Ray image (components/render/images.json, resolved by the program)

    def worker_names(self, server_name: str) -> list[str]:
        """`<server>-worker-<i>`, i from 1: a worker's resources are named by its index, so raising the count adds
        names and lowering it removes the highest ones, never renaming (and so never replacing) the others."""
        return [f"{server_name}-worker-{index}" for index in range(1, self.workers + 1)]


def cluster_config(settings: Optional[ClusterSettings], instance_type: str,
                   storage_gb: int) -> Optional[ClusterConfig]:
    if settings is None:
        return None
    return ClusterConfig(workers=settings.workers, worker_type=settings.worker_type or instance_type,
                         worker_storage_gb=settings.worker_storage_gb or storage_gb, engine=settings.engine,
                         image=settings.image)


def image_is_arm(image: Optional[str]) -> Optional[bool]:
    """The image's platform when its reference says it: the official Ray images (amd64, `-aarch64` tags arm64) and
    tags naming aarch64/arm64. None: not knowable offline (a digest may name a multi-platform index or one platform;
    only the registry can tell)."""
    if ARM_TAG_RE.search(image or ""):
        return True
    if image is None or image.split("@")[0].rsplit(":", 1)[0] in (OFFICIAL_RAY_REPOSITORY,
                                                                   f"docker.io/{OFFICIAL_RAY_REPOSITORY}"):
        return False
    return None


def architecture_problem(instance_type: str,
                         settings: ClusterSettings) -> Optional[tuple[str, PydanticCustomError]]:
    """(the key below labstack:cluster to blame, the problem) when an ARM (Graviton) node would get an amd64 image,
    or an amd64 node an arm64 one (Docker would refuse the image on the node, after the instances exist), or when
    the workers' architecture is not the head's (they boot its AMI)."""
    worker_type = settings.worker_type or instance_type
    if is_arm(worker_type) != is_arm(instance_type):
        return "workerType", problem(
            f"the workers boot the head's AMI, made for {'ARM' if is_arm(instance_type) else 'x86'} "
            f"({instance_type}), but {worker_type} is {'ARM (Graviton)' if is_arm(worker_type) else 'x86'}: choose a "
            "workerType of the head's architecture", shown=worker_type)
    if settings.engine != "ray":
        return None
    arm = image_is_arm(settings.image)
    image = "the image" if settings.image else "the default Ray image"
    # A workerType the stack file sets is what to change; otherwise the image is.
    blamed = ("workerType", worker_type) if settings.worker_type else ("image", settings.image)
    for (key, shown), node_type, who in ((blamed, worker_type, "the workers run"),
                                         (("image", settings.image), instance_type, "the head runs")):
        fix = None
        if arm is False and is_arm(node_type):
            fix = (f"{who} on {node_type}, an ARM (Graviton) type, but {image} is amd64: choose an x86 type such as "
                   "c7i.4xlarge, or an arm64 image pinned by digest (the official one is "
                   f"{OFFICIAL_RAY_REPOSITORY}:<version>-py311-aarch64@sha256:…)")
        if arm is True and not is_arm(node_type):
            fix = (f"{who} on {node_type}, an x86 type, but {image} is arm64: choose a Graviton type (e.g. "
                   "c7g.4xlarge) or an amd64 image")
        if fix:
            # The default image is not in the stack file: no value to quote.
            return key, problem(fix, shown=shown) if shown else problem(line="{key}: " + fix)
    return None

"""`labstack:dataVolume`: a separate encrypted gp3 EBS volume mounted at /srv/labstack, so the apps' data
outlives the instance (crimpl's model: the volume is "the server", instances come and go around it).

Either labstack makes the volume (`sizeGb`, optionally `fromSnapshot`) and `onDestroy` says what `pulumi destroy` does
with it, or `id` attaches a volume made elsewhere, which this stack never resizes, snapshots or deletes. The rules
that read other root keys (discardDataOnDestroy, existingServer) are StackFile rules calling `data_volume_problems`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, ClassVar, Optional

from pydantic import Field

from components.config.base import Settings, rule
from components.config.formats import MAX_STORAGE_GB
from components.config.values import choice, passes, problem, text, whole_number

ON_DESTROY = ("snapshot", "retain", "delete")
DEFAULT_SIZE_GB = 100
MIN_SIZE_GB = 1  # gp3's minimum
VOLUME_ID_RE = re.compile(r"^vol-([0-9a-f]{8}|[0-9a-f]{17})$")
SNAPSHOT_ID_RE = re.compile(r"^snap-([0-9a-f]{8}|[0-9a-f]{17})$")


class DataVolumeSettings(Settings):
    """The data volume of the stack's server."""

    shape_fix: ClassVar[str] = "expected a map such as {sizeGb: 100, onDestroy: snapshot}"

    size_gb: Annotated[Optional[int], whole_number(MIN_SIZE_GB, MAX_STORAGE_GB, " GB")] = Field(
        None, description=f"size of the volume labstack makes (default {DEFAULT_SIZE_GB}); raising it grows the volume "
                          "and its filesystem online; EBS cannot shrink a volume, so lowering it is refused by AWS")
    on_destroy: Annotated[Optional[str], choice(*ON_DESTROY, fix="must be `snapshot` (a final snapshot, then the "
                                                "volume goes), `retain` (the volume stays) or `delete` (needs "
                                                "labstack:discardDataOnDestroy: true)")] = Field(
        None, description="what `pulumi destroy` does with the volume labstack made: `snapshot` (default), `retain` "
                          "or `delete`")
    id: Annotated[Optional[str], text(passes(VOLUME_ID_RE.match, "expected an EBS volume id such as "
                                             "vol-0123456789abcdef0"))] = Field(
        None, description="attach this existing volume instead of making one (same availability zone, attached to "
                          "nothing else); this stack never resizes, snapshots or deletes it")
    from_snapshot: Annotated[Optional[str], text(passes(SNAPSHOT_ID_RE.match, "expected an EBS snapshot id such as "
                                                        "snap-0123456789abcdef0"))] = Field(
        None, description="make the volume from this snapshot (e.g. the final snapshot of a destroyed stack)")

    @rule("id", "size_gb", "from_snapshot", "on_destroy")
    def _an_attached_volume_is_not_ours(self, context: dict) -> list:
        if self.id is None:
            return []
        reasons = {"size_gb": "the attached volume keeps its size (resize it where it was made)",
                   "from_snapshot": "an attached volume already holds its data",
                   "on_destroy": "labstack never snapshots or deletes a volume it did not make"}
        return [self.at(name, None, problem(line=f"{{key}} cannot be used with dataVolume.id: {reasons[name]}; "
                                                 "remove one of them"))
                for name in self.given(*reasons)]


@dataclass(frozen=True)
class DataVolumeConfig:
    """The program's view: either `existing_id`, or a volume labstack makes of `size_gb`."""

    size_gb: int
    on_destroy: str  # snapshot | retain | delete (meaningless for an existing volume)
    existing_id: Optional[str]
    from_snapshot: Optional[str]


def data_volume_config(settings: Optional[DataVolumeSettings]) -> Optional[DataVolumeConfig]:
    if settings is None:
        return None
    return DataVolumeConfig(size_gb=settings.size_gb or DEFAULT_SIZE_GB, on_destroy=settings.on_destroy or "snapshot",
                            existing_id=settings.id, from_snapshot=settings.from_snapshot)


def data_volume_problems(settings: DataVolumeSettings, discard_data_on_destroy: bool,
                         existing_server: bool) -> list[tuple[Optional[str], object]]:
    """(key below labstack:dataVolume or None for the whole map, problem) for the rules that read other root keys."""
    if existing_server:
        return [(None, problem(line="{key} cannot be used with labstack:existingServer: labstack makes and attaches "
                                    "the volume in AWS; mount a disk on your server yourself, or remove one of them"))]
    if settings.on_destroy == "delete" and not discard_data_on_destroy:
        return [("onDestroy", problem(
            "deletes the volume and its data on `pulumi destroy`: also set labstack:discardDataOnDestroy true, or use "
            "`snapshot` (default) or `retain`"))]
    return []

"""labstack:dataVolume: defaults and the settings refused before anything is created, one line each."""
from __future__ import annotations

import pytest

from components.config.data_volume import DataVolumeConfig
from components.config.messages import ConfigError
from components.config.stack import load_stack_config
from tests.unit.helpers import base_config

VOL = "vol-0123456789abcdef0"
SNAP = "snap-0123456789abcdef0"


def problems(pem, **overrides) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_stack_config(base_config(pem, **overrides), "lab")
    return caught.value.problems


def test_defaults_make_a_100_gb_volume_snapshotted_on_destroy(pem):
    cfg = load_stack_config(base_config(pem, dataVolume={}), "lab")
    assert cfg.data_volume == DataVolumeConfig(size_gb=100, on_destroy="snapshot", existing_id=None,
                                               from_snapshot=None)
    assert load_stack_config(base_config(pem), "lab").data_volume is None


def test_an_existing_volume_and_a_snapshot_are_taken_as_given(pem):
    cfg = load_stack_config(base_config(pem, dataVolume={"id": VOL}), "lab")
    assert cfg.data_volume.existing_id == VOL
    cfg = load_stack_config(base_config(pem, dataVolume={"sizeGb": 200, "fromSnapshot": SNAP}), "lab")
    assert (cfg.data_volume.size_gb, cfg.data_volume.from_snapshot) == (200, SNAP)


def test_delete_needs_discard_data_on_destroy(pem):
    assert problems(pem, dataVolume={"onDestroy": "delete"}) == [
        "labstack:dataVolume.onDestroy = 'delete': deletes the volume and its data on `invoke destroy -s lab`: also set "
        "labstack:discardDataOnDestroy true, or use `snapshot` (default) or `retain`"]
    cfg = load_stack_config(base_config(pem, dataVolume={"onDestroy": "delete"}, discardDataOnDestroy=True), "lab")
    assert cfg.data_volume.on_destroy == "delete"


def test_an_attached_volume_takes_no_size_snapshot_or_destroy_setting(pem):
    found = problems(pem, dataVolume={"id": VOL, "sizeGb": 50, "fromSnapshot": SNAP, "onDestroy": "retain"})
    assert found == [
        "labstack:dataVolume.sizeGb cannot be used with dataVolume.id: the attached volume keeps its size (resize it "
        "where it was made); remove one of them",
        "labstack:dataVolume.fromSnapshot cannot be used with dataVolume.id: an attached volume already holds its "
        "data; remove one of them",
        "labstack:dataVolume.onDestroy cannot be used with dataVolume.id: labstack never snapshots or deletes a "
        "volume it did not make; remove one of them"]


def test_malformed_ids_sizes_and_choices_are_named(pem):
    found = problems(pem, dataVolume={"id": "vol-xyz", "sizeGb": 0, "onDestroy": "keep"})
    assert len(found) == 3
    assert found[0].startswith("labstack:dataVolume.sizeGb = ")
    assert any(line.startswith("labstack:dataVolume.onDestroy = 'keep': must be `snapshot`") for line in found)
    assert "labstack:dataVolume.id = 'vol-xyz': expected an EBS volume id such as vol-0123456789abcdef0" in found
    assert problems(pem, dataVolume={"fromSnapshot": "snapshot-1"}) == [
        "labstack:dataVolume.fromSnapshot = 'snapshot-1': expected an EBS snapshot id such as snap-0123456789abcdef0"]


def test_an_existing_server_takes_no_data_volume(pem):
    found = problems(pem, dataVolume={"sizeGb": 10}, **{"aws:region": None},
                     existingServer={"host": "203.0.113.7", "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"})
    assert "labstack:dataVolume cannot be used with labstack:existingServer: labstack makes and attaches the volume " \
           "in AWS; mount a disk on your server yourself, or remove one of them" in found

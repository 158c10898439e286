"""The data volume's resources under Pulumi mocks: an encrypted gp3 volume in the instance's zone with the stack's
tags, its delete-before-replace attachment that stops the old instance first, and the final-snapshot delete step."""
from __future__ import annotations

from ops.offline import evaluate
from tests.unit.helpers import base_config

VOLUME = "aws:ebs/volume:Volume"
ATTACHMENT = "aws:ec2/volumeAttachment:VolumeAttachment"
LOCAL = "command:local:Command"
INSTANCE = "aws:ec2/instance:Instance"


def test_volume_is_encrypted_gp3_in_the_instances_zone_tagged_and_attached(pem):
    found = evaluate(base_config(pem, dataVolume={"sizeGb": 250}), "lab").ok()
    [volume] = found.of_type(VOLUME)
    [instance] = found.of_type(INSTANCE)
    assert (volume.inputs["size"], volume.inputs["type"], volume.inputs["encrypted"]) == (250, "gp3", True)
    assert volume.inputs["availabilityZone"] == "eu-west-3a" == instance.outputs["availabilityZone"]
    tags = volume.inputs["tags"]
    assert (tags["labstack:stack"], tags["labstack:role"], tags["Name"]) == ("lab", "data", "lab-data")
    assert "labstack:creator" in tags and "labstack:gb-month-usd" in tags
    [attachment] = found.of_type(ATTACHMENT)
    assert (attachment.inputs["instanceId"], attachment.inputs["volumeId"]) == (instance.id, volume.id)
    assert attachment.inputs["stopInstanceBeforeDetaching"] is True
    assert attachment.inputs["deviceName"] == "/dev/sdf"
    [snapshot] = [r for r in found.of_type(LOCAL) if r.name == "lab-data-final-snapshot"]
    assert snapshot.inputs["delete"] == "venv/bin/python -m ops.volume_snapshot"
    assert snapshot.inputs["environment"]["LABSTACK_REGION"] == "eu-west-3"
    assert snapshot.inputs["environment"]["LABSTACK_STACK"] == "lab"
    assert snapshot.inputs["environment"]["LABSTACK_VOLUME_ID"] == volume.id


def test_retain_and_delete_take_no_snapshot_and_an_existing_volume_is_only_attached(pem):
    retained = evaluate(base_config(pem, dataVolume={"onDestroy": "retain"}), "lab").ok()
    assert len(retained.of_type(VOLUME)) == 1
    assert not [r for r in retained.of_type(LOCAL) if r.name == "lab-data-final-snapshot"]
    attached = evaluate(base_config(pem, dataVolume={"id": "vol-0123456789abcdef0"}), "lab").ok()
    assert attached.of_type(VOLUME) == []
    [attachment] = attached.of_type(ATTACHMENT)
    assert attachment.inputs["volumeId"] == "vol-0123456789abcdef0"
    assert not evaluate(base_config(pem), "lab").ok().of_type(ATTACHMENT)


def test_the_mount_step_runs_after_the_attachment_and_before_docker_and_the_apps(pem):
    from tests.unit.helpers import recorded_dependencies

    image = "registry.example.org/lab/elif@sha256:" + "0f" * 32
    with recorded_dependencies() as dependencies:
        found = evaluate(base_config(pem, dataVolume={"sizeGb": 120}, apps={"elif": {"image": image}}), "lab").ok()
    [mount] = [r for r in found.of_type("command:remote:Command") if r.name == "lab-data-mount"]
    assert mount.inputs["create"] == "sudo -n /opt/labstack/hooks/mount-data.sh lab-data-id"
    assert 120 in mount.inputs["triggers"] and "lab-data-id" in mount.inputs["triggers"]
    assert {"lab-data-attachment", "lab-ready"} <= dependencies["lab-data-mount"]
    assert "lab-data-mount" in dependencies["lab-docker"]

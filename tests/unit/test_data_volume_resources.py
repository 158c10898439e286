"""The data volume's resources under Pulumi mocks: an encrypted gp3 volume in the instance's zone with the stack's
tags, its delete-before-replace attachment that stops the old instance first, and the final-snapshot delete step."""
from __future__ import annotations

from labstack.stacks.offline import FakeAws, evaluate
from tests.unit.helpers import base_config, digest

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
    assert snapshot.inputs["delete"] == "venv/bin/python -m labstack.data.volume_snapshot"
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

    image = "registry.example.org/lab/elif@sha256:" + digest("0f")
    with recorded_dependencies() as dependencies:
        found = evaluate(base_config(pem, dataVolume={"sizeGb": 120}, apps={"elif": {"image": image}}), "lab").ok()
    [mount] = [r for r in found.of_type("command:remote:Command") if r.name == "lab-data-mount"]
    volume_id = found.one(VOLUME).id
    assert volume_id.startswith("vol-")   # what mount-data.sh finds the device by
    assert mount.inputs["create"] == f"sudo -n /opt/labstack/hooks/mount-data.sh {volume_id}"
    assert 120 in mount.inputs["triggers"] and volume_id in mount.inputs["triggers"]
    assert {"lab-data-attachment", "lab-ready"} <= dependencies["lab-data-mount"]
    assert "lab-data-mount" in dependencies["lab-docker"]


# ------------------------------------------------------------------------- an attached volume (`dataVolume.id`)
VOLUME_ID = "vol-0123456789abcdef0"
SUBNET = "subnet-0123456789abcdef0"


def with_volume(pem, aws: FakeAws, **settings):
    return evaluate(base_config(pem, dataVolume={"id": VOLUME_ID}, **settings), "lab", aws)


def test_the_server_is_placed_in_the_zone_of_an_attached_volume(pem):
    aws = FakeAws(volumes={VOLUME_ID: {"availabilityZone": "eu-west-3b"}})
    default = with_volume(pem, aws).ok()
    assert default.one("aws:ec2/instance:Instance").inputs["availabilityZone"] == "eu-west-3b"
    created = with_volume(pem, aws, network="create").ok()
    assert created.one("aws:ec2/subnet:Subnet").inputs["availabilityZone"] == "eu-west-3b"
    assert "availabilityZone" not in created.one("aws:ec2/instance:Instance").inputs   # the subnet decides
    # a volume labstack makes goes where the instance is: no placement forced
    assert "availabilityZone" not in evaluate(base_config(pem, dataVolume={"sizeGb": 10}), "lab").ok().one(
        "aws:ec2/instance:Instance").inputs


def test_an_attached_volume_that_cannot_be_ours_is_refused_before_anything_is_made(pem):
    key = f"labstack:dataVolume.id = '{VOLUME_ID}'"
    other_zone = with_volume(pem, FakeAws(volumes={VOLUME_ID: {"availabilityZone": "eu-west-3c"}}), network=SUBNET)
    assert str(other_zone.error).splitlines()[1:] == [
        f"  - {key}: the volume is in eu-west-3c but labstack:network {SUBNET} is in eu-west-3a; use a subnet of "
        "eu-west-3c, or make a copy there with `aws ec2 create-snapshot` and labstack:dataVolume.fromSnapshot"]
    elsewhere = with_volume(pem, FakeAws(volumes={VOLUME_ID: {"attachedTo": {"i-0aaaaaaaaaaaaaaaa": "big-run"}}}))
    assert str(elsewhere.error).splitlines()[1:] == [
        f"  - {key}: the volume is attached to i-0aaaaaaaaaaaaaaaa, an instance of another stack; stop that instance "
        "and remove the volume from its stack (or detach it) first, then run this again"]
    plain = with_volume(pem, FakeAws(volumes={VOLUME_ID: {"encrypted": False}}))
    assert str(plain.error).splitlines()[1:] == [
        f"  - {key}: the volume is not encrypted, and labstack keeps the apps' data on encrypted volumes only; "
        f"snapshot it (`aws ec2 create-snapshot --volume-id {VOLUME_ID}`) and set labstack:dataVolume.fromSnapshot to "
        "that snapshot instead of id: labstack makes an encrypted volume from it"]
    assert not any(r.custom for r in plain.resources)  # nothing made, nothing attached
    missing = with_volume(pem, FakeAws(volumes={VOLUME_ID: {"missing": True}}))
    assert str(missing.error).splitlines()[1].startswith(f"  - {key}: no such volume in eu-west-3 (")
    assert not any(r.custom for r in other_zone.resources + elsewhere.resources + missing.resources)
    # attached to this stack's own server (every `pulumi up` after the first): fine
    assert with_volume(pem, FakeAws(volumes={VOLUME_ID: {"attachedTo": {"i-0bbbbbbbbbbbbbbbb": "lab"}}})).error is None

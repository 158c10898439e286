"""The data volume's hook (hooks/mount-data.sh) on a test bed host: a loop device stands in for the EBS volume under
the name Nitro gives it, visible only inside the host (TestbedHost.give_block_device).

Shown here: the first run formats and mounts; a second does not format; a device that already holds a filesystem
with data is mounted as it is; a device holding something else is refused, never formatted; growing the backing file
grows the filesystem online; and through the program (mocks + the e2e engine), a replaced instance (a new host handed
the same device after the old one shut down) serves the same Postgres rows.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from components.layout import HOOKS_DIR, SRV

pytestmark = [pytest.mark.testbed, pytest.mark.e2e]

VOLUME = "vol-0123456789abcdef0"
BY_ID = "nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0"
MIB = 1024 * 1024


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


@pytest.fixture
def loop_devices(tmp_path):
    """Backing files and their loop devices, detached again whatever happens (a loop device still mounted in a
    host's namespace is detached by the kernel when that namespace goes: losetup -d marks it autoclear)."""
    made: list[str] = []

    def make(name: str, size_mib: int) -> tuple[str, Path]:
        backing = tmp_path / name
        with open(backing, "wb") as f:
            f.truncate(size_mib * MIB)
        device = run(["losetup", "--find", "--show", str(backing)]).stdout.strip()
        made.append(device)
        return device, backing

    yield make
    for device in made:
        subprocess.run(["losetup", "-d", device], check=False)


@pytest.fixture
def host(testbed):
    host = testbed.new_host()
    try:
        yield host
    finally:
        testbed.stop_host(host)


def has_cap_sys_resource() -> bool:
    effective = int(next(line for line in Path("/proc/self/status").read_text().splitlines()
                         if line.startswith("CapEff:")).split()[1], 16)
    return bool(effective & (1 << 24))  # CAP_SYS_RESOURCE


def mount_data(host, wait: int = 6) -> subprocess.CompletedProcess:
    return host.exec_in(["bash", f"{HOOKS_DIR}/mount-data.sh", VOLUME, str(wait)], check=False)


def in_host(host, script: str) -> str:
    return host.exec_in(["sh", "-c", script]).stdout.strip()


def fs_size_mib(host) -> int:
    return int(in_host(host, f"df -B1M --output=size {SRV} | tail -n 1"))


def test_first_run_formats_and_mounts_a_second_keeps_the_filesystem(host, loop_devices):
    device, _ = loop_devices("volume.img", 200)
    host.give_block_device(BY_ID, device)
    first = mount_data(host)
    assert first.returncode == 0, first.stderr
    assert "holds no filesystem and no partition table: making ext4" in first.stderr
    assert in_host(host, f"findmnt -n -o SOURCE --mountpoint {SRV}") == device
    uuid = run(["blkid", "-o", "value", "-s", "UUID", device]).stdout.strip()
    assert in_host(host, f"grep ' {SRV} ' /etc/fstab") == (
        f"UUID={uuid} {SRV} ext4 defaults,nofail,x-systemd.device-timeout=60s 0 2")
    assert f" {SRV} " not in Path("/etc/fstab").read_text()  # the machine's own fstab is untouched
    in_host(host, f"echo participant-42 > {SRV}/marker")

    second = mount_data(host)
    assert second.returncode == 0, second.stderr
    assert "already holds ext4: keeping it" in second.stderr and "making ext4" not in second.stderr
    assert in_host(host, f"cat {SRV}/marker") == "participant-42"
    assert run(["blkid", "-o", "value", "-s", "UUID", device]).stdout.strip() == uuid
    assert in_host(host, f"grep -c ' {SRV} ' /etc/fstab") == "1"


def test_growing_the_device_grows_the_mounted_filesystem_or_says_why_not(host, loop_devices):
    """Where root may resize a mounted filesystem (EC2), it grows online. On a machine whose root lacks
    CAP_SYS_RESOURCE (this build machine) the kernel refuses: the hook must then fail with the kernel's reason and
    leave the volume mounted with its data; the growth itself is not shown here."""
    device, backing = loop_devices("volume.img", 200)
    host.give_block_device(BY_ID, device)
    assert mount_data(host).returncode == 0
    in_host(host, f"echo participant-42 > {SRV}/marker")
    before = fs_size_mib(host)
    with open(backing, "r+b") as f:  # sizeGb raised: EBS enlarges the device under the mounted filesystem
        f.truncate(400 * MIB)
    run(["losetup", "--set-capacity", device])
    grown = mount_data(host)
    assert "vol-0123456789abcdef0 grew to 400 MiB: growing its filesystem" in grown.stderr
    if not has_cap_sys_resource():
        # The kernel refuses online resize without CAP_SYS_RESOURCE (root on EC2 has it): the hook must say so.
        assert grown.returncode == 1 and "Permission denied to resize filesystem" in grown.stderr
        assert fs_size_mib(host) == before and in_host(host, f"cat {SRV}/marker") == "participant-42"
        return
    assert grown.returncode == 0, grown.stderr
    assert before < 200 and fs_size_mib(host) > 350
    assert in_host(host, f"cat {SRV}/marker") == "participant-42"


def test_a_filesystem_with_data_is_mounted_as_it_is_and_anything_else_is_refused(host, loop_devices):
    device, _ = loop_devices("used.img", 64)
    run(["mkfs.ext4", "-q", device])
    uuid = run(["blkid", "-o", "value", "-s", "UUID", device]).stdout.strip()
    in_host(host, f"mkdir -p {SRV}/apps/elif && echo root-disk-row > {SRV}/apps/elif/row")
    run(["sh", "-c", f"d=$(mktemp -d) && mount {device} $d && mkdir -p $d/apps/elif && echo volume-row > "
                     f"$d/apps/elif/row && umount $d && rmdir $d"])
    host.give_block_device(BY_ID, device)
    result = mount_data(host)
    assert result.returncode == 0, result.stderr
    assert "making ext4" not in result.stderr
    assert run(["blkid", "-o", "value", "-s", "UUID", device]).stdout.strip() == uuid
    assert in_host(host, f"cat {SRV}/apps/elif/row") == "volume-row"
    # the root disk's data is kept aside, not lost and not merged
    assert in_host(host, f"cat {SRV}.root-disk-*/apps/elif/row") == "root-disk-row"

    in_host(host, f"umount {SRV}")
    swap, _ = loop_devices("swap.img", 64)
    run(["mkswap", swap])
    host.give_block_device(BY_ID, swap)
    refused = mount_data(host)
    assert refused.returncode == 1
    assert "holds swap" in refused.stderr and "never reformats" in refused.stderr
    assert run(["blkid", "-o", "value", "-s", "TYPE", swap]).stdout.strip() == "swap"


def test_a_volume_that_never_appears_is_named_after_a_bounded_wait(host):
    result = mount_data(host, wait=2)
    assert result.returncode == 1
    assert f"{VOLUME} did not appear as /dev/disk/by-id/{BY_ID} within 2s" in result.stderr


def test_a_replaced_instance_serves_the_same_postgres_rows(make_stack, example_images, loop_devices):
    """The program's order: the old instance stops (its OS shuts down: apps stopped, disks unmounted), the volume is
    detached and attached to the new instance, whose first `up` mounts it before Docker and deploys the app, which
    finds its database and the database's password on the volume."""
    apps = {"elif": {"image": example_images.v1, "host": "@"}}
    device, _ = loop_devices("volume.img", 300)
    old = make_stack(apps, **{"labstack:dataVolume": {"sizeGb": 1}})
    volume_id = old.evaluate().one("aws:ebs/volume:Volume").id
    by_id = "nvme-Amazon_Elastic_Block_Store_" + volume_id.replace("-", "")
    old.host.give_block_device(by_id, device)
    old.up()
    old.wait_serving()
    for _ in range(3):
        assert old.status_and_body("/visits", method="POST")[0] == 200
    rows = json.loads(old.status_and_body("/visits")[1])["db_visits"]
    assert rows >= 3
    assert in_host(old.host, f"findmnt -n -o SOURCE --mountpoint {SRV}") == device

    old.host.run("sudo -n shutdown -h now")   # stop_instance_before_detaching: EC2 stops the instance
    old.host.wait_powered_off(timeout=90)
    assert in_host(old.host, f"findmnt -n -o SOURCE --mountpoint {SRV} || true") == ""   # unmounted at shutdown

    new = make_stack(apps, **{"labstack:dataVolume": {"sizeGb": 1}})
    assert new.evaluate().one("aws:ebs/volume:Volume").id == volume_id   # the same volume, a new instance
    new.host.give_block_device(by_id, device)
    runs = new.up()
    new.wait_serving()
    assert json.loads(new.status_and_body("/visits")[1])["db_visits"] == rows
    assert "database password restored" in "".join(run.result.stderr for run in runs if "deploy" in run.resource)
    mount_log = "".join(run.result.stderr for run in runs if "data-mount" in run.resource)
    assert "making ext4" not in mount_log and in_host(new.host, f"findmnt -n -o SOURCE --mountpoint {SRV}") == device

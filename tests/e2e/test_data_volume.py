"""The data volume's hook (hooks/mount-data.sh) on a test bed host: a loop device stands in for the EBS volume under
the name Nitro gives it, visible only inside the host (TestbedHost.give_block_device).

Shown here: the first run formats and mounts; a second does not format; a device that already holds a filesystem
with data is mounted as it is; a device holding something else is refused, never formatted; growing the backing file
grows the filesystem online. Not yet here: a replaced instance serving the same Postgres rows (README, Data volume).
"""
from __future__ import annotations

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

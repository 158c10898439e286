#!/usr/bin/env bash
# Grow the root partition and filesystem to the size of its (possibly enlarged) EBS volume; a no-op otherwise.
# Usage: sudo grow-fs.sh
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"

source_device=$(findmnt -n -o SOURCE /)
fs_type=$(findmnt -n -o FSTYPE /)
if [ ! -b "$source_device" ]; then
  log "root filesystem ($fs_type on $source_device) is not on a block device: nothing to grow"
  exit 0
fi
partition=$(basename "$(readlink -f "$source_device")")
if [ -r "/sys/class/block/$partition/partition" ]; then
  disk=$(lsblk -no PKNAME "/dev/$partition" | head -n 1)
  number=$(cat "/sys/class/block/$partition/partition")
  # growpart exits 1 with NOCHANGE when the partition already fills the disk.
  if output=$(growpart "/dev/$disk" "$number" 2>&1); then
    log "grew /dev/$disk partition $number"
  elif grep -q NOCHANGE <<<"$output"; then
    log "partition already fills /dev/$disk"
  else
    die "growpart failed: $output"
  fi
fi
# sysfs gives the size in 512-byte sectors without opening the device.
device_bytes=$(( $(cat "/sys/class/block/$partition/size") * 512 ))
case "$fs_type" in
  ext4|ext3|ext2)
    if ! superblock=$(dumpe2fs -h "$source_device" 2>/dev/null); then
      log "cannot read the superblock of $source_device (a container without device access?): nothing to grow"
      exit 0
    fi
    fs_bytes=$(awk -F: '/^Block count/ {count=$2} /^Block size/ {size=$2} END {print count * size}' <<<"$superblock") ;;
  xfs)
    fs_bytes=$(xfs_info / | sed -n 's/^data *= *bsize=\([0-9]*\) *blocks=\([0-9]*\).*/\1 \2/p' | awk '{print $1 * $2}') ;;
  *) die "cannot grow a $fs_type root filesystem" ;;
esac
# Filesystems end a little short of their device (alignment); only a real gap is worth a resize.
if [ $((device_bytes - fs_bytes)) -lt $((64 * 1024 * 1024)) ]; then
  log "root filesystem already fills $source_device ($((fs_bytes / 1024 / 1024 / 1024)) GiB): nothing to grow"
  exit 0
fi
case "$fs_type" in
  xfs) xfs_growfs / >/dev/null ;;
  *) resize2fs "$source_device" >/dev/null 2>&1 || die "resize2fs $source_device failed" ;;
esac
log "root filesystem grown from $((fs_bytes / 1024 / 1024 / 1024)) GiB to $((device_bytes / 1024 / 1024 / 1024)) GiB"

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
before=$(df -B1G --output=size / | tail -n 1 | tr -d ' ')
case "$fs_type" in
  ext4|ext3|ext2) resize2fs "$source_device" >/dev/null 2>&1 ;;
  xfs) xfs_growfs / >/dev/null ;;
  *) die "cannot grow a $fs_type root filesystem" ;;
esac
after=$(df -B1G --output=size / | tail -n 1 | tr -d ' ')
log "root filesystem: ${before} GB -> ${after} GB"

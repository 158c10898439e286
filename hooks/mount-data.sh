#!/usr/bin/env bash
# Mount the stack's data volume (labstack:dataVolume) at /srv/labstack: find it by its EBS volume id, make a
# filesystem only when the device holds none, mount it (fstab by UUID, nofail) and grow the filesystem online when the
# volume grew. Idempotent; runs before Docker's containers and the apps start (HostSetup).
# Usage: sudo mount-data.sh vol-0123456789abcdef0 [WAIT_SECONDS]
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"

volume_id=${1:?usage: mount-data.sh VOLUME_ID [WAIT_SECONDS]}
wait_seconds=${2:-300}
[[ $volume_id =~ ^vol-[0-9a-f]+$ ]] || die "not an EBS volume id: $volume_id"
mount_point=$LABSTACK_SRV
fstab=/etc/fstab

# Nitro instances expose EBS volumes as NVMe devices whose serial is the volume id without its dash; udev names them
# after it. The /dev/sdf given to EC2 is only a hint the kernel does not follow, so it is never guessed.
link=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol${volume_id#vol-}
waited=0
until [ -b "$link" ]; do
  # The attachment may still be in progress when the instance boots or right after Pulumi attached it.
  [ "$waited" -lt "$wait_seconds" ] || die "$volume_id did not appear as $link within ${wait_seconds}s: is it attached to this instance (aws ec2 describe-volumes --volume-ids $volume_id)?"
  sleep 2
  waited=$((waited + 2))
done
device=$(readlink -f "$link")
log "$volume_id is $device"

probe() {  # prints KEY=value lines (TYPE, UUID, PTTYPE, ...) of what the device holds; nothing for a blank device
  blkid -p -o export "$device" || [ $? -eq 2 ]  # blkid exits 2 when it finds no signature at all
}
holding=$(probe)
fs_type=$(sed -n 's/^TYPE=//p' <<<"$holding")
if [ -z "$holding" ]; then
  log "$device holds no filesystem and no partition table: making ext4"
  mkfs.ext4 -q -m 1 "$device"
  holding=$(probe)
  fs_type=$(sed -n 's/^TYPE=//p' <<<"$holding")
elif [ "$fs_type" != ext4 ]; then
  # Anything else (a partition table, xfs, a LUKS header) is data we did not put there: never format it.
  die "$device ($volume_id) holds ${fs_type:-a partition table} ($(tr '\n' ' ' <<<"$holding")), not the ext4 labstack makes; labstack never reformats a volume: attach an empty or ext4 volume"
else
  log "$device already holds ext4: keeping it"
fi
uuid=$(sed -n 's/^UUID=//p' <<<"$holding")
[ -n "$uuid" ] || die "cannot read the UUID of the filesystem on $device"

# fstab by UUID (device names change between instances); nofail so a missing volume never stops the boot (sshd
# comes up and the operator can look). Our line replaces any other line for the mount point.
line="UUID=$uuid $mount_point ext4 defaults,nofail,x-systemd.device-timeout=60s 0 2"
if ! grep -qxF "$line" "$fstab"; then
  awk -v mp="$mount_point" '$2 != mp' "$fstab" >"$fstab.labstack-new"
  printf '%s\n' "$line" >>"$fstab.labstack-new"
  cat "$fstab.labstack-new" >"$fstab"  # in place: the file may be a bind mount
  rm -f "$fstab.labstack-new"
  log "fstab: $line"
fi

# Docker waits for the mount at boot, so no container writes to the root disk under an unmounted /srv/labstack.
if [ -d /run/systemd/system ]; then
  dropin=/etc/systemd/system/docker.service.d/labstack-data.conf
  want=$'[Unit]\nRequiresMountsFor='"$mount_point"
  if [ "$(cat "$dropin" 2>/dev/null)" != "$want" ]; then
    mkdir -p "$(dirname "$dropin")"
    printf '%s\n' "$want" >"$dropin"
    systemctl daemon-reload
  fi
fi

mounted_source=$(findmnt -n -o SOURCE --mountpoint "$mount_point" || true)
if [ -n "$mounted_source" ] && [ "$(readlink -f "$mounted_source")" != "$device" ]; then
  die "$mount_point is already a mount of $mounted_source, not of $volume_id ($device): unmount it first"
fi
if [ -z "$mounted_source" ]; then
  # Containers holding bind mounts under the mount point would keep writing to the root disk: stop them while the
  # volume goes in, start them again after (Docker resolves bind mounts at each start).
  running=()
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    while read -r id; do
      if docker inspect -f '{{range .Mounts}}{{.Source}}{{"\n"}}{{end}}' "$id" | grep -q "^$mount_point"; then
        running+=("$id")
      fi
    done < <(docker ps -q)
  fi
  if [ "${#running[@]}" -gt 0 ]; then
    log "stopping ${#running[@]} container(s) using $mount_point while the volume goes in"
    docker stop "${running[@]}" >/dev/null
  fi
  if [ -d "$mount_point" ] && [ -n "$(ls -A "$mount_point")" ]; then
    # Data already on the root disk (a server that ran before it had a volume) is never lost: copied onto a volume
    # that holds nothing yet, and in every case kept aside on the root disk.
    staging=$(mktemp -d)
    mount "$device" "$staging"
    if [ -z "$(find "$staging" -mindepth 1 -maxdepth 1 ! -name lost+found -print -quit)" ]; then
      log "copying the data of $mount_point on the root disk onto the new volume"
      cp -a "$mount_point/." "$staging/"
    else
      log "the volume holds data already: it wins; the root disk's $mount_point is kept aside, not merged"
    fi
    umount "$staging"
    rmdir "$staging"
    aside="$mount_point.root-disk-$(date -u +%Y%m%dT%H%M%SZ)"
    mv "$mount_point" "$aside"
    log "the root disk's former $mount_point is kept at $aside (delete it once the apps look right)"
  fi
  mkdir -p "$mount_point"
  mount "$device" "$mount_point"
  log "mounted $volume_id at $mount_point"
  if [ "${#running[@]}" -gt 0 ]; then
    docker start "${running[@]}" >/dev/null
  fi
fi

# Grow online when the volume grew (sizeGb raised: EBS enlarges the device under the mounted filesystem).
device_bytes=$(blockdev --getsize64 "$device")
fs_bytes=$(dumpe2fs -h "$device" 2>/dev/null | awk -F: '/^Block count/ {c=$2} /^Block size/ {s=$2} END {print c * s}')
if [ $((device_bytes - fs_bytes)) -ge $((64 * 1024 * 1024)) ]; then
  log "$volume_id grew to $((device_bytes / 1024 / 1024)) MiB: growing its filesystem ($((fs_bytes / 1024 / 1024)) MiB) online"
  # Online resize needs CAP_SYS_RESOURCE, which root has on a server (not in every container).
  output=$(resize2fs "$device" 2>&1) || die "resize2fs $device failed: $output"
  log "grew the filesystem on $volume_id to $((device_bytes / 1024 / 1024)) MiB"
fi

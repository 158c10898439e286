#!/usr/bin/env bash
# Start a waiting container of IMAGE for the next job of that image (job-submit.sh hands it that job's folder), so the
# job starts without the engine's container start. One waiting container per server: a live one of IMAGE is kept,
# any other (another image, or one an engine restart or reboot ended) is removed. job-supervise.sh runs this in the
# background once a container job is running; running it by hand does the same.
# Usage: sudo job-spare.sh IMAGE
set -euo pipefail
# shellcheck source=hooks/job-lib.bash
source "$(dirname "$0")/job-lib.bash"
require_root "$@"
[ $# -eq 1 ] || die "usage: $0 IMAGE"
image=$1
[[ $image =~ ^[A-Za-z0-9._/:@-]{1,255}$ ]] || die "bad image '$image'"
mkdir -p "$JOBS_SRV"
chmod 0700 "$JOBS_SRV"
exec 8>"$JOBS_SRV/.spare.lock"
flock 8  # two jobs starting at once make one waiting container, not two (submits never wait for this lock)

for folder in "$JOBS_SRV"/.spare-*; do
  [ -d "$folder" ] || continue
  if spare_record "$folder" && [ "$spare_image" = "$image" ]; then
    log "a container of $image is waiting already ($folder)"
    exit 0
  fi
  # Renamed first: a submit that claimed this folder meanwhile keeps it (the rename then fails here). A dead one's
  # record still names its container.
  discarded="$JOBS_SRV/.discard-${folder##*/.spare-}"
  if mv -T "$folder" "$discarded" 2>/dev/null; then
    remove_spare "$discarded" "$spare_container"
  fi
done

folder=$(mktemp -d "$JOBS_SRV/.spare-XXXXXX")
container="labstack-job-spare-${folder##*/.spare-}"
trap 'remove_spare "$folder" "$container"' EXIT
mkdir -m 0755 "$folder/.labstack"
chmod 0777 "$folder"  # as job-submit.sh: the image's user, root or not, works in it
mkfifo -m 0644 "$folder/.labstack/go"
docker run -d --name "$container" --label "$LABEL_APP=$SERVER_APP" --label "$LABEL_ROLE=job" \
  -v "$folder:/job" -w /job --entrypoint /bin/sh "$image" -c "$SPARE_WAITER" >/dev/null
pid=$(docker inspect -f '{{.State.Pid}}' "$container")
[ "$pid" -gt 0 ] || die "the waiting container $container is not running"
# The record comes last: a folder without it is never handed a job.
printf 'image=%q\ncontainer=%q\npid=%q\nstart=%q\n' "$image" "$container" "$pid" \
  "$(cut -d' ' -f22 "/proc/$pid/stat")" >"$folder/.labstack/spare.tmp"
mv -f "$folder/.labstack/spare.tmp" "$folder/.labstack/spare"
trap - EXIT
log "a container of $image waits for the next job ($container)"

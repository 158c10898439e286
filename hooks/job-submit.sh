#!/usr/bin/env bash
# Receive a job's files (a tar stream on stdin) into JOBS_SRV/<id>/ and start its supervisor detached, so the job
# survives the SSH session that submitted it.
# Usage: sudo job-submit.sh ID BYTES IMAGE|--on-host SCRIPT NAME SUBMITTER <files.tar
#   BYTES: the files' size, checked against the free disk before anything is written. NAME may be ''.
set -euo pipefail
# shellcheck source=hooks/job-lib.bash
source "$(dirname "$0")/job-lib.bash"
require_root "$@"
[ $# -eq 6 ] || die "usage: $0 ID BYTES IMAGE|--on-host SCRIPT NAME SUBMITTER <files.tar"
id=$1 bytes=$2 image=$3 script=$4 name=$5 by=$6
[[ $id =~ $JOB_ID_RE ]] || die "bad job id '$id'"
[[ $bytes =~ ^[0-9]+$ ]] || die "bad size '$bytes'"
[[ $script =~ ^[A-Za-z0-9._-]+$ && $script != .* ]] || die "bad script name '$script'"
[[ $name =~ ^[A-Za-z0-9._-]{0,64}$ ]] || die "bad job name '$name'"
[[ $by =~ ^[A-Za-z0-9._@-]{1,128}$ ]] || die "bad submitter '$by'"
if [ "$image" = --on-host ]; then mode=host image=''; else mode=container; fi
[[ $image =~ ^[A-Za-z0-9._/:@-]{0,255}$ ]] || die "bad image '$image'"
dir=$(job_dir "$id")
[ ! -e "$dir" ] || die "job $id exists already"
check_room "$bytes"
spare=''
if [ "$mode" = container ] && claim_spare "$image" "$id"; then
  incoming=$CLAIMED spare=$SPARE_CONTAINER  # a container of the image waits in this folder for the job
else
  incoming=$(mktemp -d "$JOBS_SRV/.incoming-$id.XXXXXX")
fi
trap 'remove_spare "$incoming" "$spare"' EXIT
tar -x --no-same-owner -C "$incoming" -f -
if ! reuse_files "$incoming"; then
  printf 'labstack: error: a file this upload left out is no longer on the server; send it whole\n' >&2
  exit "$JOB_REUSE_MISS"
fi
store_files "$incoming"
[ -f "$incoming/$script" ] || die "the upload holds no script $script"
chmod a+rx "$incoming/$script"  # a script with a #! line runs itself, whoever the image's user is
mkdir -p "$incoming/.labstack"
touch "$incoming/.labstack/env" "$incoming/job.log"
# The job may run as the image's own user, not root: it reads its files and env and writes its outputs and job.log
# in this folder. JOBS_SRV (0700 root) keeps everyone on the host but root out of it.
chmod 0777 "$incoming"
chmod 0755 "$incoming/.labstack"
chmod 0644 "$incoming/.labstack/env"
chmod 0666 "$incoming/job.log"
{
  printf 'name=%q\nimage=%q\nsubmittedBy=%q\nsubmittedAt=%q\nmode=%q\nscript=%q\n' \
    "$name" "$image" "$by" "$(now_utc)" "$mode" "$script"
} >"$incoming/.labstack/meta"
printf 'state=submitted\n' >"$incoming/.labstack/state"
mv "$incoming" "$dir"  # the job exists whole or not at all
trap - EXIT
if [ -n "$spare" ]; then
  # Hand the job to the waiting container now (it reads the script's name from the fifo and runs it); the
  # supervisor, started next, records it as running. Recorded first, so a cancel finds it; one that died meanwhile
  # never reads the fifo: the write gives up and the supervisor starts a container of the job's own.
  printf '%s\n' "$spare" >"$dir/.labstack/container"
  if ! timeout 5 tee "$dir/.labstack/go" <<<"$script" >/dev/null; then
    rm -f "$dir/.labstack/container"
    docker rm -f "$spare" >/dev/null 2>&1 &
  fi
  rm -f "$dir/.labstack/spare"
fi
write_status "$id"
setsid "$(dirname "$0")/job-supervise.sh" "$id" </dev/null >>"$(job_meta "$id")/supervisor.log" 2>&1 &
pid=$!
printf '%s %s\n' "$pid" "$(cut -d' ' -f22 "/proc/$pid/stat")" >"$(job_meta "$id")/supervisor"
printf '%s\n' "$id"

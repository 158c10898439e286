#!/usr/bin/env bash
# Print the status record (status.json, one line each) of the jobs named (in that order; one ssh command polls
# many jobs) or of every job, oldest first. A job whose
# supervisor is gone (engine restart, host reboot) is marked interrupted first, so none stays "running" forever;
# run with no argument at boot to settle every job.
# Usage: sudo job-status.sh [ID...]
set -euo pipefail
# shellcheck source=hooks/job-lib.bash
source "$(dirname "$0")/job-lib.bash"
require_root "$@"
if [ $# -ge 1 ]; then
  for id in "$@"; do need_job "$id"; done
  for id in "$@"; do
    reconcile_job "$id"
    cat "$(job_dir "$id")/status.json"
  done
  exit 0
fi
[ -d "$JOBS_SRV" ] || exit 0
for status in "$JOBS_SRV"/*/status.json; do
  [ -f "$status" ] || continue
  id=$(basename "$(dirname "$status")")
  reconcile_job "$id"
  cat "$status"
done

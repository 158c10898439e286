#!/usr/bin/env bash
# Print the status record (status.json, one line each) of one job or of every job, oldest first. A job whose
# supervisor is gone (engine restart, host reboot) is marked interrupted first, so none stays "running" forever;
# run with no argument at boot to settle every job.
# Usage: sudo job-status.sh [ID]
set -euo pipefail
# shellcheck source=hooks/job-lib.bash
source "$(dirname "$0")/job-lib.bash"
require_root "$@"
if [ $# -ge 1 ]; then
  need_job "$1"
  reconcile_job "$1"
  cat "$(job_dir "$1")/status.json"
  exit 0
fi
[ -d "$JOBS_SRV" ] || exit 0
for status in "$JOBS_SRV"/*/status.json; do
  [ -f "$status" ] || continue
  id=$(basename "$(dirname "$status")")
  reconcile_job "$id"
  cat "$status"
done

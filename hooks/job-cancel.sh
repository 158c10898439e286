#!/usr/bin/env bash
# Cancel a job: stop its container (or its process group on the host) and wait until it is recorded as cancelled.
# A job that has ended already is left as it is. Usage: sudo job-cancel.sh ID
set -euo pipefail
# shellcheck source=hooks/job-lib.bash
source "$(dirname "$0")/job-lib.bash"
require_root "$@"
[ $# -eq 1 ] || die "usage: $0 ID"
id=$1
need_job "$id"
reconcile_job "$id"
job_lock "$id"
load_job "$id"
if [ "$state" != submitted ] && [ "$state" != running ]; then
  job_unlock
  log "job $id has ended already ($state)"
  cat "$(job_dir "$id")/status.json"
  exit 0
fi
touch "$(job_meta "$id")/cancel"
stop_job_process "$id"
job_unlock
for _ in $(seq 1 60); do
  load_job "$id"
  if [ "$state" != submitted ] && [ "$state" != running ]; then break; fi
  sleep 0.5
done
reconcile_job "$id"
cat "$(job_dir "$id")/status.json"

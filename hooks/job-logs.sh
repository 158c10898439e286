#!/usr/bin/env bash
# Print a job's log (its script's stdout and stderr); --follow keeps printing until the job ends.
# Usage: sudo job-logs.sh ID [--follow]
set -euo pipefail
# shellcheck source=hooks/job-lib.bash
source "$(dirname "$0")/job-lib.bash"
require_root "$@"
[ $# -ge 1 ] || die "usage: $0 ID [--follow]"
id=$1
need_job "$id"
log_file="$(job_dir "$id")/job.log"
touch "$log_file"
if [ "${2:-}" = --follow ] && supervisor_alive "$id"; then
  read -r pid _ <"$(job_meta "$id")/supervisor"
  exec tail -n +1 -F --pid="$pid" "$log_file" 2>/dev/null
fi
cat "$log_file"

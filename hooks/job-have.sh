#!/usr/bin/env bash
# Which of the sha256 digests on stdin (one per line, as labstack/jobs/server.py computes them) JOBS_STORE holds: those files are
# left out of the upload and job-submit.sh copies them from the store. BYTES (the whole upload) is checked against
# the free disk first, as job-submit.sh does, so a job that cannot fit is refused before its files are hashed.
# Entries that no job folder links any more (their jobs were removed) are dropped first, so the store never holds
# more than the job folders do.
# Usage: sudo job-have.sh BYTES < digests
set -euo pipefail
# shellcheck source=hooks/job-lib.bash
source "$(dirname "$0")/job-lib.bash"
require_root "$@"
if [ $# -ne 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then die "usage: $0 BYTES < digests"; fi
check_room "$1"
mkdir -p "$JOBS_STORE"
find "$JOBS_STORE" -maxdepth 1 -type f -links 1 -delete
while read -r sha; do
  if [[ $sha =~ ^[0-9a-f]{64}$ ]] && [ -f "$JOBS_STORE/$sha" ]; then printf '%s\n' "$sha"; fi
done

#!/usr/bin/env bash
# Which of the sha256 digests on stdin (one per line) the large-file store JOBS_STORE holds: those files are left out
# of the upload and job-submit.sh copies them from the store. BYTES (the whole upload) is checked against the free
# disk first; store entries no job folder links any more are dropped first (hooks/agent/store.py).
# Usage: sudo job-have.sh BYTES < digests
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
run_agent job-have "$@"

#!/usr/bin/env bash
# Cancel a job: stop its container (or its process group on the host) and wait until it is recorded as cancelled.
# A job that has ended already is left as it is. Usage: sudo job-cancel.sh ID
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
run_agent job-cancel "$@"

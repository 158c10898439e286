#!/usr/bin/env bash
# Print a job's log (its script's stdout and stderr); --follow keeps printing until the job ends.
# Usage: sudo job-logs.sh ID [--follow]
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
run_agent job-logs "$@"

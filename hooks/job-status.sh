#!/usr/bin/env bash
# Print the status record (status.json, one line each) of the jobs named (in that order; one ssh command polls
# many jobs) or of every job, oldest first. A job whose
# supervisor is gone (engine restart, host reboot) is marked interrupted first, so none stays "running" forever;
# run with no argument at boot to settle every job (hooks/agent/jobs.py).
# Usage: sudo job-status.sh [ID...]
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
run_agent job-status "$@"

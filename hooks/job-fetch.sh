#!/usr/bin/env bash
# Stream a path of a job's folder as a tar on stdout, followed by .labstack-sha256sums (sha256 of every file), so
# the operator side verifies what it received. Paths outside the job folder are refused (hooks/agent/fetch.py).
# Usage: sudo job-fetch.sh ID PATH >out.tar
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
run_agent job-fetch "$@"

#!/usr/bin/env bash
# The auto-stop watcher (labstack:autoStop, labstack:budget.total): one check, run every minute by
# labstack-auto-stop.timer (or by hand); the node agent decides (hooks/agent/watcher.py). It prints the check's
# outcome on one line: `auto-stop: busy: ...`, `idle for Ns of Ms` or `stopping: ...`.
# Usage: sudo auto-stop.sh
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
run_agent auto-stop "$@"

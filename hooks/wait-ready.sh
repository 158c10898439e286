#!/usr/bin/env bash
# Wait until the server has finished booting: cloud-init done (host keys, users), sudo usable.
# Usage: sudo wait-ready.sh [TIMEOUT_SECONDS]
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
timeout_seconds=${1:-600}

if command -v cloud-init >/dev/null 2>&1; then
  log "waiting for cloud-init (at most ${timeout_seconds}s)"
  status=0
  timeout "$timeout_seconds" cloud-init status --wait >/dev/null || status=$?
  case "$status" in
    0) ;;
    2) log "cloud-init finished with recoverable errors (degraded); see: cloud-init status --long" ;;
    *) cloud-init status --long >&2 || true
       die "cloud-init did not finish cleanly (exit $status); see /var/log/cloud-init-output.log on the server" ;;
  esac
else
  log "no cloud-init here (an existing server): nothing to wait for"
fi
# shellcheck disable=SC1091
. /etc/os-release
log "ready: ${PRETTY_NAME:-unknown OS}, $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB"

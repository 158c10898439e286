#!/usr/bin/env bash
# Repair what an interrupted deploy, pause or export left for an app (reconcile_app in app-state.bash; one stderr
# line per repair), then print its state like app-state.sh. Idempotent: a consistent app is left as it is.
# Usage: sudo app-reconcile.sh APP
set -euo pipefail
# shellcheck source=hooks/app-state.bash
source "$(dirname "$0")/app-state.bash"
require_root "$@"
valid_app_name "${1:?usage: app-reconcile.sh APP}"
lock_app "$1"
reconcile_app "$1"
state_print "$1"

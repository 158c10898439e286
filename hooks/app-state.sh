#!/usr/bin/env bash
# Print what serves for an app, as its state file records it (app-state.bash): COLOR, RELEASE, IMAGE, WORKERS and
# SWITCHED_AT lines; nothing when no release serves. Reads a server deployed by an earlier labstack too. Changes
# nothing (app-reconcile.sh repairs first).
# Usage: sudo app-state.sh APP
set -euo pipefail
# shellcheck source=hooks/app-state.bash
source "$(dirname "$0")/app-state.bash"
require_root "$@"
valid_app_name "${1:?usage: app-state.sh APP}"
state_print "$1"

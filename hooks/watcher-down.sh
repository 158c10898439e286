#!/usr/bin/env bash
# Turn the auto-stop watcher off (labstack:autoStop removed or false, or the stack destroyed): the timer goes, its
# settings go; its records in WATCHER_STATE (why and when the server stopped) stay. Idempotent.
# Usage: sudo watcher-down.sh
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
PATH=$PATH:/usr/sbin:/sbin

units=$LABSTACK_ROOT/etc/systemd/system
if [ -d /run/systemd/system ] && [ -f "$units/$WATCHER_UNIT.timer" ]; then
  systemctl disable --now "$WATCHER_UNIT.timer"
fi
rm -f "$units/$WATCHER_UNIT.timer" "$units/$WATCHER_UNIT.service"
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
fi
rm -rf "$WATCHER_ETC"
log "auto-stop watcher off"

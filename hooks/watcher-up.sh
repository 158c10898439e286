#!/usr/bin/env bash
# Install (or update) the auto-stop watcher: its settings from the bundle on stdin (watcher.env, busy-<app>.cmd),
# and a systemd timer running auto-stop.sh every minute. Without systemd (a container, the test bed) the files are
# installed and it says how to run the check instead. An empty bundle turns the watcher off. Idempotent.
# Usage: base64 tar.gz bundle | sudo watcher-up.sh
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
PATH=$PATH:/usr/sbin:/sbin

bundle=$(unpack_stdin_bundle)
trap 'rm -rf "$bundle"' EXIT
if [ ! -f "$bundle/watcher.env" ]; then  # no settings: labstack:autoStop is off and there is no budget total
  exec "$(dirname "$0")/watcher-down.sh"
fi
install -d -m 0700 "$WATCHER_ETC" "$WATCHER_STATE"
rm -f "$WATCHER_ETC"/busy-*.cmd
for file in "$bundle"/*; do
  install -m 0600 "$file" "$WATCHER_ETC/$(basename "$file")"
done

units=$LABSTACK_ROOT/etc/systemd/system
install -d "$units"
cat >"$units/$WATCHER_UNIT.service.new" <<UNIT
[Unit]
Description=labstack auto-stop watcher: one check (labstack:autoStop)
After=docker.service

[Service]
Type=oneshot
ExecStart=$LABSTACK_HOOKS/auto-stop.sh
UNIT
cat >"$units/$WATCHER_UNIT.timer.new" <<UNIT
[Unit]
Description=labstack auto-stop watcher, every minute

[Timer]
OnBootSec=1min
OnUnitActiveSec=1min
AccuracySec=5s

[Install]
WantedBy=timers.target
UNIT
mv "$units/$WATCHER_UNIT.service.new" "$units/$WATCHER_UNIT.service"
mv "$units/$WATCHER_UNIT.timer.new" "$units/$WATCHER_UNIT.timer"

if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now "$WATCHER_UNIT.timer"
  log "auto-stop watcher on: $WATCHER_UNIT.timer runs $LABSTACK_HOOKS/auto-stop.sh every minute"
else
  log "auto-stop watcher installed, but systemd does not run here: run $LABSTACK_HOOKS/auto-stop.sh every minute" \
    "(e.g. from cron) for it to act"
fi

#!/usr/bin/env bash
# Stop an app's web, workers and clock (or start them again), leaving its Postgres and Redis running: the export
# before a delete then reads data nobody is still writing. Caddy answers 502 for the app meanwhile.
# Usage: sudo pause-app.sh APP stop|start
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
app=${1:?usage: pause-app.sh APP stop|start}
action=${2:?usage: pause-app.sh APP stop|start}
valid_app_name "$app"
case "$action" in
  stop|start) ;;
  *) die "unknown action '$action': use stop or start" ;;
esac
color=$(cat "$(app_etc "$app")/$ACTIVE_COLOR" 2>/dev/null || true)
[ -n "$color" ] || die "$app has no serving release on this server"
compose_release "$app" "$color" "$action" >/dev/null 2>&1 || die "could not $action $app ($color)"
if [ "$action" = stop ]; then
  log "$app: web, workers and clock stopped ($color); Postgres and Redis keep running"
else
  log "$app: web, workers and clock started again ($color)"
fi

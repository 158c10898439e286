#!/usr/bin/env bash
# Stop an app's web, workers and clock (or start them again), leaving its Postgres and Redis running: the export
# before a delete then reads data nobody is still writing. Caddy answers 502 for the app meanwhile.
# It first repairs what an interrupted run left (reconcile_app), then acts on the release the app's state names;
# without one it refuses rather than guess which release holds the data.
# Usage: sudo pause-app.sh APP stop|start
set -euo pipefail
# shellcheck source=hooks/app-state.bash
source "$(dirname "$0")/app-state.bash"
require_root "$@"
app=${1:?usage: pause-app.sh APP stop|start}
action=${2:?usage: pause-app.sh APP stop|start}
valid_app_name "$app"
case "$action" in
  stop|start) ;;
  *) die "unknown action '$action': use stop or start" ;;
esac
lock_app "$app"
# Stopping: the serving release is not started first (its stopped services stay stopped).
if [ "$action" = stop ]; then
  reconcile_app "$app" --keep-stopped
else
  reconcile_app "$app"
fi
state_read "$app"
color=$STATE_COLOR
[ -n "$color" ] || die "$app has no serving release on this server (no $APP_STATE); refusing to guess which to $action"
compose_release "$app" "$color" "$action" >/dev/null 2>&1 || die "could not $action $app ($color)"
if [ "$action" = stop ]; then
  log "$app: web, workers and clock stopped ($color); Postgres and Redis keep running"
else
  log "$app: web, workers and clock started again ($color)"
fi

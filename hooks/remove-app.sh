#!/usr/bin/env bash
# Stop an app and remove its site. Its database files and data directory are KEPT (see purge-app.sh).
# It first repairs what an interrupted run left (reconcile_app), so what it reports matches what ran; a repair
# that fails does not stop the removal, which removes every release anyway.
# Usage: sudo remove-app.sh APP
set -euo pipefail
# shellcheck source=hooks/app-state.bash
source "$(dirname "$0")/app-state.bash"
require_root "$@"
app=${1:?usage: remove-app.sh APP}
valid_app_name "$app"
lock_app "$app"
etc=$(app_etc "$app")

(reconcile_app "$app" --keep-stopped) || log "$app: the repair failed (above); removing every release anyway"
rm -f "$(app_site "$app")"
if [ -n "$(proxy_container)" ]; then
  try_reload_proxy || die "Caddy refused the configuration without $app's site"
fi
for color in "${COLORS[@]}"; do
  down_release "$app" "$color" || die "$app: could not remove release $color; run me again once Docker answers"
done
if [ -f "$etc/$DATA_COMPOSE" ]; then
  compose_data "$app" down --remove-orphans >/dev/null 2>&1 || true
fi
caddy=$(proxy_container)
if [ -n "$caddy" ]; then
  docker network disconnect -f "$(app_network "$app")" "$caddy" >/dev/null 2>&1 || true  # may never have joined
fi
docker network rm "$(app_network "$app")" >/dev/null 2>&1 || true
rm -f "$etc/$APP_STATE" "$etc/$APP_STATE.new"
log "$app removed; its data is kept in $(app_srv "$app") (database, redis, data directory)."
log "to delete it for good: sudo $(dirname "$0")/purge-app.sh $app --delete-data"

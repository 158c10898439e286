#!/usr/bin/env bash
# Stop an app and remove its site. Its database files and data directory are KEPT (see purge-app.sh).
# Usage: sudo remove-app.sh APP
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
app=${1:?usage: remove-app.sh APP}
valid_app_name "$app"
etc=$LABSTACK_ETC/apps/$app

rm -f "$LABSTACK_ETC/proxy/sites/$app.caddy"
if [ -n "$(proxy_container)" ]; then
  reload_proxy
fi
for color in blue green; do
  if [ -f "$etc/app.compose.yaml" ]; then
    compose_release "$app" "$color" down --remove-orphans >/dev/null 2>&1 || true
  fi
done
if [ -f "$etc/data.compose.yaml" ]; then
  compose -p "$app-data" -f "$etc/data.compose.yaml" --env-file "$etc/db.env" down --remove-orphans >/dev/null 2>&1 || true
fi
docker network rm "labstack-$app" >/dev/null 2>&1 || true
rm -f "$etc/active-color" "$etc/active-release"
log "$app removed; its data is kept in $LABSTACK_SRV/apps/$app (database, redis, data directory)."
log "to delete it for good: sudo $(dirname "$0")/purge-app.sh $app --delete-data"

#!/usr/bin/env bash
# Delete a REMOVED app's data for good: database files, redis, data directory and its settings.
# Usage: sudo purge-app.sh APP --delete-data
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
app=${1:?usage: purge-app.sh APP --delete-data}
valid_app_name "$app"
[ "${2:-}" = --delete-data ] || die "this deletes $app's data for good; repeat with --delete-data to confirm"
if [ -n "$(docker ps -q --filter "label=com.docker.compose.project=$app-data")" ]; then
  die "$app is still running; remove it from the stack (pulumi up) or run remove-app.sh first"
fi
rm -rf "${LABSTACK_SRV:?}/apps/$app" "${LABSTACK_ETC:?}/apps/$app"
log "$app: data deleted"

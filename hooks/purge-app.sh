#!/usr/bin/env bash
# Delete a REMOVED app's data for good: database files, redis, data directory and its settings.
# Usage: sudo purge-app.sh APP --delete-data
set -euo pipefail
# shellcheck source=hooks/app-state.bash
source "$(dirname "$0")/app-state.bash"
require_root "$@"
app=${1:?usage: purge-app.sh APP --delete-data}
valid_app_name "$app"
[ "${2:-}" = --delete-data ] || die "this deletes $app's data for good; repeat with --delete-data to confirm"
lock_app "$app"
# Leftovers of an interrupted run go first (a release the state does not name); what the state names still runs
# and is refused below.
reconcile_app "$app" --keep-stopped
projects=("$(data_project "$app")")
for color in "${COLORS[@]}"; do
  projects+=("$(release_project "$app" "$color")")
done
for project in "${projects[@]}"; do
  if [ -n "$(docker ps -q --filter "label=com.docker.compose.project=$project")" ]; then
    die "$app is still running ($project); remove it from the stack (pulumi up) or run remove-app.sh first"
  fi
done
srv=$(app_srv "$app")
etc=$(app_etc "$app")
rm -rf "${srv:?}" "${etc:?}"
log "$app: data deleted"

#!/usr/bin/env bash
# The app's own export (its exportCommand): run in a one-off container of the app's image, with its env, data and
# database, working in an empty folder that is also $LABSTACK_EXPORT_DIR; that folder comes out on stdout as a
# tar.gz (the command's own output goes to stderr). No export command: nothing on stdout. The folder is removed.
# Usage: sudo app-export.sh APP > app-export.tar.gz
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
app=${1:?usage: app-export.sh APP > app-export.tar.gz}
valid_app_name "$app"
etc=$(app_etc "$app")
[ -s "$etc/$EXPORT_CMD" ] || exit 0

# The parent is root's only; the folder itself is open to whatever user the image runs as.
install -d -m 0700 "$EXPORT_SCRATCH"
scratch=$(mktemp -d "$EXPORT_SCRATCH/$app.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
chmod 0777 "$scratch"
log "$app: running its export command in a one-off container"
if ! compose_app "$app" "$(init_project "$app")" "" --profile init run --rm -T --no-deps \
    -v "$scratch:/labstack-export" -w /labstack-export -e LABSTACK_EXPORT_DIR=/labstack-export \
    init sh -c "$(cat "$etc/$EXPORT_CMD")" >&2; then
  die "$app: its export command failed (its output is above); nothing was exported"
fi
tar --numeric-owner -C "$scratch" -czf - .

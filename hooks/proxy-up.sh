#!/usr/bin/env bash
# Start (or reconfigure) the host's Caddy proxy: HTTPS for every app, one site file per app.
# Usage: sudo proxy-up.sh < bundle      (bundle: base64 tar.gz holding the PROXY_FILES of layout.sh)
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"

bundle=$(unpack_stdin_bundle)
trap 'rm -rf "$bundle"' EXIT
install -d -m 0755 "$PROXY_SITES" "$PROXY_DATA" "$PROXY_CONFIG"

changed=false
for file in "$PROXY_CADDYFILE" "$PROXY_COMPOSE"; do
  if ! cmp -s "$bundle/$file" "$PROXY_ETC/$file"; then
    install -m 0644 "$bundle/$file" "$PROXY_ETC/$file"
    changed=true
  fi
done

ensure_network "$PROXY_NETWORK"
compose -p "$PROXY_PROJECT" -f "$PROXY_ETC/$PROXY_COMPOSE" up -d --remove-orphans
caddy=""
for _ in $(seq 1 30); do
  caddy=$(proxy_container)
  if [ -n "$caddy" ] && docker exec "$caddy" caddy version >/dev/null 2>&1; then
    break
  fi
  sleep 1
done
[ -n "$caddy" ] || die "the Caddy container did not start; see: docker compose -p $PROXY_PROJECT logs"
if $changed; then
  reload_proxy
  log "proxy configuration applied"
else
  log "proxy up; configuration unchanged"
fi

#!/usr/bin/env bash
# Start (or reconfigure) the host's Caddy proxy: HTTPS for every app, one site file per app.
# Usage: sudo proxy-up.sh < bundle      (bundle: base64 tar.gz holding Caddyfile and compose.yaml)
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"

bundle=$(unpack_stdin_bundle)
trap 'rm -rf "$bundle"' EXIT
proxy_dir=$LABSTACK_ETC/proxy
install -d -m 0755 "$proxy_dir/sites" "$LABSTACK_SRV/proxy/data" "$LABSTACK_SRV/proxy/config"

changed=false
for file in Caddyfile compose.yaml; do
  if ! cmp -s "$bundle/$file" "$proxy_dir/$file"; then
    install -m 0644 "$bundle/$file" "$proxy_dir/$file"
    changed=true
  fi
done

ensure_network "$PROXY_NETWORK"
compose -p "$PROXY_PROJECT" -f "$proxy_dir/compose.yaml" up -d --remove-orphans
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

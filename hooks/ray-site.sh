#!/usr/bin/env bash
# Serve Ray's dashboard and Jobs API through the head's Caddy at ray.<host>. Ray listens on 127.0.0.1 only, which
# Caddy (on the PROXY_NETWORK bridge) cannot reach: a small gate, a second Caddy in the host's network, forwards a
# Unix socket to Ray's port. The socket is in PROXY_RAY_GATE, a root-only directory mounted into Caddy's container
# and no other: a TCP address on the host (the bridge's gateway) would answer every container on the head, since
# a container's traffic to a host address goes through INPUT, not Docker's isolation between networks.
# The site (components/render/proxy.py ray_site_file) asks for the dashboard password; Ray asks for its token (a
# client's Proxy-Authorization, or in a browser Ray's own prompt and cookie).
# Usage: sudo ray-site.sh CADDY_IMAGE < site.caddy      (the site with {{UPSTREAM}} left for this hook)
# Running it again with the same site and image changes nothing.
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"

image=${1:?usage: ray-site.sh CADDY_IMAGE < SITE}
site=$(cat)
[ -n "$site" ] || die "no Caddy site on stdin"
[ -n "$(proxy_container)" ] || die "the proxy is not running; run proxy-up.sh first"
socket="$RAY_GATE_DIR/gate.sock"  # as Caddy and the gate see it
upstream="unix/$socket"

# The gate: a Unix socket only (Ray holds 127.0.0.1), no admin endpoint, no HTTPS of its own (Caddy's site
# terminates TLS), no access log (Caddy's site logs each request once).
install -d -m 0700 "$RAY_ETC" "$PROXY_RAY_GATE"
gate_conf="$RAY_ETC/gate.caddy"
new_conf=$(mktemp "$RAY_ETC/gate.XXXXXX")
# Any Host header: the site passes ray.<host> on.
printf '{\n\tadmin off\n\tauto_https off\n}\nhttp:// {\n\tbind unix/%s\n\treverse_proxy 127.0.0.1:%s\n}\n' \
  "$socket" "$RAY_DASHBOARD_PORT" > "$new_conf"
chmod 0644 "$new_conf"
mv -f "$new_conf" "$gate_conf"
gate="$RAY_PROJECT-gate"
settings=$(printf '%s\n' "$image" | cat - "$gate_conf" | sha256sum | cut -c1-16)
running=$(docker inspect -f '{{.State.Running}} {{index .Config.Labels "'"$LABEL_RAY_SETTINGS"'"}}' "$gate" \
  2>/dev/null || true)
if [ "$running" != "true $settings" ]; then
  docker rm -f "$gate" >/dev/null 2>&1 || true
  # The socket a stopped gate left (an engine restart, a reboot) is removed before Caddy binds it again.
  docker run -d --name "$gate" --network host --restart unless-stopped \
    --label "$LABEL_ROLE=ray-gate" --label "$LABEL_RAY_SETTINGS=$settings" \
    -v "$gate_conf:/ray-gate.caddy:ro" -v "$PROXY_RAY_GATE:$RAY_GATE_DIR" --entrypoint sh \
    "$image" -c "rm -f $socket && exec caddy run --config /ray-gate.caddy --adapter caddyfile" >/dev/null
  log "ray gate listening on $socket"
fi

# The site, with the gate as its upstream; a site Caddy refuses leaves the previous one in place.
site_file="$PROXY_SITES/_ray.caddy"
new_site=$(mktemp "$PROXY_SITES/.ray.XXXXXX")
printf '%s\n' "${site//\{\{UPSTREAM\}\}/$upstream}" > "$new_site"
chmod 0640 "$new_site"
if cmp -s "$new_site" "$site_file"; then
  rm -f "$new_site"
  log "ray site unchanged"
  exit 0
fi
previous=""
if [ -e "$site_file" ]; then
  previous=$(mktemp "$PROXY_SITES/.ray-previous.XXXXXX")
  cp -p "$site_file" "$previous"
fi
mv -f "$new_site" "$site_file"
if ! try_reload_proxy; then
  if [ -n "$previous" ]; then mv -f "$previous" "$site_file"; else rm -f "$site_file"; fi
  try_reload_proxy || true
  die "Caddy refused the ray site (above); the previous one is back"
fi
rm -f "$previous"
log "ray site served through Caddy (upstream $upstream)"

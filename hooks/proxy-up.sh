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
install -d -m 0700 "$PROXY_DOCKER_API" "$PROXY_RAY_GATE"  # the log viewer's and Ray's gate sockets: root only

# The files in place now are the ones Caddy runs: kept until Caddy accepts the new ones, and put back if it
# refuses them, so no later Caddy restart reads a configuration Caddy refused.
changed=false
for file in "$PROXY_CADDYFILE" "$PROXY_COMPOSE"; do
  if ! cmp -s "$bundle/$file" "$PROXY_ETC/$file"; then
    if [ -e "$PROXY_ETC/$file" ]; then
      cp -p "$PROXY_ETC/$file" "$bundle/$file.previous"
    fi
    install -m 0644 "$bundle/$file" "$PROXY_ETC/$file"
    changed=true
  fi
done

# Caddy reaches each app's web on that app's own network; a recreated Caddy container has lost those connections.
connect_app_networks() {
  local dir network
  for dir in "$APPS_ETC"/*/; do
    [ -d "$dir" ] || continue
    network=$(app_network "$(basename "$dir")")
    if docker network inspect "$network" >/dev/null 2>&1; then
      connect_proxy "$network"
    fi
  done
}

# Start (or recreate) Caddy from the compose file in place and wait until it answers (up to 30 s, looking every
# 0.2 s: Caddy usually answers within a second, and this wait is on every first deploy's path).
start_caddy() {
  local caddy
  compose -p "$PROXY_PROJECT" -f "$PROXY_ETC/$PROXY_COMPOSE" up -d --remove-orphans
  for _ in $(seq 1 150); do
    caddy=$(proxy_container)
    if [ -n "$caddy" ] && docker exec "$caddy" caddy version >/dev/null 2>&1; then
      connect_app_networks
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# Put the previous files back (a first set-up has none: its files stay for the operator to fix) and apply them.
restore_previous() {
  local file restored=false
  for file in "$PROXY_CADDYFILE" "$PROXY_COMPOSE"; do
    if [ -e "$bundle/$file.previous" ]; then
      install -m 0644 "$bundle/$file.previous" "$PROXY_ETC/$file"
      restored=true
    fi
  done
  if $restored; then
    if ! { start_caddy && try_reload_proxy; }; then
      log "Caddy did not take the previous configuration back either"
    fi
  fi
}

# Who listens on a TCP port here: a container publishing it, else the process(es) ss names; empty when it is free.
port_holders() {
  local port=$1 listening processes containers
  listening=$(ss -Hltnp "( sport = :$port )" 2>/dev/null) || return 0
  [ -n "$listening" ] || return 0
  containers=$(docker ps --filter "publish=$port" --format '{{.Names}}' 2>/dev/null | paste -sd, -)
  if [ -n "$containers" ]; then
    printf 'the container(s) %s' "$containers"
    return 0
  fi
  processes=$(grep -o 'users:(("[^"]*",pid=[0-9]*' <<<"$listening" | sed -E 's/users:\(\("([^"]*)",pid=([0-9]*)/\1 (pid \2)/' |
    sort -u | paste -sd, -)
  printf '%s' "${processes:-a process ss cannot name}"
}

# Before Caddy's first start: ports 80 and 443 must be free. Docker's own error names neither who holds the port nor
# what to do, and leaves a created container behind.
check_ports_free() {
  local port holders
  [ -z "$(proxy_container)" ] || return 0  # our Caddy runs and holds them
  for port in 80 443; do
    holders=$(port_holders "$port")
    [ -z "$holders" ] || die "port $port is already in use on this server by $holders; labstack's Caddy needs ports" \
      "80 and 443 for HTTPS: stop that service or move it to another port (sudo ss -ltnp shows who listens)," \
      "then run pulumi up again"
  done
}

check_ports_free
ensure_network "$PROXY_NETWORK"
if ! start_caddy; then
  if $changed; then
    restore_previous
  fi
  die "the Caddy container did not start; see: docker compose -p $PROXY_PROJECT logs"
fi
if $changed; then
  if ! try_reload_proxy; then
    restore_previous
    die "Caddy refused the new proxy configuration (above); the previous one is back"
  fi
  log "proxy configuration applied"
else
  log "proxy up; configuration unchanged"
fi

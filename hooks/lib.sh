# shellcheck shell=bash
# Shared helpers for labstack's hooks. Sourced, never run. Paths are the host layout the README documents.
# shellcheck disable=SC2034  # the constants are used by the scripts that source this file

LABSTACK_ETC=/etc/labstack
LABSTACK_SRV=/srv/labstack
PROXY_NETWORK=labstack
PROXY_PROJECT=labstack-proxy

log() { printf 'labstack: %s\n' "$*" >&2; }
die() { printf 'labstack: error: %s\n' "$*" >&2; exit 1; }

require_root() {
  [ "$(id -u)" -eq 0 ] || die "run me as root: sudo $0 $*"
}

# Compose v2 (`docker compose`) as on current servers; Debian's v1 `docker-compose` as a fallback.
compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose "$@"
  elif command -v docker-compose >/dev/null 2>&1; then
    docker-compose "$@"
  else
    die "neither 'docker compose' nor 'docker-compose' is installed; run install-docker.sh"
  fi
}

# docker compose on one release (colour) of an app; the colour names its web alias, <app>-<colour>-web.
compose_release() {
  local app=$1 color=$2
  shift 2
  LABSTACK_COLOR=$color compose -p "$app-$color" -f "$LABSTACK_ETC/apps/$app/app.compose.yaml" \
    --env-file "$LABSTACK_ETC/apps/$app/db.env" "$@"
}

valid_app_name() {
  [[ "$1" =~ ^[a-z][a-z0-9-]{0,30}$ ]] || die "bad app name '$1': lower-case letters, digits and dashes"
}

# Unpack a base64-encoded tar.gz from stdin into a new private directory and print its path.
unpack_stdin_bundle() {
  local dir
  dir=$(mktemp -d /tmp/labstack-bundle.XXXXXX)
  chmod 0700 "$dir"
  # Called as $(unpack_stdin_bundle): errexit does not apply in there, so check explicitly.
  base64 -d | tar -xzf - -C "$dir" --no-same-owner || die "the bundle on stdin is damaged or missing"
  printf '%s\n' "$dir"
}

# Read KEY=value lines (no shell evaluation: values come from the stack config) into CONF_<KEY> variables.
read_conf() {
  local key value
  while IFS='=' read -r key value; do
    [[ "$key" =~ ^[A-Z_][A-Z0-9_]*$ ]] || continue
    printf -v "CONF_$key" '%s' "$value"
  done < "$1"
}

ensure_network() {
  docker network inspect "$1" >/dev/null 2>&1 || docker network create "$1" >/dev/null
}

proxy_container() {
  docker ps -q --filter "label=com.docker.compose.project=$PROXY_PROJECT" --filter "label=com.docker.compose.service=caddy"
}

reload_proxy() {
  local caddy
  caddy=$(proxy_container)
  [ -n "$caddy" ] || die "the proxy is not running; run proxy-up.sh first"
  docker exec "$caddy" caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile >/dev/null \
    || die "Caddy refused the new configuration (see: docker logs $caddy)"
}

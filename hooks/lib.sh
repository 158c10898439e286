# shellcheck shell=bash
# Shared helpers for labstack's hooks. Sourced, never run. Every server name comes from layout.sh, generated from
# components/layout.py, so Python, bash and the compose files cannot disagree on a path, project or label.
# shellcheck source=hooks/layout.sh
source "$(dirname "${BASH_SOURCE[0]}")/layout.sh"

log() { printf 'labstack: %s\n' "$*" >&2; }
die() { printf 'labstack: error: %s\n' "$*" >&2; exit 1; }

# Root owns the server's paths; a run whose paths LABSTACK_ROOT moved (a test's temp dir) needs no root.
require_root() {
  [ -n "$LABSTACK_ROOT" ] || [ "$(id -u)" -eq 0 ] || die "run me as root: sudo $0 $*"
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

# docker compose on the compose file of one release (COLOR; empty: the serving release, as the app's state
# records it) as PROJECT; compose puts COLOR in the web alias, the colour label and the path of its secrets.env.
compose_app() {
  local app=$1 project=$2 color=$3 etc
  shift 3
  etc=$(app_etc "$app")
  [ -n "$color" ] || color=$(sed -n 's/^COLOR=//p' "$etc/$APP_STATE" 2>/dev/null || true)
  [ -n "$color" ] || die "$app has no serving release on this server"
  LABSTACK_COLOR=$color compose -p "$project" -f "$(release_etc "$app" "$color")/$APP_COMPOSE" \
    --env-file "$etc/$DB_ENV" "$@"
}

# docker compose on one release (colour) of an app: its web, workers and clock.
compose_release() {
  compose_app "$1" "$(release_project "$1" "$2")" "$2" "${@:3}"
}

# docker compose on an app's Postgres and Redis.
compose_data() {
  local app=$1 etc
  shift
  etc=$(app_etc "$app")
  compose -p "$(data_project "$app")" -f "$etc/$DATA_COMPOSE" --env-file "$etc/$DB_ENV" "$@"
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

# connect_proxy NETWORK: Caddy joins an app's network (once) to reach its web. The connection survives restarts of
# Caddy and of the engine; proxy-up.sh connects again when it recreates the container.
connect_proxy() {
  local caddy
  caddy=$(proxy_container)
  [ -n "$caddy" ] || die "the proxy is not running; run proxy-up.sh first"
  if [ -z "$(docker inspect -f "{{with index .NetworkSettings.Networks \"$1\"}}{{.NetworkID}}{{end}}" "$caddy")" ]; then
    docker network connect "$1" "$caddy"
  fi
}

# Reload Caddy from the files on disk. When Caddy refuses them it keeps its running configuration; this shows
# Caddy's message and returns non-zero, and the caller puts the previous files back.
try_reload_proxy() {
  local caddy output
  caddy=$(proxy_container)
  [ -n "$caddy" ] || die "the proxy is not running; run proxy-up.sh first"
  if ! output=$(docker exec "$caddy" caddy reload --config "$CADDY_ETC/$PROXY_CADDYFILE" --adapter caddyfile 2>&1)
  then
    log "Caddy refused the configuration:"
    printf '%s\n' "$output" | tail -n 20 >&2
    return 1
  fi
}

# The node agent (hooks/agent: jobs and the auto-stop watcher, Python's standard library only) in place of this
# shell, by the server's own python3; -I -S: nothing from the caller's environment or site-packages; -B: no byte-code
# caches (the hooks arrive with mtime 0, so a cache could outlive a change of its source of the same size).
run_agent() { exec python3 -I -S -B "$(dirname "${BASH_SOURCE[0]}")/agent" "$@"; }

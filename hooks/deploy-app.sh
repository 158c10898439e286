#!/usr/bin/env bash
# Deploy one app with a blue/green swap: the new release must pass its health check before Caddy sends it
# traffic; if it fails, the running release keeps serving and this script fails with the new one's logs.
# Before the first release takes traffic, the app's init command runs once (recorded in init-done; never again on
# redeploys, restarts or reboots unless INIT_RUN is raised); after a deploy, the post-deploy hook (an HTTPS request
# through the app's public name, or a command in the web container) runs after the first deploy or every deploy.
# Usage: sudo deploy-app.sh APP < bundle
#   bundle: base64 tar.gz with release.conf, app.compose.yaml, data.compose.yaml, site.caddy, init.cmd,
#           post-deploy.cmd, secrets.env
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
app=${1:?usage: deploy-app.sh APP < bundle}
valid_app_name "$app"

bundle=$(unpack_stdin_bundle)
trap 'rm -rf "$bundle"' EXIT
read_conf "$bundle/release.conf"
etc=$LABSTACK_ETC/apps/$app
srv=$LABSTACK_SRV/apps/$app
install -d -m 0700 "$etc"
install -d -m 0755 "$srv" "$srv/data" "$srv/postgres" "$srv/redis"

# The database password is made here once and never leaves the server (nor Pulumi's state).
if [ ! -s "$etc/db.env" ]; then
  (umask 077 && printf 'LABSTACK_DB_PASSWORD=%s\n' "$(openssl rand -hex 24)" > "$etc/db.env")
fi
release=$(cat "$bundle/release.conf" "$bundle/app.compose.yaml" "$bundle/data.compose.yaml" "$bundle/site.caddy" \
  "$bundle/init.cmd" "$bundle/post-deploy.cmd" "$bundle/secrets.env" | sha256sum | cut -c1-16)
for file in app.compose.yaml data.compose.yaml site.caddy release.conf init.cmd post-deploy.cmd secrets.env; do
  install -m 0600 "$bundle/$file" "$etc/$file"
done

ensure_network "$PROXY_NETWORK"
ensure_network "labstack-$app"
if ! docker image inspect "$CONF_IMAGE" >/dev/null 2>&1; then
  log "pulling $CONF_IMAGE"
  docker pull -q "$CONF_IMAGE" >/dev/null || die "cannot pull $CONF_IMAGE; is the registry reachable and logged in?"
fi

compose_app() { compose_release "$app" "${1##*-}" "${@:2}"; }  # compose_app <app>-<colour> ARGS...

if [ "$CONF_POSTGRES" = true ] || [ "$CONF_REDIS" = true ]; then
  log "starting data services"
  compose -p "$app-data" -f "$etc/data.compose.yaml" --env-file "$etc/db.env" up -d --remove-orphans
fi
if [ "$CONF_POSTGRES" = true ]; then
  for attempt in $(seq 1 60); do
    if compose -p "$app-data" -f "$etc/data.compose.yaml" --env-file "$etc/db.env" \
        exec -T postgres pg_isready -q -U "$app" -d "$app" 2>/dev/null; then
      break
    fi
    [ "$attempt" -lt 60 ] || die "Postgres of $app did not become ready in 60s"
    sleep 1
  done
fi

run_init() {
  local done_run=0
  [ -s "$etc/init.cmd" ] || return 0
  [ -s "$etc/init-done" ] && done_run=$(cat "$etc/init-done")
  if [ "$done_run" -ge "$CONF_INIT_RUN" ]; then
    return 0
  fi
  log "$app: running the init command (run $CONF_INIT_RUN) in a one-off container"
  local output
  if ! output=$(compose_app "$app-init" run --rm -T --no-deps web sh -c "$(cat "$etc/init.cmd")" 2>&1); then
    printf '%s\n' "$output" | tail -n 60 >&2
    die "$app: the init command failed; nothing was changed"
  fi
  printf '%s\n' "$output" | tail -n 20 >&2
  printf '%s\n' "$CONF_INIT_RUN" > "$etc/init-done"
}

post_deploy() {
  local color=$1 done_file=$etc/post-deploy-done
  [ -n "${CONF_POST_DEPLOY_WHEN:-}" ] || return 0
  if [ "$CONF_POST_DEPLOY_WHEN" = first ] && [ -e "$done_file" ]; then
    return 0
  fi
  if [ -n "$CONF_POST_DEPLOY_PATH" ]; then
    # Through Caddy with the app's real name, so links the app derives from the Host header are right.
    local trust=() attempt status="" body wait=1
    if [ "$CONF_TLS_INTERNAL" = true ]; then
      trust=(--cacert "$LABSTACK_SRV/proxy/data/caddy/pki/authorities/local/root.crt")
    fi
    body=$(mktemp)
    for attempt in $(seq 0 "$CONF_POST_DEPLOY_RETRIES"); do
      status=$(curl -sS -o "$body" -w '%{http_code}' --max-time 30 "${trust[@]}" -X "$CONF_POST_DEPLOY_METHOD" \
        --resolve "$CONF_HOST:443:127.0.0.1" "https://$CONF_HOST$CONF_POST_DEPLOY_PATH" 2>"$body.err" || true)
      [ "$status" = "$CONF_POST_DEPLOY_STATUS" ] && break
      [ "$attempt" -lt "$CONF_POST_DEPLOY_RETRIES" ] && sleep "$wait" && wait=$((wait * 2))
    done
    if [ "$status" != "$CONF_POST_DEPLOY_STATUS" ]; then
      log "$app: post-deploy $CONF_POST_DEPLOY_METHOD $CONF_POST_DEPLOY_PATH answered ${status:-nothing}," \
        "expected $CONF_POST_DEPLOY_STATUS; response:"
      head -c 4000 "$body" "$body.err" >&2
      rm -f "$body" "$body.err"
      die "$app: the post-deploy request failed (the new release is serving; fix it and run pulumi up again)"
    fi
    rm -f "$body" "$body.err"
    log "$app: post-deploy $CONF_POST_DEPLOY_METHOD $CONF_POST_DEPLOY_PATH answered $status"
  else
    log "$app: running the post-deploy command in the web container"
    compose_app "$app-$color" exec -T web sh -c "$(cat "$etc/post-deploy.cmd")" >&2 \
      || die "$app: the post-deploy command failed (the new release is serving)"
  fi
  date -u +%FT%TZ > "$done_file"
}

active=$(cat "$etc/active-color" 2>/dev/null || true)
if [ -n "$active" ] && [ "$(cat "$etc/active-release" 2>/dev/null)" = "$release" ] \
    && [ -n "$(compose_app "$app-$active" ps -q web)" ]; then
  compose_app "$app-$active" up -d
  log "$app: release $release is already serving ($active)"
  post_deploy "$active"  # a post-deploy hook that failed last time is still owed
  exit 0
fi
run_init
next=blue
[ "$active" = blue ] && next=green

log "$app: starting release $release as $next"
# Web alone first: the new release's workers and clock start only once it has taken over, so a broken release
# never runs jobs beside the serving one.
compose_app "$app-$next" up -d --force-recreate --remove-orphans web
web=$(compose_app "$app-$next" ps -q web)
address=$(docker inspect -f "{{with index .NetworkSettings.Networks \"$PROXY_NETWORK\"}}{{.IPAddress}}{{end}}" "$web")
url="http://$address:$CONF_PORT$CONF_HEALTH_PATH"
log "$app: waiting up to ${CONF_HEALTH_TIMEOUT}s for $CONF_HEALTH_PATH to answer 2xx"
deadline=$((SECONDS + CONF_HEALTH_TIMEOUT))
healthy=false
while [ "$SECONDS" -lt "$deadline" ]; do
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$url" 2>/dev/null || true)
  if [[ "$code" == 2?? ]]; then
    healthy=true
    break
  fi
  if [ "$(docker inspect -f '{{.State.Running}}' "$web")" != true ] \
      && [ "$(docker inspect -f '{{.RestartCount}}' "$web")" -ge 3 ]; then
    break  # crash-looping: waiting longer will not help
  fi
  sleep 2
done
if ! $healthy; then
  log "$app: the new release failed its health check ($url); its last logs:"
  compose_app "$app-$next" logs --no-color --tail 60 >&2 || true
  compose_app "$app-$next" down --remove-orphans >/dev/null 2>&1 || true
  if [ -n "$active" ]; then
    die "$app: kept the previous release serving ($active); fix the image and run pulumi up again"
  fi
  die "$app: the first release is unhealthy; nothing is serving"
fi

# Point the app's site at the new release, then retire the old one: Caddy's reload is graceful,
# so requests in flight finish on the old containers.
sed "s/{{UPSTREAM}}/$app-$next-web:$CONF_PORT/" "$etc/site.caddy" > "$LABSTACK_ETC/proxy/sites/$app.caddy.new"
mv "$LABSTACK_ETC/proxy/sites/$app.caddy.new" "$LABSTACK_ETC/proxy/sites/$app.caddy"
reload_proxy
if [ -n "$active" ] && [ "$active" != "$next" ]; then
  compose_app "$app-$active" down --remove-orphans >/dev/null 2>&1 || true
fi
compose_app "$app-$next" up -d --remove-orphans  # now the workers and clock of the new release
printf '%s\n' "$next" > "$etc/active-color"
printf '%s\n' "$release" > "$etc/active-release"
printf '%s %s %s\n' "$(date -u +%FT%TZ)" "$release" "$CONF_IMAGE" >> "$etc/releases.log"
log "$app: release $release ($CONF_IMAGE) is serving https://$CONF_HOST"
post_deploy "$next"

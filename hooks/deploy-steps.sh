# shellcheck shell=bash
# The steps of deploy-app.sh, one function each: the script reads as the list of steps, and tests run them one by
# one without root (LABSTACK_ROOT and fake docker/curl; tests/unit/test_deploy_steps.py). Sourced, never run.
# load_release sets what the other steps share:
#   app, etc (its APP_ETC), srv (its APP_SRV), bundle (the unpacked bundle), CONF_* (its release settings),
#   release (the release id: a hash of the bundle), active (the serving colour, or empty), active_release (its id),
#   next (the other colour), candidate (next's RELEASE_ETC folder, where this release's files wait for the switch).
# What serves is the app's state file (app-state.bash); only switch_proxy and roll_back change it.
# shellcheck source=hooks/app-state.bash
source "$(dirname "${BASH_SOURCE[0]}")/app-state.bash"

# Seconds between two looks at something starting (Postgres, the new web): each look is cheap, and every interval
# is paid on the deploy's critical path, so look often.
POLL_SECONDS=0.2
POSTGRES_TIMEOUT=60

# step NAME COMMAND...: run one step and note its wall time in $step_log (deploy-app.sh makes it), so every deploy
# ends with one line saying where its time went (bench/deploy_bench.py reads it). Steps run in the background note
# their own time.
step() {
  local name=$1 start=${EPOCHREALTIME//[.,]/}
  shift
  "$@"
  printf '%s=%s ' "$name" "$(seconds_since "$start")" >> "${step_log:?deploy-app.sh sets it}"
}

# seconds_since MICROSECONDS: the time since then, as seconds with two decimals.
seconds_since() {
  local elapsed=$((${EPOCHREALTIME//[.,]/} - $1))
  printf '%d.%02d' $((elapsed / 1000000)) $((elapsed % 1000000 / 10000))
}

log_step_times() {
  log "$app: step times (s): $(cat "${step_log:?}")"
}

# A release's files, in the bundle and then in the app's APP_ETC directory; their hash is the release id.
RELEASE_FILES=("$RELEASE_CONF" "$APP_COMPOSE" "$DATA_COMPOSE" "$SITE_TEMPLATE" "$INIT_CMD" "$POST_DEPLOY_CMD"
  "$SECRETS_ENV")

# load_release APP BUNDLE_DIR
load_release() {
  app=$1
  bundle=$2
  read_conf "$bundle/$RELEASE_CONF"
  etc=$(app_etc "$app")
  srv=$(app_srv "$app")
  release=$(cd "$bundle" && cat "${RELEASE_FILES[@]}" | sha256sum | cut -c1-16)
  state_read "$app"
  active=$STATE_COLOR
  active_release=$STATE_RELEASE
  next=${COLORS[0]}
  if [ "$active" = "${COLORS[0]}" ]; then
    next=${COLORS[1]}
  fi
  candidate=$(release_etc "$app" "$next")
}

# The app's folders and shared files, and this release's files: beside the serving release's, in the candidate's
# folder, until the switch. A release already recorded as serving only gets its export command (not a release
# file: a new one changes nothing that runs).
install_release_files() {
  local file password kept
  install -d -m 0700 "$etc"
  install -d -m 0755 "$srv" "$(app_data "$app")" "$(app_postgres "$app")" "$(app_redis "$app")" \
    "$(app_volumes "$app")"
  # The database password is made here once and never leaves the server (nor Pulumi's state). A copy lives beside
  # the data: with a data volume, a replaced instance (empty APP_ETC) finds the database and its password together.
  kept=$(app_kept_db_env "$app")
  if [ ! -s "$etc/$DB_ENV" ] && [ -s "$kept" ]; then
    install -m 0600 "$kept" "$etc/$DB_ENV"
    log "$app: database password restored from $kept (the data outlived the instance)"
  elif [ ! -s "$etc/$DB_ENV" ]; then
    password=$(openssl rand -hex 24)
    (umask 077 && printf 'LABSTACK_DB_PASSWORD=%s\n' "$password" > "$etc/$DB_ENV")
  fi
  [ -s "$kept" ] || install -m 0600 "$etc/$DB_ENV" "$kept"
  # Postgres reads it from a file of its own (POSTGRES_PASSWORD_FILE), as its postgres user: 0644, but inside the
  # 0700 APP_ETC only root reaches it on the host. Made from db.env, so servers deployed before it keep their password.
  if [ ! -s "$etc/$DB_PASSWORD" ]; then
    sed -n 's/^LABSTACK_DB_PASSWORD=//p' "$etc/$DB_ENV" > "$etc/$DB_PASSWORD.new"
    chmod 0644 "$etc/$DB_PASSWORD.new"
    mv "$etc/$DB_PASSWORD.new" "$etc/$DB_PASSWORD"
  fi
  # Postgres and Redis serve both colours: their compose file is the app's, and runs as soon as it is installed.
  install -m 0600 "$bundle/$DATA_COMPOSE" "$etc/$DATA_COMPOSE"
  if release_recorded; then
    install -m 0600 "$bundle/$EXPORT_CMD" "$etc/$EXPORT_CMD"
    return 0
  fi
  rm -rf "$candidate"
  install -d -m 0700 "$candidate"
  for file in "${COLOR_FILES[@]}" "$EXPORT_CMD"; do
    install -m 0600 "$bundle/$file" "$candidate/$file"
  done
}

# True when this very release (same files) is the one the state records as serving: nothing to swap (reconcile_app
# has started whatever of it was not running).
release_recorded() {
  [ -n "$active" ] && [ "$active_release" = "$release" ]
}

# The app's own network, which Caddy joins to reach its web: apps share no network with each other.
ensure_networks() {
  ensure_network "$(app_network "$app")"
  connect_proxy "$(app_network "$app")"
}

pull_image() {
  if ! docker image inspect "$CONF_IMAGE" >/dev/null 2>&1; then
    "$(dirname "${BASH_SOURCE[0]}")/ecr-login.sh" "$CONF_IMAGE"  # an ECR image: the instance role logs docker in
    log "pulling $CONF_IMAGE"
    docker pull -q "$CONF_IMAGE" >/dev/null || die "cannot pull $CONF_IMAGE; is the registry reachable and logged in?"
  fi
}

start_data_services() {
  if [ "$CONF_POSTGRES" = true ] || [ "$CONF_REDIS" = true ]; then
    log "starting data services"
    compose_data "$app" up -d --remove-orphans
  fi
}

# Over TCP: the image's first-boot initialisation runs a temporary server on the socket only, which must not count.
wait_for_postgres() {
  local postgres deadline=$((SECONDS + POSTGRES_TIMEOUT))
  [ "$CONF_POSTGRES" = true ] || return 0
  postgres=$(compose_data "$app" ps -q postgres)
  until docker exec "$postgres" pg_isready -q -h 127.0.0.1 -U "$app" -d "$app" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "Postgres of $app did not become ready in ${POSTGRES_TIMEOUT}s"
    sleep "$POLL_SECONDS"
  done
}

keep_serving() {
  compose_release "$app" "$active" up -d
  log "$app: release $release is already serving ($active)"
}

# The init command, once per app lifetime (recorded in INIT_DONE), again only when INIT_RUN is raised; in a one-off
# container of its own project, before any release of this deploy takes traffic.
run_init() {
  local done_run=0 output
  [ -s "$candidate/$INIT_CMD" ] || return 0
  if [ -s "$etc/$INIT_DONE" ]; then
    done_run=$(cat "$etc/$INIT_DONE")
  fi
  if [ "$done_run" -ge "$CONF_INIT_RUN" ]; then
    return 0
  fi
  log "$app: running the init command (run $CONF_INIT_RUN) in a one-off container"
  if ! output=$(compose_app "$app" "$(init_project "$app")" "$next" --profile init run --rm -T --no-deps init \
      sh -c "$(cat "$candidate/$INIT_CMD")" 2>&1); then
    printf '%s\n' "$output" | tail -n 60 >&2
    die "$app: the init command failed; nothing was changed"
  fi
  printf '%s\n' "$output" | tail -n 20 >&2
  printf '%s\n' "$CONF_INIT_RUN" > "$etc/$INIT_DONE"
}

start_next_web() {
  local services=(web) ids
  log "$app: starting release $release as $next"
  # Web alone first: the new release's workers and clock start only once it has taken over, so a broken release
  # never runs jobs beside the serving one. A first release has nothing serving beside it: its workers and clock
  # start with its web, and their check (check_workers) runs while the web starts.
  [ -n "$active" ] || services=()
  # Created, stripped of the restart policy, then started: an engine restart or a reboot before the switch
  # (switch_site gives the policy) never brings the candidate back.
  compose_release "$app" "$next" up --no-start --force-recreate --remove-orphans "${services[@]}"
  ids=$(compose_release "$app" "$next" ps -aq "${services[@]}")
  # shellcheck disable=SC2086  # one id per word
  docker update --restart no $ids >/dev/null
  # shellcheck disable=SC2086
  docker start $ids >/dev/null
}

# Returns once the next release's web answers 2xx on its health path. Otherwise (timeout, or a crash loop) it shows
# the new release's logs, removes it and fails: the serving release is untouched and keeps serving.
wait_healthy() {
  local web address url deadline code starts=1
  web=$(compose_release "$app" "$next" ps -q web)
  address=$(docker inspect -f "{{with index .NetworkSettings.Networks \"$(app_network "$app")\"}}{{.IPAddress}}{{end}}" "$web")
  url="http://$address:$CONF_PORT$CONF_HEALTH_PATH"
  log "$app: waiting up to ${CONF_HEALTH_TIMEOUT}s for $CONF_HEALTH_PATH to answer 2xx"
  deadline=$((SECONDS + CONF_HEALTH_TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ]; do
    code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$url" 2>/dev/null || true)
    if [[ "$code" == 2?? ]]; then
      return 0
    fi
    # The candidate has no restart policy (start_next_web): an exit is started again, as the policy would, up to
    # a third start; a web that exits every time is crash-looping and waiting longer will not help.
    if [ "$(docker inspect -f '{{.State.Running}}' "$web")" != true ]; then
      [ "$starts" -lt 3 ] || break
      starts=$((starts + 1))
      docker start "$web" >/dev/null 2>&1 || true
    fi
    sleep "$POLL_SECONDS"
  done
  log "$app: the new release failed its health check ($url); its last logs:"
  compose_release "$app" "$next" logs --no-color --tail 60 >&2 || true
  discard_candidate
  if [ -n "$active" ]; then
    die "$app: kept the previous release serving ($active); fix the image and run pulumi up again"
  fi
  die "$app: the first release is unhealthy; nothing is serving"
}

# Point the app's site at the new release and record it as serving: one step (switch_site in app-state.bash).
# Caddy's reload is graceful: requests in flight finish on the old one. A site Caddy refuses (say, a host name
# another app already has) never stays on disk, where the next Caddy restart would read it and take every app
# offline: the serving release's site comes back (or, on a first deploy, none), the state is left as it was, the
# new release is removed and the deploy fails with Caddy's message.
switch_proxy() {
  local site
  site=$(app_site "$app")
  if switch_site "$app" "$next" "$release" "$CONF_IMAGE" "$CONF_WORKERS"; then
    install -m 0600 "$candidate/$EXPORT_CMD" "$etc/$EXPORT_CMD"
    return 0  # the previous release's web keeps running until the new workers have settled (check_workers)
  fi
  rm -f "$etc/$APP_STATE.new"
  if [ -n "$active" ]; then
    (umask 027 && site_render "$app" "$active" > "$site.new")
    mv "$site.new" "$site"
  else
    rm -f "$site"
  fi
  try_reload_proxy || log "$app: Caddy did not reload the restored configuration either"
  discard_candidate
  if [ -n "$active" ]; then
    die "$app: Caddy refused the new site (above); the previous site is back and release $active keeps serving"
  fi
  die "$app: Caddy refused the new site (above); it was removed, every other app keeps serving"
}

# The candidate's containers and files go; when the engine cannot remove them now, the next run's reconcile_app does.
discard_candidate() {
  down_release "$app" "$next" || log "$app: could not remove release $next now; the next deploy removes it"
}

# The previous release's containers and files go. A server converted from an earlier labstack kept secrets.env
# where that release's compose file named it: now nothing does.
retire_old() {
  if [ -n "$active" ] && [ "$active" != "$next" ]; then
    down_release "$app" "$active" || log "$app: could not remove release $active now; the next deploy removes it"
  fi
  rm -f "$etc/$SECRETS_ENV"
}

# release_workers COLOR [-a]: the ids of a release's worker and clock containers (-a: stopped ones too).
release_workers() {
  local role options=(-q)
  [ -z "${2:-}" ] || options+=("$2")
  for role in worker clock; do
    docker ps "${options[@]}" --filter "label=$LABEL_APP=$app" --filter "label=$LABEL_COLOR=$1" \
      --filter "label=$LABEL_ROLE=$role"
  done
}

# The new release's workers and clock, now that its web serves. The old ones stop first (SIGTERM: they finish the
# job in hand within the grace period), so two releases never work the same queue; the old web keeps running until
# check_workers is satisfied, so a broken worker command can still switch back.
start_workers() {
  local old
  if [ -n "$active" ] && [ "$active" != "$next" ]; then
    old=$(release_workers "$active")
    if [ -n "$old" ]; then
      # shellcheck disable=SC2086  # one id per word
      docker stop $old >/dev/null
    fi
  fi
  compose_release "$app" "$next" up -d --remove-orphans
}

# The new workers and clock have proven stable once each has started working (used WORKER_BUSY_USEC of CPU) and then
# gone quiet (at most WORKER_QUIET_USEC in each of WORKER_QUIET_LOOKS looks WORKER_LOOK_SECONDS apart): a worker
# waiting for jobs, a clock waiting for its next tick. A wrong command crash-loops or exits long before; a worker
# busy with a backlog passes at WORKER_SETTLE seconds if it still runs. Every look, each must be running without a
# restart, else roll_back; then the optional WORKER_HEALTH_COMMAND must pass in each. The looks are what the
# deploy waits for, typically a second, instead of the whole settle time.
WORKER_LOOK_SECONDS=0.25
WORKER_BUSY_USEC=20000
WORKER_QUIET_USEC=5000
WORKER_QUIET_LOOKS=2
check_workers() {
  local ids id deadline running restarts pid used pending
  local -A last quiet
  ids=$(release_workers "$next")
  [ -n "$ids" ] || return 0
  deadline=$((SECONDS + CONF_WORKER_SETTLE))
  while :; do
    pending=""
    for id in $ids; do
      running="" restarts="" pid=""  # stay empty when the container is gone: a failure like a stop
      read -r running restarts pid < <(docker inspect -f '{{.State.Running}} {{.RestartCount}} {{.State.Pid}}' "$id") \
        || true
      if [ "$running $restarts" != "true 0" ]; then
        roll_back "$ids" "a worker or clock container stopped or restarted"
      fi
      [ "${quiet[$id]:-0}" -lt "$WORKER_QUIET_LOOKS" ] || continue
      used=$(cgroup_cpu_usec "$pid" || true)
      if [ -n "$used" ] && [ -n "${last[$id]:-}" ] && [ "$used" -ge "$WORKER_BUSY_USEC" ] \
          && [ $((used - last[$id])) -le "$WORKER_QUIET_USEC" ]; then
        quiet[$id]=$((${quiet[$id]:-0} + 1))
      else
        quiet[$id]=0
      fi
      last[$id]=$used
      [ "${quiet[$id]}" -ge "$WORKER_QUIET_LOOKS" ] || pending=yes
    done
    if [ -z "$pending" ] || [ "$SECONDS" -ge "$deadline" ]; then
      break
    fi
    sleep "$WORKER_LOOK_SECONDS"
  done
  if [ -n "${CONF_WORKER_HEALTH_COMMAND:-}" ]; then
    for id in $ids; do
      docker exec "$id" sh -c "$CONF_WORKER_HEALTH_COMMAND" >&2 \
        || roll_back "$ids" "workerHealthCommand failed in container $id"
    done
  fi
}

# cgroup_cpu_usec PID: the CPU time (microseconds) used by the processes of PID's cgroup, i.e. its container: cgroup
# v2's cpu.stat, or v1's cpuacct.usage; fails when neither can be read.
cgroup_cpu_usec() {
  local path dir
  [ "${1:-0}" -gt 0 ] || return 1
  path=$(sed -n 's/^[0-9]*:\([^:]*,\)\{0,1\}cpuacct\(,[^:]*\)\{0,1\}://p' "/proc/$1/cgroup" 2>/dev/null) || return 1
  if [ -n "$path" ]; then
    for dir in /sys/fs/cgroup/cpuacct /sys/fs/cgroup/cpu,cpuacct; do
      if [ -r "$dir$path/cpuacct.usage" ]; then
        echo $(($(cat "$dir$path/cpuacct.usage") / 1000))
        return 0
      fi
    done
    return 1
  fi
  path=$(sed -n 's/^0:://p' "/proc/$1/cgroup")
  awk '$1 == "usage_usec" { print $2; found = 1 } END { exit !found }' "/sys/fs/cgroup$path/cpu.stat" 2>/dev/null
}

# roll_back IDS REASON: the new release's workers failed after its web took over. Show their logs, switch back to
# the previous release (whose web still runs; the state records it again with the switch), start its workers
# again, remove the new release, fail.
roll_back() {
  local id
  log "$app: the new release's workers failed ($2); their last logs:"
  for id in $1; do
    docker logs --tail 30 "$id" 2>&1 | sed 's/^/  /' >&2 || true
  done
  if [ -n "$active" ] && [ "$active" != "$next" ]; then
    switch_site "$app" "$active" "$active_release" "$STATE_IMAGE" "$STATE_WORKERS" \
      || log "$app: Caddy did not reload the previous site"
    # shellcheck disable=SC2046  # one id per word
    docker start $(release_workers "$active" -a) >/dev/null 2>&1 || true
    discard_candidate
    die "$app: rolled back: release $active serves again, with its workers; fix the worker command and run pulumi up"
  fi
  rm -f "$(app_site "$app")" "$etc/$APP_STATE"
  try_reload_proxy || true
  discard_candidate
  die "$app: the first release's workers failed; it was removed, nothing is serving"
}

# The releases log is history (`invoke list`, the export's manifest); the state was recorded by the switch.
record_release() {
  printf '%s %s %s\n' "$(date -u +%FT%TZ)" "$release" "$CONF_IMAGE" >> "$etc/$RELEASES_LOG"
  log "$app: release $release ($CONF_IMAGE) is serving https://$CONF_HOST"
}

# post_deploy COLOR: the post-deploy hook, after the first deploy of each init run (a new batch: raising INIT_RUN
# re-runs the init and launches again) or after every deploy: an HTTPS request through the app's public name, or a
# command in the serving web container. POST_DEPLOY_DONE holds "<init run> <utc time>" of the last success (a file
# from before init runs were recorded holds the time alone: run 1).
post_deploy() {
  local color=$1 done_file=$etc/$POST_DEPLOY_DONE done_run=0
  [ -n "${CONF_POST_DEPLOY_WHEN:-}" ] || { print_post_deploy_answer; return 0; }
  if [ -s "$done_file" ]; then
    done_run=$(awk 'NR == 1 { print ($1 ~ /^[0-9]+$/) ? $1 : 1 }' "$done_file")
  fi
  if [ "$CONF_POST_DEPLOY_WHEN" = first ] && [ "$done_run" -ge "$CONF_INIT_RUN" ]; then
    print_post_deploy_answer
    return 0
  fi
  if [ -n "$CONF_POST_DEPLOY_PATH" ]; then
    post_deploy_request
  else
    log "$app: running the post-deploy command in the web container"
    compose_release "$app" "$color" exec -T web sh -c "$(cat "$(release_etc "$app" "$color")/$POST_DEPLOY_CMD")" >&2 \
      || die "$app: the post-deploy command failed (the new release is serving)"
    print_post_deploy_answer
  fi
  printf '%s %s\n' "$CONF_INIT_RUN" "$(date -u +%FT%TZ)" > "$done_file"
}

# Through Caddy with the app's real name, so links the app derives from the Host header are right; retried with
# a doubling wait until it answers the expected status.
post_deploy_request() {
  local trust=() attempt status="" body wait=1
  if [ "$CONF_TLS_INTERNAL" = true ]; then
    trust=(--cacert "$CADDY_LOCAL_ROOT_CA")
  fi
  body=$(mktemp)
  for attempt in $(seq 0 "$CONF_POST_DEPLOY_RETRIES"); do
    status=$(curl -sS -o "$body" -w '%{http_code}' --max-time 30 "${trust[@]}" -X "$CONF_POST_DEPLOY_METHOD" \
      --resolve "$CONF_HOST:443:127.0.0.1" "https://$CONF_HOST$CONF_POST_DEPLOY_PATH" 2>"$body.err" || true)
    if [ "$status" = "$CONF_POST_DEPLOY_STATUS" ]; then
      break
    fi
    if [ "$attempt" -lt "$CONF_POST_DEPLOY_RETRIES" ]; then
      sleep "$wait"
      wait=$((wait * 2))
    fi
  done
  if [ "$status" != "$CONF_POST_DEPLOY_STATUS" ]; then
    log "$app: post-deploy $CONF_POST_DEPLOY_METHOD $CONF_POST_DEPLOY_PATH answered ${status:-nothing}," \
      "expected $CONF_POST_DEPLOY_STATUS; response:"
    head -c 4000 "$body" "$body.err" >&2
    rm -f "$body" "$body.err"
    die "$app: the post-deploy request failed (the new release is serving; fix it and run pulumi up again)"
  fi
  log "$app: post-deploy $CONF_POST_DEPLOY_METHOD $CONF_POST_DEPLOY_PATH answered $status"
  # On stdout, the one line the program reads back (components/render/post_deploy.py): the status and the body's
  # first lines (e.g. Dallinger's recruitment message and links), which `pulumi up` shows with secrets masked.
  # Kept (root's, 0600: the body may hold links with tokens) and printed by every later deploy, so the output keeps
  # the last answer until a new request replaces it.
  (umask 077 && printf '%s %s %s\n' "$POST_DEPLOY_MARK" "$status" "$(head -n "$POST_DEPLOY_LINES" "$body" | base64 -w0)" \
    > "$etc/$POST_DEPLOY_ANSWER")
  rm -f "$body" "$body.err"
  print_post_deploy_answer
}

# The last post-deploy answer on stdout (nothing before the first).
print_post_deploy_answer() {
  if [ -s "$etc/$POST_DEPLOY_ANSWER" ]; then
    cat "$etc/$POST_DEPLOY_ANSWER"
  fi
}

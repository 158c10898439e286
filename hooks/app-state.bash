# shellcheck shell=bash
# An app's recorded state and its repair. Sourced (deploy-steps.sh, pause-app.sh, remove-app.sh, app-state.sh,
# app-reconcile.sh), never run.
#
# One file says what serves: APP_ETC/APP_STATE, KEY=value lines COLOR (the serving release's colour), RELEASE
# (its id), IMAGE, WORKERS and SWITCHED_AT. It changes only by rename (APP_STATE.new -> APP_STATE), at the moment
# traffic switches: switch_site writes APP_STATE.new, points Caddy's site at the colour, reloads Caddy, then
# renames. A run that dies in between leaves APP_STATE.new behind, which tells the next run that Caddy may point
# anywhere.
# Each release's files live in APP_ETC/<colour>/ (RELEASE_ETC); the serving release's folder is the state's
# colour, the other colour's folder holds a candidate only while a deploy runs.
# shellcheck source=hooks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The files of one release, in its RELEASE_ETC folder. DATA_COMPOSE is a release file too (the release id covers
# it) but Postgres and Redis are shared by both colours: it lives in APP_ETC.
COLOR_FILES=("$RELEASE_CONF" "$APP_COMPOSE" "$SITE_TEMPLATE" "$INIT_CMD" "$POST_DEPLOY_CMD" "$SECRETS_ENV")
STATE_KEYS=(COLOR RELEASE IMAGE WORKERS SWITCHED_AT)

# How long a run waits for another run on the same app (a deploy takes minutes) before it gives up.
LOCK_SECONDS=900

# lock_app APP: one run at a time per app (deploy, pause, removal, repair), held until the script exits: a repair
# run by a pause or an export must never take a deploy's candidate, in the middle of its start, for a leftover.
lock_app() {
  local lock=$APPS_ETC/.$1.lock
  mkdir -p "$APPS_ETC"
  exec 9>"$lock"
  flock -w "$LOCK_SECONDS" 9 \
    || die "$1: another labstack run (deploy, pause, export or removal) has held $lock for ${LOCK_SECONDS}s; try again later"
}

# conf_value FILE KEY: one value of a KEY=value file (release.conf, state), empty when absent.
conf_value() {
  [ -f "$1" ] || return 0
  sed -n "s/^$2=//p" "$1" | tail -n 1
}

# state_read APP: STATE_<KEY> from the app's state file; all empty when nothing serves. A server deployed before
# the state file existed (active-color, active-release) reads the same; state_convert writes it out.
state_read() {
  local etc key file
  etc=$(app_etc "$1")
  file=$etc/$APP_STATE
  for key in "${STATE_KEYS[@]}"; do
    printf -v "STATE_$key" '%s' "$(conf_value "$file" "$key")"
  done
  if [ ! -e "$file" ] && [ -s "$etc/$ACTIVE_COLOR" ]; then
    STATE_COLOR=$(cat "$etc/$ACTIVE_COLOR")
    STATE_RELEASE=$(cat "$etc/$ACTIVE_RELEASE" 2>/dev/null || true)
    STATE_IMAGE=$(conf_value "$etc/$RELEASE_CONF" IMAGE)
    STATE_WORKERS=$(conf_value "$etc/$RELEASE_CONF" WORKERS)
    # shellcheck disable=SC2034  # read through ${!value} in state_print
    STATE_SWITCHED_AT=$(awk 'END { print $1 }' "$etc/$RELEASES_LOG" 2>/dev/null || true)
  fi
}

# state_print APP: the state as KEY=value lines on stdout (nothing when nothing serves).
state_print() {
  local key value
  state_read "$1"
  [ -n "$STATE_COLOR" ] || return 0
  for key in "${STATE_KEYS[@]}"; do
    value=STATE_$key
    printf '%s=%s\n' "$key" "${!value}"
  done
}

# state_prepare APP COLOR RELEASE IMAGE WORKERS [SWITCHED_AT]: the state to commit, as APP_STATE.new (0600, root's).
state_prepare() {
  local etc
  etc=$(app_etc "$1")
  (umask 077 && printf 'COLOR=%s\nRELEASE=%s\nIMAGE=%s\nWORKERS=%s\nSWITCHED_AT=%s\n' "$2" "$3" "$4" "$5" \
    "${6:-$(date -u +%FT%TZ)}" > "$etc/$APP_STATE.new")
}

# state_commit APP: APP_STATE.new becomes the state, in one rename.
state_commit() {
  local etc
  etc=$(app_etc "$1")
  mv "$etc/$APP_STATE.new" "$etc/$APP_STATE"
}

# site_render APP COLOR > FILE: the app's site, from that release's template, pointing at that release's web.
site_render() {
  local dir
  dir=$(release_etc "$1" "$2")
  sed "s/{{UPSTREAM}}/$(web_alias "$1" "$2"):$(conf_value "$dir/$RELEASE_CONF" PORT)/" "$dir/$SITE_TEMPLATE"
}

# site_color APP: the colour the site file on disk sends traffic to, empty without a site.
site_color() {
  local color site
  site=$(app_site "$1")
  for color in "${COLORS[@]}"; do
    if grep -qF "$(web_alias "$1" "$color"):" "$site" 2>/dev/null; then
      printf '%s\n' "$color"
    fi
  done
}

# switch_site APP COLOR RELEASE IMAGE WORKERS: the one step that moves traffic, with the state that records it.
# APP_STATE.new first (the marker of a switch in flight), then the site file (renamed in place) and Caddy's graceful
# reload, then the rename of APP_STATE.new. Fails (returns 1, with Caddy's message) when Caddy refuses the site: the
# caller puts things back.
# Restart policies follow the switch: a candidate runs with none (start_next_web), so an engine restart or a reboot
# before the switch brings back the serving release only. The colour taking traffic gets its policy just before the
# site names it, the other colour loses its own once Caddy has taken the site, before the state's rename: from the
# rename on, a reboot brings back the new release alone. Only a reboot within the switch itself (the reload) may
# bring back both webs, the old release's workers and the web the site names, which then serves.
switch_site() {
  local site other
  site=$(app_site "$1")
  state_prepare "$@"
  restart_policy "$1" "$2" unless-stopped || return 1
  # 0640: the site may hold the dashboard password hash; Caddy runs as root in its container and still reads it.
  (umask 027 && site_render "$1" "$2" > "$site.new")
  mv "$site.new" "$site"
  try_reload_proxy || return 1
  for other in "${COLORS[@]}"; do
    if [ "$other" != "$2" ]; then
      restart_policy "$1" "$other" no || log "$1: could not clear the restart policy of release $other"
    fi
  done
  state_commit "$1"
}

# restart_policy APP COLOR POLICY: the restart policy (no, unless-stopped) of every container of one release.
restart_policy() {
  local ids
  ids=$(release_ids "$1" "$2") || return 1
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086  # one id per word
    docker update --restart "$3" $ids >/dev/null
  fi
}

# release_ids APP COLOR: every container of one release (web, workers, clock), running or not.
release_ids() {
  docker ps -aq --filter "label=$LABEL_APP=$1" --filter "label=$LABEL_COLOR=$2"
}

# down_release APP COLOR: stop and remove one release's containers (with its compose file's grace periods when
# its files are there, else by their labels) and its files. Returns non-zero, keeping the files, when the engine
# cannot do it (the next run tries again).
down_release() {
  local dir ids
  dir=$(release_etc "$1" "$2")
  if [ -f "$dir/$APP_COMPOSE" ]; then
    compose_release "$1" "$2" down --remove-orphans >/dev/null 2>&1 || return 1
  fi
  ids=$(release_ids "$1" "$2") || return 1
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086  # one id per word
    if ! docker stop $ids >/dev/null || ! docker rm $ids >/dev/null; then
      return 1
    fi
  fi
  rm -rf "$dir"
}

# release_running APP COLOR: the release's services that run, then its stopped containers (a replica that exited).
release_running() {
  compose_release "$1" "$2" ps --services --status running | sort
  docker ps -aq --filter "label=$LABEL_APP=$1" --filter "label=$LABEL_COLOR=$2" --filter status=exited
}

# release_incomplete APP COLOR: true when a service of the release is not running (stopped, never started, or a
# replica that exited).
release_incomplete() {
  [ "$(compose_release "$1" "$2" config --services | sort)" != "$(release_running "$1" "$2")" ]
}

# state_convert APP: a server deployed before the state file existed: its release files move into the serving
# colour's folder and the state file is written from active-color/active-release. secrets.env stays where that
# release's compose file names it until the release is retired. Nothing running changes.
state_convert() {
  local etc dir file
  etc=$(app_etc "$1")
  [ ! -e "$etc/$APP_STATE" ] && [ -s "$etc/$ACTIVE_COLOR" ] || return 0
  state_read "$1"
  dir=$(release_etc "$1" "$STATE_COLOR")
  install -d -m 0700 "$dir"
  for file in "${COLOR_FILES[@]}"; do
    if [ -e "$etc/$file" ]; then
      cp -p "$etc/$file" "$dir/$file"
    fi
  done
  state_prepare "$1" "$STATE_COLOR" "$STATE_RELEASE" "$STATE_IMAGE" "$STATE_WORKERS" "$STATE_SWITCHED_AT"
  state_commit "$1"
  for file in "${COLOR_FILES[@]}"; do
    [ "$file" = "$SECRETS_ENV" ] || rm -f "$etc/$file"
  done
  rm -f "$etc/$ACTIVE_COLOR" "$etc/$ACTIVE_RELEASE"
  log "$1: converted the records of an earlier labstack into $APP_STATE ($STATE_COLOR, release $STATE_RELEASE)"
}

# reconcile_app APP [--keep-stopped]: make what runs match what the state records, without interrupting the release
# that serves, one log line per repair. What the state names serves; everything else goes:
#   - a switch that did not finish (APP_STATE.new left, or a site naming another colour): the site points at the
#     state's colour again and Caddy reloads (the release it names is started first if it is not running);
#   - the other colour's containers (a candidate that never passed its health check, or an old release never
#     retired) are stopped and removed, and its files (a release that never started) deleted;
#   - no state at all: a first release that never finished switching loses its site.
# --keep-stopped (a pause that stops the app, a removal): the state's release is not started, so nothing runs
# between an export and the removal it precedes.
# Fails, changing nothing, when the state names a release whose files are missing.
reconcile_app() {
  local app=$1 keep_stopped=${2:-} etc site color other before pending=""
  etc=$(app_etc "$app")
  [ -d "$etc" ] || return 0
  site=$(app_site "$app")
  state_convert "$app"
  state_read "$app"
  color=$STATE_COLOR
  if [ -e "$etc/$APP_STATE.new" ]; then
    pending=yes
  fi
  if [ -n "$color" ]; then
    [ -f "$(release_etc "$app" "$color")/$APP_COMPOSE" ] \
      || die "$app: the state names release $color but its files are missing in $(release_etc "$app" "$color")"
    if [ "$keep_stopped" != --keep-stopped ] && release_incomplete "$app" "$color"; then
      before=$(release_running "$app" "$color")
      compose_release "$app" "$color" up -d --no-recreate --remove-orphans >/dev/null 2>&1 \
        || die "$app: cannot start release $color, which the state names as serving"
      # A service that crash-loops is not repaired by a start: said once per run, not claimed as a repair.
      if [ "$(release_running "$app" "$color")" != "$before" ]; then
        log "$app: repaired: started the services of release $color that were not running"
      else
        log "$app: release $color has services that do not stay running (see invoke logs)"
      fi
    fi
    if [ -n "$pending" ] || [ "$(site_color "$app")" != "$color" ]; then
      rm -f "$etc/$APP_STATE.new"
      (umask 027 && site_render "$app" "$color" > "$site.new")
      mv "$site.new" "$site"
      try_reload_proxy || die "$app: Caddy refused the site of release $color"
      log "$app: repaired: a switch did not finish; Caddy points at release $color again, as the state says"
    fi
  elif [ -n "$pending" ] || [ -e "$site" ]; then
    rm -f "$etc/$APP_STATE.new" "$site"
    if [ -n "$(proxy_container)" ]; then
      try_reload_proxy || die "$app: Caddy refused the configuration without $app's site"
    fi
    log "$app: repaired: removed the site of a first release that never finished its switch"
  fi
  for other in "${COLORS[@]}"; do
    [ "$other" != "$color" ] || continue
    if [ -n "$(release_ids "$app" "$other")" ]; then
      down_release "$app" "$other" || die "$app: could not remove release $other, which the state does not name"
      log "$app: repaired: removed release $other (running, but not the release the state names)"
    elif [ -d "$(release_etc "$app" "$other")" ]; then
      rm -rf "$(release_etc "$app" "$other")"
      log "$app: repaired: deleted the files of release $other, which never served"
    fi
  done
  rm -f "$site.previous" "$site.new"
  # The releases log is history (`invoke list`, exports): a release whose deploy died after its switch is in it too.
  if [ -n "$color" ] && [ "$(awk 'END { print $2 }' "$etc/$RELEASES_LOG" 2>/dev/null || true)" != "$STATE_RELEASE" ]
  then
    printf '%s %s %s\n' "$STATE_SWITCHED_AT" "$STATE_RELEASE" "$STATE_IMAGE" >> "$etc/$RELEASES_LOG"
    log "$app: repaired: release $STATE_RELEASE ($STATE_IMAGE) added to $RELEASES_LOG"
  fi
}

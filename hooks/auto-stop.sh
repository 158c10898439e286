#!/usr/bin/env bash
# The auto-stop watcher (labstack:autoStop): one check, run every minute by labstack-auto-stop.timer (or by hand).
# The server powers itself off (shutdown behaviour `stop`: disks, address and data volume stay) when for
# IDLE_SECONDS (0: never) there was no SSH connection, no running job, no Ray task, no HTTP request to an app, no app saying it
# is busy and CPU stayed under CPU_PERCENT; and MAX_SECONDS after this boot's first check in any case; and when the
# spend since launch reaches BUDGET_TOTAL. It fails safe: a signal it cannot read counts as activity.
# Settings: $WATCHER_ETC/watcher.env. Records: $WATCHER_STATE (watcher.log: events; stops.log: one JSON line per
# stop; status: the last check). Prints the check's outcome on one line.
# Usage: sudo auto-stop.sh
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
PATH=$PATH:/usr/sbin:/sbin

settings=$WATCHER_ETC/watcher.env
if [ ! -f "$settings" ]; then
  echo "auto-stop: off (no $settings)"
  exit 0
fi
IDLE_SECONDS='' MAX_SECONDS='' CPU_PERCENT='' HOURLY_PRICE='' BUDGET_TOTAL='' BUSY_COMMANDS=''
# shellcheck source=/dev/null
source "$settings"
[[ "$IDLE_SECONDS" =~ ^[0-9]+$ ]] || die "IDLE_SECONDS='$IDLE_SECONDS' in $settings: expected whole seconds"
[[ "${CPU_PERCENT:=10}" =~ ^[0-9]+$ ]] || die "CPU_PERCENT='$CPU_PERCENT' in $settings: expected 1-100"

install -d -m 0700 "$WATCHER_STATE" "$WATCHER_RUN"
now=$(date +%s)
event() {  # MESSAGE: the watcher's log (and the system's, where there is one)
  printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$WATCHER_STATE/watcher.log"
  if command -v logger >/dev/null 2>&1; then logger -t "$WATCHER_UNIT" -- "$*" 2>/dev/null || true; fi
}

# This boot's first check: the boot is activity, and the lifetime cap counts from here.
if [ ! -f "$WATCHER_RUN/started" ]; then
  echo "$now" >"$WATCHER_RUN/started"
  echo "$now" >"$WATCHER_STATE/last-active"
  event "watching: idle after ${IDLE_SECONDS}s${MAX_SECONDS:+, at most ${MAX_SECONDS}s per start}"
fi
started=$(cat "$WATCHER_RUN/started")
last_active=$(cat "$WATCHER_STATE/last-active" 2>/dev/null || echo "$now")
busy=()

# --- signals: each adds a reason to busy, or moves last_active to when it last saw activity
ssh_connections() {
  local count
  if ! count=$(ss -Htn state established '( sport = :22 )' 2>/dev/null | wc -l); then
    busy+=("ssh: cannot list connections"); return
  fi
  [ "$count" -eq 0 ] || busy+=("ssh: $count connection(s)")
}

running_jobs() {
  [ -d "$JOBS_SRV" ] || return 0
  local records
  # job-status.sh settles jobs whose supervisor is gone, so a dead job never keeps the server up
  if ! records=$("$(dirname "$0")/job-status.sh" 2>/dev/null); then
    busy+=("jobs: cannot read their status"); return
  fi
  local count
  count=$(grep -cE '"state": *"(submitted|running)"' <<<"$records" || true)
  [ "$count" -eq 0 ] || busy+=("jobs: $count running")
}

ray_tasks() {
  # Ray names a worker process after what it runs (ray::<task or actor>), ray::IDLE… while it waits; a job's
  # supervisor is an actor. Only processes in this server's network namespace count (Ray runs with host networking).
  local mine count=0 proc title
  mine=$(readlink /proc/self/ns/net)
  for proc in /proc/[0-9]*; do
    title=$(tr '\0' ' ' <"$proc/cmdline" 2>/dev/null) || continue
    [[ "$title" == ray::* && "$title" != ray::IDLE* ]] || continue
    [ "$(readlink "$proc/ns/net" 2>/dev/null)" = "$mine" ] && count=$((count + 1))
  done
  [ "$count" -eq 0 ] || busy+=("ray: $count task/actor process(es)")
}

http_requests() {
  local log newest=0 mtime
  for log in "$PROXY_ACCESS_LOG" "${PROXY_ACCESS_LOG%.log}"-*.log; do
    [ -f "$log" ] || continue
    mtime=$(stat -c %Y "$log") || { busy+=("http: cannot read $log"); return; }
    [ "$mtime" -le "$newest" ] || newest=$mtime
  done
  [ "$newest" -le "$last_active" ] || last_active=$newest
}

app_busy_signals() {
  local app command container status
  [ -n "$BUSY_COMMANDS" ] || return 0
  for app in $BUSY_COMMANDS; do
    command=$(cat "$WATCHER_ETC/busy-$app.cmd" 2>/dev/null) || { busy+=("$app: busy command unreadable"); continue; }
    container=$(docker ps -q --filter "label=$LABEL_APP=$app" --filter "label=$LABEL_ROLE=web" 2>/dev/null |
      head -n 1) || true
    if [ -z "$container" ]; then
      continue  # no web container runs: the app serves nobody
    fi
    status=0
    timeout 30 docker exec "$container" sh -c "$command" >/dev/null 2>&1 || status=$?
    [ "$status" -eq 1 ] || busy+=("$app: busy (exit $status)")
  done
}

cpu_use() {
  local user nice system idle iowait irq softirq steal total previous
  read -r _ user nice system idle iowait irq softirq steal _ <"${LABSTACK_ROOT}/proc/stat" ||
    { busy+=("cpu: cannot read /proc/stat"); return; }
  total=$((user + nice + system + idle + iowait + irq + softirq + steal))
  previous=$(cat "$WATCHER_RUN/cpu" 2>/dev/null || true)
  echo "$total $idle" >"$WATCHER_RUN/cpu"
  if [ -z "$previous" ]; then
    busy+=("cpu: first sample"); return
  fi
  local used=$((total - ${previous% *})) idled=$((idle - ${previous#* }))
  [ "$used" -gt 0 ] || return 0
  local percent=$(((used - idled) * 100 / used))
  [ "$percent" -lt "$CPU_PERCENT" ] || busy+=("cpu: ${percent}%")
}

ssh_connections
running_jobs
ray_tasks
http_requests
app_busy_signals
cpu_use

if [ "${#busy[@]}" -gt 0 ]; then
  last_active=$now
fi
echo "$last_active" >"$WATCHER_STATE/last-active"
idle=$((now - last_active))
{
  echo "CHECKED=$now"
  echo "IDLE_SECONDS=$idle"
  echo "BUSY='${busy[*]:-}'"
} >"$WATCHER_STATE/status"

stop_server() {  # REASON
  event "stopping: $1"
  printf '{"time": "%s", "reason": "%s"}\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" >>"$WATCHER_STATE/stops.log"
  echo "auto-stop: stopping: $1"
  shutdown -h now "labstack auto-stop: $1"
  exit 0
}

# --- the budget: spend since launch at the stack's hourly price (running time as the watcher counted it)
if [ -n "$HOURLY_PRICE" ] && [ -n "$BUDGET_TOTAL" ]; then
  ran=$(cat "$WATCHER_STATE/run-seconds" 2>/dev/null || echo 0)
  previous_check=$(cat "$WATCHER_RUN/last-check" 2>/dev/null || echo "$now")
  step=$((now - previous_check))
  [ "$step" -le 300 ] || step=300  # a suspended or late timer never bills more than it saw
  ran=$((ran + step))
  echo "$ran" >"$WATCHER_STATE/run-seconds"
  spent=$(awk -v s="$ran" -v p="$HOURLY_PRICE" 'BEGIN { printf "%.2f", s / 3600 * p }')
  for mark in 50 80; do
    if [ ! -f "$WATCHER_STATE/budget-warned-$mark" ] &&
      awk -v a="$spent" -v t="$BUDGET_TOTAL" -v m="$mark" 'BEGIN { exit !(a >= t * m / 100) }'; then
      touch "$WATCHER_STATE/budget-warned-$mark"
      event "warning: \$$spent spent of the \$$BUDGET_TOTAL budget (${mark}%); at 100% this server stops"
    fi
  done
  if awk -v a="$spent" -v t="$BUDGET_TOTAL" 'BEGIN { exit !(a >= t) }'; then
    stop_server "budget: \$$spent spent, labstack:budget.total is \$$BUDGET_TOTAL"
  fi
fi
echo "$now" >"$WATCHER_RUN/last-check"

# --- the lifetime cap, busy or not, with a warning first
if [[ "$MAX_SECONDS" =~ ^[0-9]+$ ]]; then
  running=$((now - started))
  warn_at=$((MAX_SECONDS > 7200 ? MAX_SECONDS - 3600 : MAX_SECONDS / 2))
  if [ "$running" -ge "$MAX_SECONDS" ]; then
    stop_server "running for ${running}s, labstack:autoStop.maxHours allows ${MAX_SECONDS}s per start"
  elif [ "$running" -ge "$warn_at" ] && [ ! -f "$WATCHER_RUN/lifetime-warned" ]; then
    touch "$WATCHER_RUN/lifetime-warned"
    left=$(((MAX_SECONDS - running) / 60))
    event "warning: this server stops in ${left} minute(s) (labstack:autoStop.maxHours), busy or not"
    if command -v wall >/dev/null 2>&1; then
      wall "labstack: this server stops in ${left} minute(s) (autoStop.maxHours)" 2>/dev/null || true
    fi
  fi
fi

if [ "$IDLE_SECONDS" -gt 0 ] && [ "$idle" -ge "$IDLE_SECONDS" ]; then
  stop_server "idle for ${idle}s (no SSH, job, Ray task, HTTP request, busy app or CPU above ${CPU_PERCENT}%)"
fi
if [ "${#busy[@]}" -gt 0 ]; then
  echo "auto-stop: busy: ${busy[*]}"
else
  echo "auto-stop: idle for ${idle}s of ${IDLE_SECONDS}s"
fi

#!/usr/bin/env bash
# Run one job to its end and record it: submitted -> running -> complete | failed | cancelled | interrupted.
# job-submit.sh starts it detached (setsid, no terminal); run by hand only to re-run a job that never started.
# Usage: sudo job-supervise.sh ID
set -euo pipefail
# shellcheck source=hooks/job-lib.bash
source "$(dirname "$0")/job-lib.bash"
require_root "$@"
[ $# -eq 1 ] || die "usage: $0 ID"
id=$1
need_job "$id"
# job_dir and job_meta spelled out: no subshell forks on the way to starting the job.
dir="$JOBS_SRV/$id"
meta="$dir/.labstack"
load_job "$id"
[ "$state" = submitted ] || die "job $id is $state, not submitted"

finish() {  # EXIT_CODE: the script's end, or a cancel the operator asked for
  job_lock "$id"
  local ended; ended=$(now_utc)
  if [ -f "$meta/cancel" ]; then
    set_state "$id" state=cancelled "exitCode=$1" "endedAt=$ended"
  elif [ "$1" -eq 0 ]; then
    set_state "$id" state=complete exitCode=0 "endedAt=$ended"
  else
    set_state "$id" state=failed "exitCode=$1" "endedAt=$ended"
  fi
  job_unlock
}

# dockerd's pid file (the packaged service's default): which engine runs the container, pid and start time.
engine_identity() {
  local pid
  pid=$(cat /run/docker.pid 2>/dev/null) || return 0
  printf '%s %s\n' "$pid" "$(cut -d' ' -f22 "/proc/$pid/stat" 2>/dev/null)"
}

# A stopping engine stops its containers first (SIGTERM, then SIGKILL: exit 143 or 137) and exits moments later,
# while `docker wait` may still report that exit. A signal exit is the script's own only if the engine stays.
engine_went_away() {  # IDENTITY_AT_START
  local _
  for _ in $(seq 1 20); do
    [ "$(engine_identity)" = "$1" ] || return 0
    sleep 0.5
  done
  return 1
}

interrupted() {
  job_lock "$id"
  docker rm -f "$container" >/dev/null 2>&1 || true
  set_state "$id" state=interrupted "endedAt=$(now_utc)"
  job_unlock
  exit 0
}

job_lock "$id"
if [ -f "$meta/cancel" ]; then
  # A job handed to a waiting container may have started before the cancel.
  if [ -f "$meta/container" ]; then docker rm -f "$(cat "$meta/container")" >/dev/null 2>&1 || true; fi
  set_state "$id" state=cancelled "endedAt=$(now_utc)"
  job_unlock
  exit 0
fi
cd "$dir"
if [ "$mode" = container ]; then
  container="labstack-job-$id"
  spare=''
  if [ -f "$meta/container" ]; then
    # job-submit.sh handed the job to a waiting container, which runs it already: give that its job's name.
    spare=$(cat "$meta/container")
    docker rename "$spare" "$container" 2>/dev/null || container=$spare
    printf '%s\n' "$container" >"$meta/container"
  fi
  if [ -z "$spare" ] && ! docker run -d --name "$container" --label "$LABEL_APP=$SERVER_APP" \
      --label "$LABEL_ROLE=job" -v "$dir:/job" -w /job --env-file "$meta/env" --entrypoint /bin/sh \
      "$image" -c "$JOB_RUNNER" sh "$script" >/dev/null 2>>job.log; then
    set_state "$id" state=failed exitCode=125 "startedAt=$(now_utc)" "endedAt=$(now_utc)"
    job_unlock
    exit 0
  fi
  engine=$(engine_identity)
  set_state "$id" state=running "startedAt=$(now_utc)"
  job_unlock
  # The next job of this image finds a container waiting.
  setsid "$(dirname "$0")/job-spare.sh" "$image" </dev/null >>"$meta/supervisor.log" 2>&1 &
  while true; do
    if code=$(docker wait "$container" 2>/dev/null); then
      if [ "$code" -ge 128 ] && [ ! -f "$meta/cancel" ] && engine_went_away "$engine"; then
        interrupted
      fi
      docker rm "$container" >/dev/null 2>&1 || true
      finish "$code"
      exit 0
    fi
    # docker wait failed: the engine went away. With live-restore the container may still run; otherwise the
    # engine stopped it and its exit code says nothing about the script.
    sleep 2
    if [ "$(docker inspect -f '{{.State.Running}}' "$container" 2>/dev/null)" != true ]; then
      interrupted
    fi
  done
else
  mapfile -t variables <"$meta/env"
  setsid env "${variables[@]}" sh -c "$JOB_RUNNER" sh "$script" </dev/null &
  printf '%s\n' "$!" >"$meta/child"
  set_state "$id" state=running "startedAt=$(now_utc)"
  job_unlock
  code=0
  wait "$!" || code=$?
  finish "$code"
fi

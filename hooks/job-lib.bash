# shellcheck shell=bash
# Shared by the job-*.sh hooks (sourced, never run): where a job lives and how its status record is kept.
# A job's folder JOBS_SRV/<id>/ holds the uploaded files (the script's working directory), status.json (what the
# operator tasks and the auto-stop watcher read), job.log, and .labstack/ (meta, state, env, supervisor pid, lock).
# shellcheck source=hooks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

JOB_ID_RE='^[a-z0-9][a-z0-9-]{0,63}$'
# job-submit.sh's exit code when a file it was told to take from JOBS_STORE is not there unchanged (labstack/jobs/server.py)
# shellcheck disable=SC2034  # used by job-submit.sh
JOB_REUSE_MISS=4
# Runs the job's script in its folder (the container's /job, or the folder itself on the host), output to job.log:
# a script with a #! line runs with its own interpreter, others with bash (sh where the image has no bash).
# shellcheck disable=SC2016,SC2034  # expanded by the sh that runs it; used by job-supervise.sh
JOB_RUNNER='exec >>job.log 2>&1; s=$1; first=; IFS= read -r first < "$s" || true; case $first in "#!"*) exec "./$s";; esac; if command -v bash >/dev/null 2>&1; then exec bash "$s"; fi; exec sh "$s"'
# A waiting container (job-spare.sh) blocks on its folder's fifo until a job is put in that folder: the fifo gives the
# script's name, .labstack/env the job's variables (KEY=VALUE lines, as docker's --env-file), then JOB_RUNNER.
# shellcheck disable=SC2016,SC2034  # expanded by the container's sh; used by job-spare.sh
SPARE_WAITER='IFS= read -r s < .labstack/go || exit 125; while IFS= read -r kv; do [ -z "$kv" ] || export "$kv"; done < .labstack/env; set -- "$s"; '"$JOB_RUNNER"

job_dir() { printf '%s/%s\n' "$JOBS_SRV" "$1"; }
job_meta() { printf '%s/%s/.labstack\n' "$JOBS_SRV" "$1"; }
# A job's container: labstack-job-<id>, or the waiting container it was given (recorded until its rename).
job_container() {
  local file="$JOBS_SRV/$1/.labstack/container"
  if [ -f "$file" ]; then cat "$file"; else printf 'labstack-job-%s\n' "$1"; fi
}
now_utc() { date -u +%Y-%m-%dT%H:%M:%SZ; }

check_room() {  # BYTES: the job's files plus a margin for its logs and first outputs fit, or nothing is written
  local avail need
  mkdir -p "$JOBS_SRV"
  chmod 0700 "$JOBS_SRV"
  avail=$(df -B1 --output=avail "$JOBS_SRV" | tail -n 1 | tr -d ' ')
  need=$(($1 + 64 * 1024 * 1024))
  if [ "$avail" -lt "$need" ]; then
    die "the job's files ($1 bytes, plus 64 MiB for logs) do not fit: $JOBS_SRV has $avail bytes free. Remove old job folders there or grow the disk (invoke storage)"
  fi
}

need_job() {  # ID: exit 3 (unknown job) unless the job exists
  [[ $1 =~ $JOB_ID_RE ]] || die "bad job id '$1': lower-case letters, digits and dashes"
  if [ ! -f "$(job_dir "$1")/status.json" ]; then
    printf 'labstack: error: no job %s on this server (invoke job.status lists them)\n' "$1" >&2
    exit 3
  fi
}

job_lock() {  # ID: hold the job's lock until job_unlock (status writes and state decisions are serialised)
  exec 9>"$JOBS_SRV/$1/.labstack/lock"
  flock 9
}
job_unlock() { flock -u 9; exec 9>&-; }

load_job() {  # ID: the job's fields as shell variables (meta: fixed at submit; state: changes)
  # shellcheck disable=SC2034  # read by the callers
  local_meta="$JOBS_SRV/$1/.labstack"
  name='' image='' submittedBy='' submittedAt='' mode='' script='' state='' exitCode='' startedAt='' endedAt=''
  # shellcheck source=/dev/null
  source "$local_meta/meta"
  # shellcheck source=/dev/null
  source "$local_meta/state"
}

json_value() {  # VAR VALUE [number]: VAR := VALUE as a JSON string (or number), null when empty; no subshell
  if [ -z "$2" ]; then printf -v "$1" null
  elif [ "${3:-}" = number ]; then printf -v "$1" '%s' "$2"
  else printf -v "$1" '"%s"' "$2"; fi
}

write_status() {  # ID: status.json from meta + state, replaced atomically (readers never see half a record)
  local dir="$JOBS_SRV/$1" j_exit j_sub j_start j_end j_image j_by j_name
  load_job "$1"
  # Every value was validated at submit (no quotes, backslashes or newlines), so it is a valid JSON string as is.
  # Built without command substitutions: each one forks, and this runs on the way to starting every job.
  json_value j_exit "$exitCode" number
  json_value j_sub "$submittedAt"
  json_value j_start "$startedAt"
  json_value j_end "$endedAt"
  json_value j_image "$image"
  json_value j_by "$submittedBy"
  json_value j_name "$name"
  printf '{"id":"%s","state":"%s","exitCode":%s,"submittedAt":%s,"startedAt":%s,"endedAt":%s,"image":%s,"mode":"%s","script":"%s","submittedBy":%s,"name":%s}\n' \
    "$1" "$state" "$j_exit" "$j_sub" "$j_start" "$j_end" "$j_image" "$mode" "$script" "$j_by" "$j_name" \
    >"$dir/.status.json.tmp"
  mv -f "$dir/.status.json.tmp" "$dir/status.json"
}

set_state() {  # ID KEY=VALUE...: record new state fields (call with the job's lock held)
  local file kv; file="$(job_meta "$1")/state"
  local id=$1; shift
  for kv in "$@"; do
    sed -i "/^${kv%%=*}=/d" "$file"
    printf '%s\n' "$kv" >>"$file"
  done
  write_status "$id"
}

process_alive() {  # PID START: is PID still the process that started at START (clock ticks), and not a zombie?
  local fields
  # The command name (field 2) of the processes asked about (bash, sh) holds no space, so fields split cleanly.
  read -r -a fields <"/proc/$1/stat" 2>/dev/null || return 1
  [ "${fields[2]}" != Z ] && [ "${fields[21]}" = "$2" ]
}

supervisor_alive() {  # ID: is the job's supervisor process still the one submit started (pid and start time)?
  local file pid start; file="$(job_meta "$1")/supervisor"
  [ -f "$file" ] || return 1
  read -r pid start <"$file"
  # A killed supervisor whose parent has not reaped it yet is a zombie: dead for this question.
  process_alive "$pid" "$start"
}

stop_job_process() {  # ID: kill what runs the script (the container, or the script's process group on the host)
  local meta; meta=$(job_meta "$1")
  if [ "$mode" = container ]; then
    docker kill "$(job_container "$1")" >/dev/null 2>&1 || true
  elif [ -f "$meta/child" ]; then
    kill -TERM -- "-$(cat "$meta/child")" 2>/dev/null || true
  fi
}

reconcile_job() {  # ID: a job whose supervisor is gone (engine restart, reboot, kill) ends as interrupted
  job_lock "$1"
  load_job "$1"
  if { [ "$state" = submitted ] || [ "$state" = running ]; } && ! supervisor_alive "$1"; then
    local age=$(( $(date +%s) - $(stat -c %Y "$(job_meta "$1")/state") ))
    # A just-submitted job's supervisor may not have written its pid yet.
    if [ -f "$(job_meta "$1")/supervisor" ] || [ "$age" -gt 60 ]; then
      stop_job_process "$1"
      if [ "$mode" = container ]; then docker rm -f "$(job_container "$1")" >/dev/null 2>&1 || true; fi
      set_state "$1" state=interrupted "endedAt=$(now_utc)"
    fi
  fi
  job_unlock
}

# --- waiting containers: a container of the last job's image, started ahead, that the next job of that image takes,
# so a job starts without the engine's container start (~0.15-0.35 s, more than an ssh round trip).

spare_record() {  # FOLDER: its waiting container's record, read into spare_image and spare_container; fails when
  # there is none or the container's process is no longer the one job-spare.sh recorded
  local pid='' start='' image='' container=''
  spare_image='' spare_container=''
  [ -f "$1/.labstack/spare" ] || return 1
  # shellcheck source=/dev/null
  source "$1/.labstack/spare"
  spare_image=$image spare_container=$container
  [ -n "$pid" ] && process_alive "$pid" "$start"
}

claim_spare() {  # IMAGE ID: move a live waiting folder of IMAGE to CLAIMED (its container in SPARE_CONTAINER)
  local folder
  CLAIMED='' SPARE_CONTAINER=''
  for folder in "$JOBS_SRV"/.spare-*; do
    if ! spare_record "$folder" || [ "$spare_image" != "$1" ]; then continue; fi
    # A rename is atomic: of two submits racing for one folder (or job-spare.sh discarding it), one gets it and the
    # other goes on without it.
    mv -T "$folder" "$JOBS_SRV/.incoming-$2.spare" 2>/dev/null || continue
    # shellcheck disable=SC2034  # read by job-submit.sh
    CLAIMED="$JOBS_SRV/.incoming-$2.spare" SPARE_CONTAINER=$spare_container
    return 0
  done
  return 1
}

remove_spare() {  # FOLDER CONTAINER: a waiting container (none: '') and its folder, gone
  if [ -n "$2" ]; then docker rm -f "$2" >/dev/null 2>&1 || true; fi
  rm -rf "$1"
}

# --- large files already on the server (labstack/jobs/server.py sends the sha256 of each file of 1 MiB or more) ----------------

inside_folder() {  # FOLDER RELATIVE: is RELATIVE a path inside FOLDER, symbolic links in it resolved?
  local base real
  case /$2/ in */../*|*/./*|//*) return 1 ;; esac
  base=$(realpath -- "$1") && real=$(realpath -m -- "$1/$2") || return 1
  [[ $real == "$base"/* ]]
}

reuse_files() {  # FOLDER: put each file .labstack/reuse names ("SHA256 PATH") there from JOBS_STORE, checked
  local list="$1/.labstack/reuse" sha path target
  [ -f "$list" ] || return 0
  while read -r sha path; do
    if ! [[ $sha =~ ^[0-9a-f]{64}$ ]] || ! inside_folder "$1" "$path"; then
      die "bad line in the upload's reuse list: $sha $path"
    fi
    target="$1/$path"
    mkdir -p "${target%/*}"
    cp -- "$JOBS_STORE/$sha" "$target" 2>/dev/null || return 1
    # The store's file is a hard link into an earlier job's folder, which that job may have changed in place.
    if [ "$(sha256sum <"$target")" != "$sha  -" ]; then
      rm -f "$JOBS_STORE/$sha"
      return 1
    fi
  done <"$list"
}

store_files() {  # FOLDER: link each uploaded file .labstack/store names ("SHA256 PATH") into JOBS_STORE
  local list="$1/.labstack/store" sha path
  [ -f "$list" ] || return 0
  mkdir -p "$JOBS_STORE"
  while read -r sha path; do
    if [[ $sha =~ ^[0-9a-f]{64}$ ]] && inside_folder "$1" "$path" && [ -f "$1/$path" ] && [ ! -L "$1/$path" ]; then
      ln -f -- "$1/$path" "$JOBS_STORE/$sha"
    fi
  done <"$list"
}

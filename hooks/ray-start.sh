#!/usr/bin/env bash
# Start (or keep) this node's Ray: one container of IMAGE with host networking and a restart policy, so a reboot or
# a Docker engine restart brings it back into the cluster. Every port is pinned from layout.sh (the firewall's self
# rule and the README name them); Ray's token authentication is on, the token read from RAY_TOKEN_FILE.
# Usage: sudo ray-start.sh head NODE_IP IMAGE < token
#        sudo ray-start.sh worker NODE_IP IMAGE HEAD_IP < token
# The token comes on stdin (never on a command line or in a log). Running it again with the same settings and
# token changes nothing; other settings replace the container.
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"

role=${1:?usage: ray-start.sh head|worker NODE_IP IMAGE [HEAD_IP] < token}
node_ip=${2:?NODE_IP missing}
image=${3:?IMAGE missing}
head_ip=${4:-}
case "$role" in
  head) ;;
  worker) [ -n "$head_ip" ] || die "a worker needs HEAD_IP (the head's private IP)" ;;
  *) die "role '$role' is neither head nor worker" ;;
esac
# How long a worker waits to be in the cluster before giving up: its Ray retries the head's GCS until the head
# answers (the head starts beside it and may still be pulling its image or loading).
head_wait_s=${RAY_HEAD_WAIT_S:-300}

install -d -m 0700 "$RAY_ETC"
token=$(head -c 4096)
[ -n "$token" ] || die "no Ray token on stdin"
new_token=$(mktemp "$RAY_ETC/token.XXXXXX")
printf '%s' "$token" > "$new_token"
# Readable by Ray's user in its container (mounted alone); RAY_ETC keeps everyone but root out of it on the host.
chown "$RAY_USER" "$new_token"
chmod 0400 "$new_token"
mv -f "$new_token" "$RAY_TOKEN_FILE"

# The object store: 30% of the machine's memory (Ray's own default share), in /dev/shm of the container.
mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
object_store=$((mem_kb * 1024 * 3 / 10))
shm=$((object_store + 256 * 1024 * 1024))

ports=(
  --node-manager-port="$RAY_NODE_MANAGER_PORT" --object-manager-port="$RAY_OBJECT_MANAGER_PORT"
  --runtime-env-agent-port="$RAY_RUNTIME_ENV_AGENT_PORT"
  --dashboard-agent-grpc-port="$RAY_DASHBOARD_AGENT_GRPC_PORT"
  --dashboard-agent-listen-port="$RAY_DASHBOARD_AGENT_LISTEN_PORT"
  --metrics-export-port="$RAY_METRICS_EXPORT_PORT"
  --min-worker-port="$RAY_MIN_WORKER_PORT" --max-worker-port="$RAY_MAX_WORKER_PORT"
)
if [ "$role" = head ]; then
  # The dashboard and the Jobs API answer on 127.0.0.1 only: reachable through an SSH tunnel (or the proxy).
  start=(ray start --head --node-ip-address="$node_ip" --port="$RAY_GCS_PORT"
         --include-dashboard=true --dashboard-host=127.0.0.1 --dashboard-port="$RAY_DASHBOARD_PORT"
         --ray-client-server-port="$RAY_CLIENT_PORT")
else
  start=(ray start --address="$head_ip:$RAY_GCS_PORT" --node-ip-address="$node_ip")
fi
start+=("${ports[@]}" --object-store-memory="$object_store" --disable-usage-stats --block)

# What the running container was started with: the same settings and token keep it.
settings=$(printf '%s\n' "$image" "$shm" "$RAY_USER" "${start[@]}" | cat - "$RAY_TOKEN_FILE" | sha256sum | cut -c1-16)
running=$(docker inspect -f '{{.State.Running}} {{index .Config.Labels "'"$LABEL_RAY_SETTINGS"'"}}' \
  "$RAY_PROJECT" 2>/dev/null || true)
if [ "$running" = "true $settings" ]; then
  log "ray $role on $node_ip already running with these settings"
  exit 0
fi

# Seconds since an $EPOCHREALTIME, for the log: where a slow bring-up spent its time.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
began=$EPOCHREALTIME

# The image first (a no-op when present): a running node keeps running while a new image comes.
docker image inspect "$image" >/dev/null 2>&1 || docker pull -q "$image" >/dev/null
pulled=$(since "$began")

# A worker starts without waiting for the head's GCS, as a person would: its Python loads while the head's starts
# (seconds on a small machine), then `ray start` retries the GCS until it answers (test bed, Ray 2.60: a head started
# 150 s later was joined 2 s after it was up, no restart); should Ray give up, the container exits and the restart
# policy starts it again. Either way this hook waits, bounded, until the node is in the cluster.
docker rm -f "$RAY_PROJECT" >/dev/null 2>&1 || true
# The token file is mounted read-only; RAY_AUTH_TOKEN_PATH makes Ray read it (the value is in no environment).
# Ray and the jobs it runs share the host's network, so they run as RAY_USER (the official image's `ray`), never
# root, and cannot gain privileges (the image's sudo included): the metadata guard (metadata-guard.sh) keeps the
# instance metadata service, with the role's credentials and the host key in the user data, for root alone.
docker run -d --name "$RAY_PROJECT" --network host --restart unless-stopped --shm-size="$shm" \
  --user "$RAY_USER" --security-opt no-new-privileges \
  --label "$LABEL_ROLE=ray-$role" --label "$LABEL_RAY_SETTINGS=$settings" \
  -v "$RAY_TOKEN_FILE:/run/secrets/ray-token:ro" \
  -e RAY_AUTH_MODE=token -e RAY_AUTH_TOKEN_PATH=/run/secrets/ray-token \
  --entrypoint "" "$image" "${start[@]}" >/dev/null
ran=$EPOCHREALTIME

# Up means this node is in the cluster: `ray start` prints "Ray runtime started." only once the GCS lists the node
# (ray/_private/node.py waits for it; a worker's raylet registers with the token, so a wrong token never gets there).
# Its log is followed (one docker call, no CPU spent while Ray starts), not `ray status` polled: that starts Python
# each time, and answers before a worker has joined.
fail() {
  docker logs --tail 50 "$RAY_PROJECT" >&2 || true
  die "$1"
}
wait_s=180
[ "$role" = head ] || wait_s=$head_wait_s
deadline=$((SECONDS + wait_s))
up=
until [ -n "$up" ]; do
  [ "$SECONDS" -lt "$deadline" ] || fail "ray $role on $node_ip did not join the cluster at ${head_ip:-$node_ip} within ${wait_s}s"
  while IFS= read -r line; do
    case "$line" in *"Ray runtime started."*) up=yes; break ;; esac
  done < <(timeout "$((deadline - SECONDS))" docker logs -f "$RAY_PROJECT" 2>&1 </dev/null)
  # The follower ends with the container (Docker restarts it: follow again) or at the deadline; once Ray is up it
  # is not needed any more.
  kill "$!" 2>/dev/null || true
  [ -n "$up" ] || sleep 1
done
joined=$(since "$ran")
if [ "$role" = head ]; then
  # The dashboard and Jobs API (ray.<host>, the ray.* tasks) listen a few seconds after the node is up. A connect
  # by bash itself, cheap enough to try often (no Python start).
  until (exec 3<>"/dev/tcp/127.0.0.1/$RAY_DASHBOARD_PORT") 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "ray's dashboard on $node_ip did not listen on 127.0.0.1:$RAY_DASHBOARD_PORT within 180s"
    sleep 0.25
  done
fi
log "ray $role up on $node_ip: image ready after ${pulled}s, in the cluster ${joined}s after its docker run," \
  "all done after $(since "$began")s"

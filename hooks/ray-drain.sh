#!/usr/bin/env bash
# Take this node out of the Ray cluster before its instance goes: Ray is told to drain the node (no new tasks or
# actors are placed on it, and its running tasks are given DEADLINE_S to finish), then the node's Ray stops, so what
# still ran there is retried on the other nodes. The delete step of a worker's RayNode; safe to run again (no
# container: nothing to do).
# Usage: sudo ray-drain.sh NODE_IP [DEADLINE_S]      (NODE_IP: the node's private IP, as ray-start.sh got it; 60 s)
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"

node_ip=${1:?usage: ray-drain.sh NODE_IP [DEADLINE_S]}
deadline_s=${2:-60}
if ! docker inspect "$RAY_PROJECT" >/dev/null 2>&1; then
  log "no Ray container on this node: nothing to drain"
  exit 0
fi

if [ "$(docker inspect -f '{{.State.Running}}' "$RAY_PROJECT")" = true ]; then
  # Ray's own drain API (`ray drain-node`, the call its autoscaler makes): the head's GCS stops placing work here.
  # PREEMPTION, because Ray refuses an IDLE_TERMINATION drain of a node that still runs tasks.
  node_id=$(docker exec -e NODE_IP="$node_ip" "$RAY_PROJECT" python3 -c '
import os, ray
ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
print(next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeManagerAddress"] == os.environ["NODE_IP"]))
' 2>/dev/null || true)
  if [ -n "$node_id" ] && docker exec "$RAY_PROJECT" ray drain-node --address=auto --node-id "$node_id" \
       --reason DRAIN_NODE_REASON_PREEMPTION --reason-message "labstack: the worker is being removed" \
       --deadline-remaining-seconds "$deadline_s" >&2; then
    log "Ray node $node_id draining (up to ${deadline_s}s)"
    # Tasks still running here get until the deadline; the node is idle earlier when none is left. A Ray worker is
    # titled ray::<task or actor> while it runs one and ray::IDLE while it waits (Ray keeps idle ones around).
    end=$((SECONDS + deadline_s))
    while [ "$SECONDS" -lt "$end" ] && docker exec "$RAY_PROJECT" sh -c \
        'ps -eo args= | grep "^ray::[A-Za-z]" | grep -qv "^ray::IDLE"' 2>/dev/null; do
      sleep 2
    done
  else
    log "Ray did not accept the drain request; stopping the node anyway (its tasks are retried elsewhere)"
  fi
fi
# Removing the container first (no restart policy left) keeps the engine from starting Ray again.
docker rm -f "$RAY_PROJECT" >/dev/null
log "Ray stopped on this node"

#!/usr/bin/env bash
# Keep the containers that run user code (apps, jobs, functions, Ray) away from the instance metadata service: it
# hands out the instance role's credentials and the user data, which holds this node's SSH host private key (with
# it, code could pose as the node to every later deploy). Why two rules:
# - the hop limit of 1 (components/aws/baseline.py) stops the IMDSv2 token of a container on a Docker bridge, but
#   not of a host-network container (Ray): its requests leave from the host's own network stack. Host networking
#   leaves only the user to tell a container's process from the host's, so OUTPUT lets root alone reach the
#   service, and Ray runs as a non-root user that cannot gain privileges (ray-start.sh);
# - DOCKER-USER (Docker's chain for what it forwards from its bridges) refuses it to bridged containers outright.
# Root on the host (the ECR login, cloud-init) keeps it. A systemd unit puts the rules back at boot, before Docker
# starts any container.
# Usage: sudo metadata-guard.sh block|allow [ADDRESS[:PORT]]
#   allow: the stack sets labstack:containerMetadata true (the rules and the unit go). ADDRESS[:PORT]: the service
#   (default METADATA_SERVICE, every port). Running it again changes nothing.
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"

mode=${1:?usage: metadata-guard.sh block|allow [ADDRESS[:PORT]]}
service=${2:-$METADATA_SERVICE}
target=(-d "${service%%:*}")
[[ "$service" != *:* ]] || target+=(-p tcp --dport "${service##*:}")
mark=(-m comment --comment labstack-metadata-guard)
rules=("OUTPUT ${target[*]} -m owner ! --uid-owner 0 ${mark[*]} -j REJECT"
       "DOCKER-USER ${target[*]} ${mark[*]} -j REJECT")
unit=$LABSTACK_ROOT/etc/systemd/system/$METADATA_GUARD_UNIT.service

case "$mode" in
  block)
    # Docker makes DOCKER-USER when it starts and keeps one that exists: at boot this runs first.
    iptables -w -n -L DOCKER-USER >/dev/null 2>&1 || iptables -w -N DOCKER-USER
    for rule in "${rules[@]}"; do
      read -ra words <<< "$rule"
      iptables -w -C "${words[@]}" 2>/dev/null || iptables -w -I "${words[@]}"
    done
    mkdir -p "$(dirname "$unit")"
    printf '%s\n' "[Unit]" "Description=labstack: the instance metadata service for root on the host only" \
      "Before=docker.service" "" "[Service]" "Type=oneshot" "RemainAfterExit=yes" \
      "ExecStart=$LABSTACK_HOOKS/metadata-guard.sh block $service" "" \
      "[Install]" "WantedBy=multi-user.target docker.service" > "$unit.new"
    mv -f "$unit.new" "$unit"
    log "instance metadata at $service: root on the host only"
    ;;
  allow)
    for rule in "${rules[@]}"; do
      read -ra words <<< "$rule"
      while iptables -w -D "${words[@]}" 2>/dev/null; do :; done
    done
    if [ -e "$unit" ] && [ -d /run/systemd/system ]; then
      systemctl disable "$METADATA_GUARD_UNIT" >/dev/null 2>&1 || true
    fi
    rm -f "$unit"
    log "instance metadata at $service: open to containers (labstack:containerMetadata)"
    ;;
  *) die "mode '$mode' is neither block nor allow" ;;
esac
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  [ "$mode" = allow ] || systemctl enable "$METADATA_GUARD_UNIT" >/dev/null 2>&1
fi

#!/usr/bin/env bash
# Install Docker Engine and the compose plugin when missing; a no-op when they are there.
# Usage: sudo install-docker.sh [LOGIN_USER]
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
login_user=${1:-${SUDO_USER:-ubuntu}}

if docker version >/dev/null 2>&1 && { docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null; }; then
  log "Docker is installed: $(docker version --format '{{.Server.Version}}'), $(compose version --short 2>/dev/null || echo compose)"
else
  log "installing Docker Engine and the compose plugin from the distribution"
  export DEBIAN_FRONTEND=noninteractive
  # cloud-init or unattended-upgrades may hold the dpkg lock for a while after boot.
  apt_get() { apt-get -o DPkg::Lock::Timeout=600 -y -q "$@"; }
  apt_get update
  # Ubuntu 24.04 ships compose v2 as docker-compose-v2; Debian ships it as docker-compose.
  if apt-cache show docker-compose-v2 >/dev/null 2>&1; then
    apt_get install docker.io docker-compose-v2
  else
    apt_get install docker.io docker-compose
  fi
  systemctl enable --now docker
fi
if id "$login_user" >/dev/null 2>&1 && ! id -nG "$login_user" | grep -qw docker; then
  usermod -aG docker "$login_user"
  log "added $login_user to the docker group (effective at the next login)"
fi

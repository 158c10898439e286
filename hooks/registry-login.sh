#!/usr/bin/env bash
# Log docker in to a private registry named in labstack:registryAuth, so the deploy's pull can fetch app images from
# it. The password arrives on stdin (a Pulumi secret), never on a command line; docker keeps it in root's docker
# config. ECR needs no login here: ecr-login.sh logs in with the instance role before each pull.
# Usage: sudo registry-login.sh REGISTRY USERNAME < password
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
registry=${1:?usage: registry-login.sh REGISTRY USERNAME < password}
username=${2:?usage: registry-login.sh REGISTRY USERNAME < password}
docker login --username "$username" --password-stdin "$registry" >/dev/null \
  || die "docker could not log in to $registry as $username: check labstack:registryAuth"
echo "labstack: logged in to $registry as $username" >&2

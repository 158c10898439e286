#!/usr/bin/env bash
# Log docker in to IMAGE's registry when it is ECR, with the server's instance role (hooks/ecr-token.py gets the
# password; ECR passwords last 12 hours, and this runs before every pull). Any other image: nothing to do (other
# registries were logged in by registry-login.sh from labstack:registryAuth).
# Usage: sudo ecr-login.sh IMAGE
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
image=${1:?usage: ecr-login.sh IMAGE}
registry=${image%%/*}
[[ $registry =~ ^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$ ]] || exit 0
password=$(python3 "$(dirname "$0")/ecr-token.py" "$registry")
docker login --username AWS --password-stdin "$registry" <<< "$password" >/dev/null
echo "labstack: logged in to $registry with the instance role" >&2

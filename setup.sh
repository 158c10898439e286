#!/usr/bin/env bash
# Set up labstack on this machine: a virtualenv with the pinned requirements (the one Pulumi.yaml names).
#   bash setup.sh           operator setup: what `pulumi up` and the invoke tasks need
#   bash setup.sh --dev     also the test tooling (pytest, moto...): enough for the fast tests, no root needed
#   bash setup.sh --tests   --dev plus, as root, the test bed's system packages (Docker engine, sshd, debootstrap...)
set -euo pipefail
cd "$(dirname "$0")"

with_dev=false
with_testbed=false
for arg in "$@"; do
  case "$arg" in
    --dev) with_dev=true ;;
    --tests) with_dev=true; with_testbed=true ;;
    *) echo "setup.sh: unknown argument '$arg' (use --dev, --tests or nothing)" >&2; exit 2 ;;
  esac
done
# Checked before anything is installed: the test bed's system packages need root.
if $with_testbed && [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: --tests installs the test bed's system packages and needs root (run it as root, or with sudo)" >&2
  exit 1
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "setup.sh: labstack needs Python 3.10 or newer; '$python' is older or missing (set PYTHON=...)" >&2
  exit 1
fi
[ -x venv/bin/python ] || "$python" -m venv venv
venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
if $with_dev; then
  venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
else
  venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
fi
# labstack itself, editable: `import labstack` from any folder or notebook kernel of this venv uses this checkout
# (PYTHONWARNINGS: setuptools warns that the checkout holds a folder named like the package, which is the point)
PYTHONWARNINGS=ignore venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --editable .
if $with_testbed; then
  bash .ci/testbed-setup.sh
fi
echo "labstack: virtualenv ready in ./venv"

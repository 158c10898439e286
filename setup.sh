#!/usr/bin/env bash
# Set up labstack on this machine: a virtualenv with the pinned requirements (the one Pulumi.yaml names).
#   bash setup.sh           operator setup: what `pulumi up` and the invoke tasks need
#   bash setup.sh --tests   also the test tooling and, as root, the test bed's system packages
set -euo pipefail
cd "$(dirname "$0")"

with_tests=false
for arg in "$@"; do
  case "$arg" in
    --tests) with_tests=true ;;
    *) echo "setup.sh: unknown argument '$arg' (use --tests or nothing)" >&2; exit 2 ;;
  esac
done

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "setup.sh: labstack needs Python 3.10 or newer; '$python' is older or missing (set PYTHON=...)" >&2
  exit 1
fi
[ -x venv/bin/python ] || "$python" -m venv venv
venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
if $with_tests; then
  venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  if [ -f .ci/testbed-setup.sh ]; then
    bash .ci/testbed-setup.sh
  fi
else
  venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
fi
echo "labstack: virtualenv ready in ./venv"

#!/usr/bin/env bash
# Set up labstack on this machine: a virtualenv with the pinned requirements (the one Pulumi.yaml names).
#   bash setup.sh           operator setup: what `invoke up` and the other tasks need
#   bash setup.sh --ray     also Ray's client (~250 MB), for cluster stacks (invoke ray.*)
#   bash setup.sh --dev     also the test tooling (pytest, moto...) and Ray: enough for the fast tests, no root needed
#   bash setup.sh --tests   --dev plus, as root, the test bed's system packages (Docker engine, sshd, debootstrap...)
set -euo pipefail
cd "$(dirname "$0")"

with_dev=false
with_testbed=false
with_ray=false
for arg in "$@"; do
  case "$arg" in
    --ray) with_ray=true ;;
    --dev) with_dev=true ;;
    --tests) with_dev=true; with_testbed=true ;;
    *) echo "setup.sh: unknown argument '$arg' (use --ray, --dev, --tests or nothing)" >&2; exit 2 ;;
  esac
done
# Checked before anything is installed: the test bed's system packages need root.
if $with_testbed && [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: --tests installs the test bed's system packages and needs root (run it as root, or with sudo)" >&2
  exit 1
fi

steps=4
$with_testbed && steps=5
step=0
started=$SECONDS
say() { step=$((step + 1)); printf '[%d/%d] %s\n' "$step" "$steps" "$*"; }
took() { printf '      done (%ds)\n' "$((SECONDS - $1))"; }

say "checking what labstack needs"
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "setup.sh: labstack needs Python 3.10 or newer; '$python' is older or missing: install it (Debian/Ubuntu:" \
       "\`sudo apt-get install python3 python3-venv\`; macOS: \`brew install python\`), or point PYTHON=... at one" >&2
  exit 1
fi
echo "      Python: $("$python" -c 'import platform; print(platform.python_version())') ($python)"
missing=()
if command -v pulumi >/dev/null 2>&1; then
  echo "      Pulumi CLI: $(pulumi version 2>/dev/null || echo found)"
else
  missing+=("Pulumi CLI (invoke up, preview, destroy): \`curl -fsSL https://get.pulumi.com | sh\`, then open a new shell")
fi
if command -v docker >/dev/null 2>&1; then
  echo "      Docker: found"
else
  missing+=("Docker (invoke build, push, debug): https://docs.docker.com/engine/install/")
fi
if command -v aws >/dev/null 2>&1 || [ -n "${AWS_PROFILE:-}${AWS_ACCESS_KEY_ID:-}" ] || [ -f "$HOME/.aws/credentials" ]; then
  echo "      AWS credentials: configured or configurable"
else
  missing+=("AWS credentials (invoke up, list.*): install the AWS CLI, then \`aws configure\` (or set AWS_PROFILE)")
fi
for item in ${missing[@]+"${missing[@]}"}; do
  echo "      missing, install later: $item"
done

say "virtualenv ./venv"
t=$SECONDS
[ -x venv/bin/python ] || "$python" -m venv venv
venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
took "$t"

requirements="requirements.txt"
if $with_dev; then
  requirements="requirements-dev.txt"
elif $with_ray; then
  requirements="requirements-ray.txt"
fi
say "installing $requirements (pinned; the first time takes a minute or two)"
t=$SECONDS
venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
# labstack itself, editable: `import labstack` from any folder or notebook kernel of this venv uses this checkout
# (PYTHONWARNINGS: setuptools warns that the checkout holds a folder named like the package, which is the point)
PYTHONWARNINGS=ignore venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --editable .
took "$t"

if $with_testbed; then
  say "test bed system packages"
  t=$SECONDS
  bash .ci/testbed-setup.sh
  took "$t"
fi

say "ready"
echo "      ./venv: $(du -sh venv 2>/dev/null | cut -f1) in $((SECONDS - started))s" \
     "$( $with_ray || $with_dev || echo "(Ray's client left out: bash setup.sh --ray adds it for cluster stacks)")"
echo "labstack: virtualenv ready in ./venv"
echo "next: venv/bin/invoke new -s <your-stack> --like paris-batch2   then   venv/bin/invoke check -s <your-stack>"

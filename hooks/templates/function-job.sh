#!/usr/bin/env bash
# The job script of a Python function (labstack/functions.py): runs in the job's container, in the job folder, beside
# function.pkl, function.json, function_runner.py and the caller's cloudpickle package. An image without python3
# is refused with a result the caller reads (out/result.json) instead of an unexplained exit 127.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p out
if ! command -v python3 >/dev/null 2>&1; then
    echo "labstack: this image has no python3; a function needs an image with Python" >&2
    printf '{"status": "refused", "message": "the image has no python3"}\n' >out/result.json
    exit 3
fi
exec python3 function_runner.py

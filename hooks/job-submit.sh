#!/usr/bin/env bash
# Receive a job's files (a tar stream on stdin) into JOBS_SRV/<id>/ and start its supervisor detached (the node
# agent, hooks/agent/run.py), so the job survives the SSH session that submitted it; prints the job's id.
# Usage: sudo job-submit.sh ID BYTES IMAGE|--on-host SCRIPT NAME SUBMITTER <files.tar
#   BYTES: the files' size, checked against the free disk before anything is written. NAME may be ''.
set -euo pipefail
# shellcheck source=hooks/lib.sh
source "$(dirname "$0")/lib.sh"
require_root "$@"
run_agent job-submit "$@"

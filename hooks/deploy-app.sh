#!/usr/bin/env bash
# Deploy one app with a blue/green swap: the new release must pass its health check before Caddy sends it
# traffic; if it fails, the running release keeps serving and this script fails with the new one's logs.
# It starts by repairing what an interrupted run left (reconcile_app in app-state.bash: the release the state
# names serves, anything else goes); the new release's files wait beside the serving one's until the switch, which
# records the new state in the same step, and a deploy that fails before it leaves them nowhere.
# Before the first release takes traffic, the app's init command runs once (never again on redeploys, restarts or
# reboots unless INIT_RUN is raised); after a deploy, the post-deploy hook (an HTTPS request through the app's
# public name, or a command in the web container) runs after the first deploy or every deploy.
# The steps are the functions of deploy-steps.sh.
# Usage: sudo deploy-app.sh APP < bundle
#   bundle: base64 tar.gz with the app's release files (RELEASE_FILES in deploy-steps.sh)
set -euo pipefail
# shellcheck source=hooks/deploy-steps.sh
source "$(dirname "$0")/deploy-steps.sh"
require_root "$@"
valid_app_name "${1:?usage: deploy-app.sh APP < bundle}"
lock_app "$1"

bundle_dir=$(unpack_stdin_bundle)
switched=""
# A deploy that fails before its switch leaves no candidate behind (when the engine answers; else the next run's
# reconcile_app removes it).
trap 'status=$?; rm -rf "$bundle_dir"; if [ "$status" -ne 0 ] && [ -z "$switched" ] && [ -d "${candidate:-}" ]; then
  discard_candidate; fi' EXIT
step_log=$bundle_dir/step-times  # not a release file: the release id ignores it
step repair reconcile_app "$1"
load_release "$1" "$bundle_dir"
step files install_release_files
step networks ensure_networks
# The image comes down while Postgres starts: neither needs the other.
step pull pull_image &
pulling=$!
step data start_data_services
step postgres wait_for_postgres
wait "$pulling"  # a failed pull has said why
if release_recorded; then
  step keep keep_serving
  log_step_times
  post_deploy "$active"  # a post-deploy hook that failed last time is still owed
  exit 0
fi
step init run_init
step web start_next_web
step healthy wait_healthy
step switch switch_proxy
switched=yes
step workers start_workers
step settle check_workers
step retire retire_old
record_release
log_step_times
post_deploy "$next"

#!/usr/bin/env bash
# A test bed fault (tests/e2e/test_faults_deploy.py), never on a server: once FILE contains TEXT, SIGKILL the
# process group of this host's running `deploy-app.sh APP`, the way a dropped SSH connection ends a deploy at that
# moment (no trap runs, the session closes). Only processes in this host's network namespace are looked at, so the
# deploys of other test bed hosts on the same machine are never touched. Prints what it killed, and whether a
# switch was in flight (state.conf.new present) at that moment.
# Usage: sudo kill-deploy-when.sh APP FILE TEXT STATE_NEW [SECONDS]
set -euo pipefail
app=$1 file=$2 text=$3 state_new=$4 seconds=${5:-300}
deadline=$((SECONDS + seconds))
until grep -qF -- "$text" "$file" 2>/dev/null; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "timeout: $file never contained $text" >&2
    exit 2
  fi
  sleep 0.01
done
net=$(readlink /proc/self/ns/net)
groups=()
for proc in /proc/[0-9]*; do
  [ "$(readlink "$proc/ns/net" 2>/dev/null)" = "$net" ] || continue
  command=$(tr '\0' ' ' < "$proc/cmdline" 2>/dev/null || true)
  if [[ "$command" == *"hooks/deploy-app.sh $app "* ]]; then
    groups+=("$(ps -o pgid= -p "${proc#/proc/}" | tr -d ' ')")
  fi
done
[ "${#groups[@]}" -gt 0 ] || { echo "no deploy-app.sh $app was running" >&2; exit 3; }
mapfile -t groups < <(printf '%s\n' "${groups[@]}" | sort -u)
# Frozen first, so what is on disk when we look is where the deploy stopped.
for group in "${groups[@]}"; do
  kill -STOP -- "-$group" 2>/dev/null || true
done
in_flight=no
[ ! -e "$state_new" ] || in_flight=yes
for group in "${groups[@]}"; do
  kill -KILL -- "-$group" 2>/dev/null || true
done
echo "killed=${groups[*]} switch_in_flight=$in_flight"

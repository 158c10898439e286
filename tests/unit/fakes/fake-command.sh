#!/usr/bin/env bash
# A recording fake of a command (docker, curl, sleep) for tests/unit/test_deploy_steps.py; never on a server.
# Linked as $FAKE_DIR/bin/<name>. Appends "<name> <arguments, shell-quoted>" to $FAKE_DIR/calls, then answers from
# $FAKE_DIR/<name>.rules, lines of "USES<TAB>STATUS<TAB>GLOB<TAB>OUTPUT": the first rule whose GLOB matches the
# arguments (joined by spaces) and whose USES is not spent ("*": never) prints OUTPUT (printf %b) and exits STATUS.
# Without a matching rule it prints nothing and succeeds.
set -euo pipefail
name=$(basename "$0")
{ printf '%s' "$name"; printf ' %q' "$@"; printf '\n'; } >> "$FAKE_DIR/calls"
rules=$FAKE_DIR/$name.rules
[ -f "$rules" ] || exit 0
number=0
while IFS=$'\t' read -r uses status glob output; do
  number=$((number + 1))
  # shellcheck disable=SC2053  # GLOB is a pattern on purpose
  [[ "$*" == $glob ]] || continue
  used=$(cat "$rules.used.$number" 2>/dev/null || echo 0)
  if [ "$uses" != '*' ] && [ "$used" -ge "$uses" ]; then
    continue
  fi
  echo $((used + 1)) > "$rules.used.$number"
  printf '%b' "$output"
  exit "$status"
done < "$rules"

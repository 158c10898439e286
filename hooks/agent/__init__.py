"""The node agent: script jobs (submit, supervise, status, logs, fetch, cancel, the large-file store, the waiting
container) and the auto-stop watcher, run on each server by its own `python3` (standard library only).

The hooks job-*.sh and auto-stop.sh are its entry points (`sudo REMOTE_HOOKS/job-status.sh`): each checks
for root and runs `python3 -I -S -B REMOTE_HOOKS/agent <command> ...` (hooks/lib.sh, run_agent). The protocol
both ends share is contract.py; server paths come from the generated hooks/layout.sh (layout.py).
"""

"""A recording `pulumi` for tests of tasks that drive the Pulumi CLI (which cannot be installed here)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

SCRIPT = """#!{python}
import json, os, sys
argv = [a for a in sys.argv[1:] if a != "--non-interactive"]  # the Automation API puts it on every command
if argv == ["version"]:  # the Automation API's check of the CLI version, before anything else
    print("v3.272.0")
    sys.exit(0)
with open({log!r}, "a") as out:
    out.write(json.dumps({{"argv": argv, "cwd": os.getcwd(),
                          "backend": os.environ.get("PULUMI_BACKEND_URL"),
                          "passphrase_file": os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")}}) + "\\n")
code = int(os.environ.get("FAKE_PULUMI_EXIT", "0"))
if "--event-log" in argv:  # the Automation API's engine event stream (gRPC from CLI 3.205 on): FAKE_PULUMI_EVENTS, then
    import grpc  # the summary every operation ends with
    from pulumi.runtime.proto import events_pb2, events_pb2_grpc
    events = json.loads(os.environ.get("FAKE_PULUMI_EVENTS", "[]")) + [{{"summaryEvent": {{"resourceChanges": {{}}}}}}]
    with grpc.insecure_channel(argv[argv.index("--event-log") + 1].removeprefix("tcp://")) as channel:
        events_pb2_grpc.EventsStub(channel).StreamEvents(
            iter([events_pb2.EventRequest(event=json.dumps({{"sequence": n, **e}})) for n, e in enumerate(events)]))
if code:
    print("error: the recording pulumi was told to fail", file=sys.stderr)
elif argv[:2] == ["stack", "output"]:
    by_stack = json.loads(os.environ.get("FAKE_PULUMI_OUTPUTS_BY_STACK", "{{}}"))
    stack = argv[argv.index("--stack") + 1] if "--stack" in argv else ""
    print(json.dumps(by_stack[stack]) if stack in by_stack else os.environ.get("FAKE_PULUMI_OUTPUTS", "{{}}"))
elif argv[:2] == ["stack", "history"]:
    print(json.dumps([{{"version": 1, "kind": "update", "startTime": "2026-12-07T00:00:00.000Z", "message": "",
                       "environment": {{}}, "config": {{}}, "result": "succeeded",
                       "endTime": "2026-12-07T00:00:01.000Z", "resourceChanges": {{}}}}]))
elif argv[:2] == ["config", "get"]:
    print(json.dumps({{"value": os.environ.get("FAKE_PULUMI_CONFIG", ""), "secret": True}}))
sys.exit(code)
"""


def install_fake_pulumi(folder: Path, monkeypatch):
    """Put a `pulumi` first on PATH that records each call (argv without the Automation API's --non-interactive,
    cwd, backend settings; not its `version` check) and answers `stack output` with FAKE_PULUMI_OUTPUTS (or, for a
    stack named in the JSON object FAKE_PULUMI_OUTPUTS_BY_STACK, with its own), `config get`
    with FAKE_PULUMI_CONFIG and `stack history` with one update; exits with FAKE_PULUMI_EXIT. Returns a reader of
    the calls."""
    log = folder / "pulumi-calls.jsonl"
    fake = folder / "bin" / "pulumi"
    fake.parent.mkdir(parents=True)
    fake.write_text(SCRIPT.format(log=str(log), python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    return lambda: [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def steady(argv: list[str]) -> list[str]:
    """argv with the one value that changes per run, the Automation API's event stream address, as <events>."""
    return ["<events>" if i and argv[i - 1] == "--event-log" else arg for i, arg in enumerate(argv)]

"""Progress of a Pulumi operation from its engine event stream (the Automation API's on_event): one line per
resource as it is done or fails, and the summary. What a notebook shows instead of Pulumi's full-screen text."""
from __future__ import annotations

from typing import Callable

DONE = {"create": "created", "update": "updated", "delete": "deleted", "replace": "replaced",
        "create-replacement": "created a replacement of", "delete-replaced": "deleted the replaced",
        "import": "imported", "refresh": "refreshed", "read": "read"}


class EventProgress:
    """Call it with each EngineEvent; it writes one line for each resource that changed or failed."""

    def __init__(self, write: Callable[[str], None] = print):
        self.write = write
        self.done = 0
        self.failed = 0

    def __call__(self, event) -> None:
        if event.res_outputs_event is not None and not event.res_outputs_event.planning:
            step = event.res_outputs_event.metadata
            if step.op.value in DONE:
                self.done += 1
                self.write(f"  {DONE[step.op.value]} {step.type} {_name(step.urn)}")
        elif event.res_op_failed_event is not None:
            step = event.res_op_failed_event.metadata
            self.failed += 1
            self.write(f"  FAILED to {step.op.value} {step.type} {_name(step.urn)}")
        elif event.diagnostic_event is not None and event.diagnostic_event.severity == "error":
            self.write(f"  error: {event.diagnostic_event.message.strip()}")
        elif event.summary_event is not None:
            changes = {op: n for op, n in (event.summary_event.resource_changes or {}).items() if op != "same" and n}
            shown = ", ".join(f"{op} {n}" for op, n in sorted(changes.items())) or "no changes"
            self.write(f"  done in {event.summary_event.duration_seconds} s: {shown}")


def _name(urn: str) -> str:
    """The resource's own name: the last part of its URN."""
    return urn.rsplit("::", 1)[-1]

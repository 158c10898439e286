"""`Job`: one script job on a stack's server, as an object (crimpl's submitted script): status, wait, logs, fetch,
cancel, and `Job.attach` to find it again after Python restarted. The work is labstack.jobs.server's; this is the
handle a notebook keeps."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional, Protocol, Union

from labstack.jobs import server
from labstack.ssh.target import SshTarget, target_for_stack


class Server(Protocol):
    """Where a job runs: a stack's server (labstack.Stack is one)."""

    name: str

    def target(self) -> SshTarget: ...


class NamedStack:
    """A stack known by its name alone: its server reached through the stack's outputs."""

    def __init__(self, name: str):
        self.name = name
        self._target: Optional[SshTarget] = None

    def target(self) -> SshTarget:
        self._target = self._target or target_for_stack(self.name)
        return self._target


class Job:
    """A job started by `Stack.submit` (or `invoke job.submit`), on that stack's server."""

    def __init__(self, stack: Server, job_id: str, record: Optional[dict] = None):
        self.stack = stack
        self.id = server.check_job_id(job_id)
        self.last_record = record  # the status record as last read from the server (None: not read yet)

    def __repr__(self) -> str:
        return f"Job({self.stack.name!r}, {self.id!r})"

    @classmethod
    def attach(cls, stack: Union[Server, str], job_id: str) -> "Job":
        """The job `job_id` of `stack` (a Stack or a stack name), e.g. after the notebook's kernel restarted;
        JobError if the server has no such job."""
        job = cls(NamedStack(stack) if isinstance(stack, str) else stack, job_id)
        job.record()  # an unknown id is refused now, with the hint where ids are listed
        return job

    def record(self) -> dict:
        """The server's status record: id, name, state, exitCode, startedAt, endedAt, image, submittedBy."""
        self.last_record = server.statuses(self.stack.target(), self.id)[0]
        return self.last_record

    def status(self) -> str:
        """submitted, running, complete, failed, cancelled or interrupted."""
        return self.record()["state"]

    def done(self) -> bool:
        return self.status() not in server.ACTIVE

    def wait(self, timeout: Optional[float] = None, on_progress: Optional[Callable[[dict], None]] = None) -> int:
        """Block until the job ends; its exit code (130 cancelled, 75 interrupted). TimeoutError after `timeout`
        seconds, the job still running."""
        return server.wait(self.stack.target(), self.id, on_progress=on_progress,
                           deadline=None if timeout is None else time.monotonic() + timeout)

    def logs(self, follow: bool = False) -> Optional[str]:
        """The job's output so far; with follow=True it is printed as it comes until the job ends (returns None)."""
        return server.logs(self.stack.target(), self.id, follow=follow)

    def fetch(self, path: str = "out/", dest: Union[str, Path] = ".") -> Path:
        """Download `path` of the job folder into `dest`, every file sha256-verified; the local path."""
        return server.fetch(self.stack.target(), self.id, path=path, dest=Path(dest))

    def cancel(self) -> str:
        """Stop the job; its state afterwards (cancelled, or how it had ended before)."""
        return server.cancel(self.stack.target(), self.id)["state"]

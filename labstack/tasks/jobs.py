"""`invoke job.*`: script jobs on a stack's server (labstack/jobs/server.py); job.run, a throwaway instance, is in
labstack/tasks/jobs_run.py."""
import sys
from pathlib import Path

from invoke import Exit

from labstack.tasks.invoke_support import task

from labstack.tasks.errors import call as _call
from labstack.tasks.jobs_run import run  # noqa: F401 (job.run)

STACK = "stack name (stacks/Pulumi.<stack>.yaml)"


def _job(stack, job):
    from labstack.jobs.job import Job, NamedStack

    return Job(NamedStack(stack), job)


@task(help={"stack": STACK, "script": "the script to run (bash unless it has a #! line)",
            "files": "a file or folder to upload beside it (repeatable)",
            "image": "container image (default: the stack's only app's image, else python:3.11-slim)",
            "on_host": "run on the server itself instead of a container", "name": "a name for the job",
            "env": "K=V for the script (repeatable)"}, iterable=["files", "env"])
def submit(c, stack, script, files=None, image=None, on_host=False, name=None, env=None):
    """Upload the script and files to JOBS_SRV/<id>/ on the server and start it detached; prints the job id."""
    from labstack.jobs import server as jobs
    from labstack.stack import Stack

    def go():
        # Progress on stderr: stdout is the job id alone (`id=$(invoke job.submit ...)`).
        return Stack(stack).submit(Path(script), files or [], image=image, env=jobs.parse_env(env), name=name,
                                   on_host=on_host,
                                   on_progress=lambda message: print(f"labstack: {message}", file=sys.stderr)).id
    print(_call(go))


@task(help={"stack": STACK, "job": "one job id (default: every job)", "json": "the records as JSON, for scripts"})
def status(c, stack, job=None, json=False):
    """A table of the server's jobs: state, exit code, times, image, who submitted it."""
    from rich.table import Table

    from labstack.stack import Stack
    from labstack.terminal import print_json, results_console

    records = _call(lambda: [j.last_record for j in Stack(stack).jobs()] if job is None else [_job(stack, job).record()])
    if json:
        print_json(records)
        return
    table = Table("job", "name", "state", "exit", "started", "ended", "image", "submitted by")
    for record in records:
        table.add_row(record["id"], record.get("name") or "", record["state"], _text(record.get("exitCode")),
                      _text(record.get("startedAt")), _text(record.get("endedAt")),
                      record.get("image") or "(host)", _text(record.get("submittedBy")))
    results_console().print(table)


def _text(value):
    return "" if value is None else str(value)


@task(help={"stack": STACK, "job": "job id", "follow": "keep printing until the job ends"})
def logs(c, stack, job, follow=False):
    """The job's output (stdout and stderr of its script)."""
    text = _call(lambda: _job(stack, job).logs(follow=follow))
    if text is not None:
        print(text, end="")


@task(help={"stack": STACK, "job": "job id"})
def wait(c, stack, job):
    """Wait for the job to end, showing its state; exits with its exit code (130 cancelled, 75 interrupted)."""
    def show(record):
        print(f"{record['id']} {record['state']}", flush=True)
    code = _call(lambda: _job(stack, job).wait(on_progress=show))
    if code:
        raise Exit(code=code)


@task(help={"stack": STACK, "job": "job id", "path": "file or folder in the job folder (default out/)",
            "dest": "local folder (default .)"})
def fetch(c, stack, job, path="out/", dest="."):
    """Download a job's outputs, sha256-verified; written under a temporary name and renamed when complete."""
    print(_call(lambda: _job(stack, job).fetch(path, dest=Path(dest))))


@task(help={"stack": STACK, "job": "job id"})
def cancel(c, stack, job):
    """Stop a job (its container or its processes) and record it as cancelled."""
    print(f"{job} {_call(lambda: _job(stack, job).cancel())}")

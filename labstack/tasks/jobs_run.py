"""`invoke job.run`: a script job on a throwaway instance (labstack/jobs/throwaway.py), part of the `job` collection."""
from invoke import Exit

from labstack.tasks.invoke_support import task

RUN_HELP = {
    "type": "EC2 instance type of the throwaway instance, e.g. c7i.4xlarge",
    "region": "AWS region (default: the --like stack's, else AWS_REGION)",
    "like": "copy region, serverPem, keyPair, sshCidrs, network and tags from this stack "
            "(default: ~/.ssh/labstack_ed25519 and this machine's public address)",
    "script": "the script to run", "files": "a file or folder to upload beside it (repeatable)",
    "fetch": "path in the job folder to fetch back when it ends (default out/; '' for none)",
    "dest": "local folder for the outputs and the record (default jobs/<stack>/)",
    "keep": "leave the instance and its stack up afterwards", "max_hours": "the watcher stops it after this many "
    "whole hours in any case (default 4)", "image": "container image (default python:3.11-slim)",
    "on_host": "run the script on the host instead of a container", "name": "a name for the job",
    "env": "K=V for the script (repeatable)",
}


@task(help=RUN_HELP, iterable=["files", "env"])
def run(c, type, script, region=None, like=None, files=None, fetch="out/", dest=None, keep=False, max_hours=None,
        image=None, on_host=False, name=None, env=None):
    """Run a script on a throwaway instance: write a job-<id> stack, pulumi up, submit, wait, fetch, then pulumi
    destroy and stack rm (also after a failure or Ctrl-C); exits with the job's exit code."""
    from pathlib import Path

    from labstack.jobs.throwaway import DEFAULT_MAX_HOURS, JobRunError, Machine, ScriptJob, run_job
    from labstack.local import key_value
    from labstack.tasks.errors import call, one_line_errors

    # Whole hours, as labstack:autoStop maxHours takes them: refused here, naming the flag, not the stack file key.
    text = str(DEFAULT_MAX_HOURS if max_hours is None else max_hours).strip()
    if not text.isdigit() or int(text) < 1:
        raise Exit(f"labstack: --max-hours {max_hours!r}: expected a whole number of hours, at least 1, e.g. 4", code=1)
    hours = int(text)
    with one_line_errors():
        variables = dict(key_value(item, "--env", JobRunError, "SEED=42") for item in env or [])
    machine = Machine(instance_type=type, region=region, like=like, max_hours=hours, keep=keep)
    job = ScriptJob(script=Path(script), files=[Path(p) for p in files or []], fetch=fetch or None, image=image,
                    on_host=on_host, name=name, env=variables or None)
    try:
        code = call(run_job, machine, job, dest=Path(dest) if dest else None)
    except KeyboardInterrupt:
        raise Exit("labstack: interrupted", code=130)
    if code:
        raise Exit(code=code)

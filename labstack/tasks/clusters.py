"""`invoke ray.*`: Ray on a cluster stack, through an SSH tunnel pinned to the head's host key (labstack/clusters.py)."""
from invoke import Exit

from labstack.tasks.invoke_support import task

STACK = "stack name (stacks/Pulumi.<stack>.yaml)"


def _call(action, *args, **kwargs):
    from labstack.tasks.errors import call

    try:
        return call(action, *args, **kwargs)
    except RuntimeError as error:  # JobSubmissionClient's own failures (an unknown job id, Ray refusing a request)
        raise Exit(f"labstack: Ray: {error}", code=1)


def _status(stack):
    from rich.table import Table

    from labstack.tasks import actions as commands

    from labstack import clusters as ray_cluster

    with ray_cluster.ray_session(stack) as session:
        nodes = ray_cluster.node_statuses(session.url, session.headers)
    out = commands._out()
    table = Table("node", "ip", "state", "CPUs", "GPUs", "memory")
    for node in nodes:
        table.add_row(("head " if node.head else "") + node.node_id[:12], node.ip, "alive" if node.alive else "dead",
                      f"{node.cpus:g}", f"{node.gpus:g}", f"{node.memory_gb:.1f} GB")
    out.print(table)
    alive = sum(node.alive for node in nodes)
    out.print(f"{alive} alive, {len(nodes) - alive} dead; {sum(n.cpus for n in nodes if n.alive):g} CPUs, "
              f"{sum(n.gpus for n in nodes if n.alive):g} GPUs")


@task(help={"stack": STACK})
def status(c, stack):
    """The cluster's Ray nodes: alive or dead, CPUs, GPUs, memory."""
    _call(_status, stack)


def _submit(stack, words, working_dir, pip, follow):
    import sys

    from labstack import clusters as ray_cluster

    command = ray_cluster.entrypoint(words)
    with ray_cluster.ray_session(stack) as session:
        job_id = session.client.submit_job(entrypoint=command,
                                           runtime_env=ray_cluster.runtime_env(working_dir, pip))
        print(f"submitted {job_id}", flush=True)
        if follow:
            ray_cluster.follow_logs(session.client, job_id, sys.stdout.write)
            return str(session.client.get_job_status(job_id))
    return None


@task(iterable=["pip"], help={"stack": STACK, "working_dir": "a local folder Ray uploads for the job (its cwd)",
                              "pip": "a pip package the job needs (repeatable)",
                              "follow": "stream the job's logs until it ends; exit 1 unless it succeeded"})
def submit(c, stack, working_dir=None, pip=None, follow=False):
    """Send the command after -- to the cluster as a Ray job, e.g. `invoke ray.submit -s S -- python train.py`;
    prints the job id."""
    final = _call(_submit, stack, c.remainder, working_dir, pip, follow)
    if follow and final != "SUCCEEDED":
        raise Exit(f"labstack: the job ended {final}", code=1)


def _jobs(stack, as_json=False):
    from rich.table import Table

    from labstack.terminal import print_json

    from labstack.tasks import actions as commands

    from labstack import clusters as ray_cluster

    with ray_cluster.ray_session(stack) as session:
        found = session.client.list_jobs()
    if as_json:
        print_json([{"job": job.submission_id or job.job_id, "status": str(job.status), "entrypoint": job.entrypoint,
                     "start_time": job.start_time, "end_time": job.end_time} for job in found])
        return
    table = Table("job", "status", "entrypoint")
    for job in sorted(found, key=lambda job: job.start_time or 0):
        table.add_row(job.submission_id or job.job_id or "", str(job.status), job.entrypoint)
    commands._out().print(table)


@task(help={"stack": STACK, "json": "the jobs as JSON, for scripts"})
def jobs(c, stack, json=False):
    """The cluster's Ray jobs and their status."""
    _call(_jobs, stack, as_json=json)


def _logs(stack, job, follow):
    import sys

    from labstack import clusters as ray_cluster

    with ray_cluster.ray_session(stack) as session:
        if follow:
            ray_cluster.follow_logs(session.client, job, sys.stdout.write)
        else:
            sys.stdout.write(session.client.get_job_logs(job))


@task(help={"stack": STACK, "job": "the job id ray.submit printed", "follow": "stream until the job ends"})
def logs(c, stack, job, follow=False):
    """A Ray job's logs."""
    _call(_logs, stack, job, follow)


def _stop(stack, job):
    from labstack import clusters as ray_cluster

    with ray_cluster.ray_session(stack) as session:
        return session.client.stop_job(job)


@task(help={"stack": STACK, "job": "the job id ray.submit printed"})
def stop(c, stack, job):
    """Stop a running Ray job."""
    stopped = _call(_stop, stack, job)
    print(f"stopped {job}" if stopped else f"{job} was not running")


@task(help={"stack": STACK})
def token(c, stack):
    """Print the cluster's Ray token (a secret: whoever also has the dashboard password controls the cluster), for
    the token prompt of Ray's dashboard at ray.<host>."""
    from labstack import clusters as ray_cluster

    print(_call(ray_cluster.cluster_token, stack))

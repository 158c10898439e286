"""Many calls of one Python function at once (covalent's many electrons): `labstack.map(fn, items, ...)` returns
[fn(item) for item in items] computed remotely, and `labstack.map_async(...)` does the same without blocking.

Where the calls run (exactly one of):

- `stacks=["rome-pilot", ...]`: existing stacks' servers. Each call is a function job (labstack.functions on
  labstack.jobs.server: the same runner, image and result files as `run_function`). At most `per_server` calls run
  on a server at once (default: its CPU count); the running calls of a server are polled together, one ssh command
  per poll, and each result is fetched as its job ends.
- `cluster="ray-lab"`: a Ray cluster stack. One Ray job, submitted through Ray's own job client over the pinned SSH
  tunnel (labstack.clusters.ray_session), whose driver (hooks/templates/ray_map_driver.py) runs every call as a Ray
  task and prints each result to the job's log as its task ends. One job rather than one per call: a Ray job
  starts its own driver process on the head and uploads its working_dir, which a job per call would pay once per
  call (on a small head, a second or more each), while Ray schedules the tasks of one job over all the nodes at once.
- `machine=Machine(instance_type=...)`: throwaway instances (labstack.jobs.throwaway), at most `max_instances` at a
  time. Each instance runs calls one after another from the shared list until none are left; each throwaway
  stack is destroyed in a `finally`, whatever happened.

Results come back in input order. The first call that raises stops the map: calls not yet started are dropped, the
running ones cancelled (their jobs cancelled on the server, the Ray job stopped), every throwaway stack destroyed,
and then that exception is raised here with the remote traceback as its cause (labstack.functions.RemoteTraceback).
Ctrl-C during `map`, and `MapFuture.cancel()`, stop a map the same way before they return.
"""
from __future__ import annotations

import base64
import json
import pickle
import secrets
import shutil
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import CancelledError, Future
from pathlib import Path
from typing import Any, Callable, Generic, Iterable, Optional, Sequence, TypeVar, Union

Item = TypeVar("Item")
Result = TypeVar("Result")

POLL_MIN = 0.5  # seconds between status polls right after a call started or ended
POLL_MAX = 5.0  # ... growing to this while nothing changes (hour-long calls are not polled twice a second)
STOP_CHECK = 0.2  # how often a waiting call looks whether the map has been stopped
RAY_DRIVER = "ray_map_driver.py"  # in hooks/templates/, beside the function runner


class MapStopped(Exception):
    """Inside a map: the map was stopped (a call failed or the map was cancelled) while this call ran."""


class MapFuture(Future, Generic[Result]):
    """The whole map, `concurrent.futures.Future`-compatible: `result(timeout)` is the list of results in input
    order, or raises the first failure; `done()`; `cancel()` stops the map. `calls` holds one Future per item, done
    as that call ends (for `concurrent.futures.as_completed`); cancelling one of those before it started skips it."""

    def __init__(self, run: "_Run", thread: threading.Thread):
        super().__init__()
        self.calls: list[Future] = run.calls
        self._run = run
        self._thread = thread

    def cancel(self) -> bool:
        """Stop the map: calls not started are dropped, running ones cancelled where they run, every throwaway
        stack destroyed; returns once all that is done (True), or False when the map had already ended."""
        if not self._run.stop(cancel=True):
            return False
        self._thread.join()
        return super().cancel()


class _Run:
    """The shared state of one map: the calls not yet started, each call's Future, the first failure."""

    def __init__(self, fn: Callable, items: list, announce: Callable[[str], None]):
        self.fn = fn
        self.items = items
        self.announce = announce
        self.calls: list[Future] = [Future() for _ in items]
        self.stopping = threading.Event()
        self.failure: Optional[BaseException] = None
        self.cancelled = False
        self.finished = False
        self._waiting = deque(range(len(items)))
        self._lock = threading.Lock()

    def has_work(self) -> bool:
        with self._lock:
            return bool(self._waiting) and not self.stopping.is_set()

    def next_call(self) -> Optional[int]:
        """The index of the next call to start (marked running), or None when there is none or the map stops."""
        with self._lock:
            while self._waiting and not self.stopping.is_set():
                index = self._waiting.popleft()
                if self.calls[index].set_running_or_notify_cancel():  # False: cancelled by the caller
                    return index
            return None

    def returned(self, index: int, value: Any) -> None:
        self.calls[index].set_result(value)

    def raised(self, index: Optional[int], error: BaseException) -> None:
        """A call raised (index), or something the calls need failed (None: an instance, a server, the cluster)."""
        with self._lock:
            if self.failure is None and not self.cancelled:
                self.failure = error
            self.stopping.set()
        if index is not None:
            self.calls[index].set_exception(error)

    def stop(self, cancel: bool) -> bool:
        """Ask every call to stop; False when the map had already ended."""
        with self._lock:
            if self.finished:
                return False
            self.cancelled = self.cancelled or cancel
            self.stopping.set()
            return True

    def end(self, future: MapFuture) -> None:
        """After every worker has returned: calls never started are cancelled, the map's own result is set."""
        for call in self.calls:
            if not call.done():
                if not call.cancel():  # it was running when the map stopped, and has been cancelled where it ran
                    call.set_exception(CancelledError("the map stopped before this call ended"))
        with self._lock:
            self.finished = True
            if self.cancelled:
                return  # MapFuture.cancel marks the map cancelled once this thread has ended
        if self.failure is not None:
            future.set_exception(self.failure)
            return
        try:
            future.set_result([call.result() for call in self.calls])
        except CancelledError as error:  # a call cancelled on its own Future
            future.set_exception(error)


# --- the public calls ----------------------------------------------------------------------------------------------

def map(fn: Callable[[Item], Result], items: Iterable[Item], *, stacks: Union[None, str, Sequence[str]] = None,
        cluster: Optional[str] = None, machine: Any = None, max_instances: int = 4,
        per_server: Optional[int] = None, pip: Sequence[str] = (), image: Optional[str] = None,
        announce: Callable[[str], None] = print) -> list[Result]:
    """[fn(item) for item in items], each call run remotely: on existing stacks' servers (`stacks=[...]`), as Ray
    tasks on a cluster stack (`cluster=...`) or on throwaway instances (`machine=Machine(...)`, at most
    `max_instances` at a time). `pip` requirements are installed before the calls run; `image` is the container
    image on servers and throwaways (default python:<this Python's minor version>-slim). Returns the results in
    input order, or raises the first call's exception (remote traceback as its cause) after every other call has
    been stopped and every throwaway stack destroyed. Ctrl-C stops the map the same way."""
    future = map_async(fn, items, stacks=stacks, cluster=cluster, machine=machine, max_instances=max_instances,
                       per_server=per_server, pip=pip, image=image, announce=announce)
    try:
        return future.result()
    except KeyboardInterrupt:
        announce("interrupted: stopping every call of the map")
        future.cancel()
        raise


def map_async(fn: Callable[[Item], Result], items: Iterable[Item], *,
              stacks: Union[None, str, Sequence[str]] = None, cluster: Optional[str] = None, machine: Any = None,
              max_instances: int = 4, per_server: Optional[int] = None, pip: Sequence[str] = (),
              image: Optional[str] = None, announce: Callable[[str], None] = print) -> MapFuture[list[Result]]:
    """`map` without blocking: returns a MapFuture at once (`result()`, `done()`, `cancel()`, and one Future per
    item in `.calls`). Bad arguments raise here, before anything is created."""
    items = list(items)
    place = _check(fn, stacks, cluster, machine, max_instances, per_server, pip, image)
    run = _Run(fn, items, announce)

    def work() -> None:
        try:
            if items:
                place(run)
        except BaseException as error:  # noqa: BLE001 - whatever stopped the map is the map's failure
            run.raised(None, error)
        finally:
            run.end(future)

    thread = threading.Thread(target=work, name="labstack-map")
    future: MapFuture = MapFuture(run, thread)
    thread.start()
    return future


def _check(fn: Callable, stacks, cluster, machine, max_instances, per_server, pip, image) -> Callable[[_Run], None]:
    """The arguments, checked before anything is created: where the calls go, as a function of the run."""
    if not callable(fn):
        raise TypeError(f"labstack.map: fn={fn!r} is not callable; pass the function itself, e.g. map(train, seeds, ...)")
    given = [name for name, value in (("stacks", stacks), ("cluster", cluster), ("machine", machine))
             if value is not None]
    if len(given) != 1:
        raise ValueError(f"labstack.map: give exactly one of stacks=[...], cluster='<stack>' or "
                         f"machine=Machine(...) (got {', '.join(given) or 'none'})")
    if isinstance(pip, str) or not all(isinstance(requirement, str) for requirement in pip):
        raise TypeError(f"labstack.map: pip={pip!r} must be a list of requirements, e.g. pip=['numpy==2.1.3']")
    if stacks is not None:
        one = isinstance(stacks, str) or hasattr(stacks, "name")  # a name, or a labstack.Stack
        names = [getattr(s, "name", s) for s in ([stacks] if one else stacks)]
        if not names or not all(isinstance(name, str) and name for name in names):
            raise ValueError(f"labstack.map: stacks={stacks!r} must name one or more stacks, e.g. "
                             f"stacks=['rome-pilot']")
        if per_server is not None and (not isinstance(per_server, int) or per_server < 1):
            raise ValueError(f"labstack.map: per_server={per_server!r} must be a whole number, at least 1")
        return lambda run: _on_servers(run, names, per_server, pip, image)
    if per_server is not None:
        raise ValueError(f"labstack.map: per_server={per_server!r} is for stacks=[...]; drop it")
    if cluster is not None:
        cluster = getattr(cluster, "name", cluster)  # a labstack.Stack stands for its name
        if not isinstance(cluster, str) or not cluster:
            raise ValueError(f"labstack.map: cluster={cluster!r} must name a Ray cluster stack, e.g. cluster='ray-lab'")
        if image is not None:
            raise ValueError(f"labstack.map: image={image!r} cannot be used with cluster=: the cluster's tasks run in "
                             "its Ray image; drop image=")
        return lambda run: _on_cluster(run, cluster, pip)
    from labstack.jobs.throwaway import Machine

    if not isinstance(machine, Machine):
        raise TypeError(f"labstack.map: machine={machine!r} must be a Machine, e.g. "
                        "machine=Machine(instance_type='c7i.large', like='rome-pilot')")
    if not isinstance(max_instances, int) or isinstance(max_instances, bool) or max_instances < 1:
        raise ValueError(f"labstack.map: max_instances={max_instances!r} must be a whole number, at least 1 (how "
                         "many throwaway instances may exist at a time)")
    return lambda run: _on_throwaways(run, machine, max_instances, pip, image)


# --- function jobs on servers (existing stacks and throwaway instances) ---------------------------------------------

class _Poller:
    """The status of every running call on one server, polled with one ssh command (job-status.sh ID...)."""

    def __init__(self, target):
        self.target = target
        self._waiting: dict[str, threading.Event] = {}
        self._codes: dict[str, int] = {}
        self._error: Optional[BaseException] = None
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"labstack-map-poll-{target.host}", daemon=True)
        self._thread.start()

    def wait(self, job_id: str, stopping: threading.Event) -> Optional[int]:
        """The job's exit code once it has ended, or None as soon as the map stops."""
        ended = threading.Event()
        with self._lock:
            self._waiting[job_id] = ended
        self._changed.set()
        try:
            while not ended.wait(STOP_CHECK):
                if stopping.is_set():
                    return None
            if self._error is not None:
                raise self._error
            return self._codes.pop(job_id)
        finally:
            with self._lock:
                self._waiting.pop(job_id, None)

    def close(self) -> None:
        self._closed = True
        self._changed.set()

    def _loop(self) -> None:
        from labstack.jobs import server as jobs
        from labstack.ssh.target import RemoteError

        interval, failures = POLL_MIN, 0
        while not self._closed:
            with self._lock:
                ids = list(self._waiting)
            if not ids:
                self._changed.wait()
                self._changed.clear()
                interval = POLL_MIN
                continue
            try:
                records = jobs.statuses(self.target, *ids)
                failures = 0
            except jobs.JobError as error:
                self._fail(error)
                return
            except RemoteError as error:  # a lost connection is retried, as jobs.wait does
                failures += 1
                if failures > 30:
                    self._fail(error)
                    return
                time.sleep(min(2.0 * failures, 10.0))
                continue
            ended = False
            for record in records:
                if record["state"] not in jobs.ACTIVE:
                    with self._lock:
                        self._codes[record["id"]] = jobs.exit_code_of(record)
                        event = self._waiting.get(record["id"])
                    if event is not None:
                        event.set()
                        ended = True
            interval = POLL_MIN if ended else min(interval * 1.5, POLL_MAX)
            if self._changed.wait(interval):  # a new call: poll at once, and often again
                self._changed.clear()
                interval = POLL_MIN

    def _fail(self, error: BaseException) -> None:
        self._error = error
        with self._lock:
            events = list(self._waiting.values())
        for event in events:
            event.set()


def _run_calls(run: _Run, target, poller: _Poller, pip: Sequence[str], image: Optional[str]) -> None:
    """One slot of a server: calls one after another until none are left or the map stops."""
    while (index := run.next_call()) is not None:
        try:
            value = _call_on_server(run, index, target, poller, pip, image)
        except MapStopped:
            return
        except BaseException as error:  # noqa: BLE001 - the call's own exception, or why it could not run
            run.raised(index, error)
            return
        run.returned(index, value)


def _call_on_server(run: _Run, index: int, target, poller: _Poller, pip: Sequence[str],
                    image: Optional[str]) -> Any:
    from labstack import functions
    from labstack.jobs import server as jobs

    image = image or functions.default_image()
    with tempfile.TemporaryDirectory(prefix="labstack-map-") as folder:
        bundle = functions._bundle(Path(folder), run.fn, (run.items[index],), {}, pip)
        job_id = functions._submit(target, bundle, image, run.fn, run.announce)
        code = poller.wait(job_id, run.stopping)
        if code is None:  # the map stopped while this call ran: nothing of it may keep running
            jobs.cancel(target, job_id)
            raise MapStopped()
        return functions._collect(target, job_id, code, image, run.fn, Path(folder))


def _server_cpus(target) -> int:
    """How many calls a server runs at once by default: its CPU count."""
    text = target.text("nproc", what="counting the server's CPUs").strip()
    return int(text) if text.isdigit() and int(text) > 0 else 1


def _on_servers(run: _Run, stacks: list[str], per_server: Optional[int], pip: Sequence[str],
                image: Optional[str]) -> None:
    from labstack.ssh.target import target_for_stack

    targets = [target_for_stack(stack) for stack in stacks]  # a stack that is not up fails before any call starts
    _on_targets(run, targets, per_server, pip, image)


def _on_targets(run: _Run, targets: list, per_server: Optional[int], pip: Sequence[str],
                image: Optional[str]) -> None:
    """The calls over these servers' slots; returns when every slot has returned."""
    pollers = [_Poller(target) for target in targets]
    try:
        sizes = [per_server or _server_cpus(target) for target in targets]
        # The servers take turns in the start order, so that with fewer calls than slots every server gets some.
        slots = [(target, poller) for turn in range(max(sizes))
                 for target, poller, size in zip(targets, pollers, sizes) if turn < size]
        threads = [threading.Thread(target=_run_calls, args=(run, target, poller, pip, image),
                                    name=f"labstack-map-{target.host}") for target, poller in slots]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for poller in pollers:
            poller.close()


def _on_throwaways(run: _Run, machine, max_instances: int, pip: Sequence[str], image: Optional[str]) -> None:
    from labstack.functions import _name, default_image
    from labstack.jobs.throwaway import throwaway
    from labstack.stacks.pulumi_cli import PulumiCli

    PulumiCli().environment(run.announce)  # once, before the instances: the passphrase file is made by one thread

    def instance() -> None:
        if not run.has_work():
            return  # the other instances took every call (or the map stopped): none is made for nothing
        try:
            with throwaway(machine, announce=run.announce) as place:
                place.record.update(function=_name(run.fn), image=image or default_image(), map=True)
                poller = _Poller(place.target)
                try:
                    _run_calls(run, place.target, poller, pip, image)
                finally:
                    poller.close()
        except BaseException as error:  # noqa: BLE001 - bringing it up or destroying it failed: the map fails
            run.raised(None, error)

    threads = [threading.Thread(target=instance, name=f"labstack-map-instance-{n}")
               for n in range(min(max_instances, len(run.items)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --- Ray tasks on a cluster stack ----------------------------------------------------------------------------------

def ray_job_folder(folder: Path, fn: Callable, items: list, pip: Sequence[str], cpus: float = 1) -> str:
    """The Ray job's working_dir in `folder`: the calls, the driver, the runner and this machine's cloudpickle.
    Returns the marker that starts each result line of the job's log."""
    from labstack import functions

    marker = f"labstack-map-result-{secrets.token_hex(8)}"
    payloads = [functions._payload(fn, (item,), {}) for item in items]
    (folder / "calls.pkl").write_bytes(pickle.dumps(payloads))
    (folder / "map.json").write_text(json.dumps({"python": functions.LOCAL_PYTHON, "marker": marker,
                                                 "cpus": cpus}))
    shutil.copy(functions.RUNNER, folder / functions.RUNNER.name)
    shutil.copy(functions.TEMPLATES / RAY_DRIVER, folder / RAY_DRIVER)
    functions._copy_cloudpickle(folder)
    return marker


def parse_results(logs: str, marker: str) -> list[dict]:
    """The result records of the driver's log, in the order the calls ended."""
    prefix = marker + " "
    return [json.loads(line[len(prefix):]) for line in logs.splitlines() if line.startswith(prefix)]


def _on_cluster(run: _Run, cluster: str, pip: Sequence[str]) -> None:
    from ray.job_submission import JobStatus

    from labstack import clusters

    terminal = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED)
    with tempfile.TemporaryDirectory(prefix="labstack-map-ray-") as folder:
        marker = ray_job_folder(Path(folder), run.fn, run.items, pip)
        with clusters.ray_session(cluster) as session:
            client = session.client
            if run.stopping.is_set():
                return
            job = client.submit_job(entrypoint=f"python3 {RAY_DRIVER}",
                                    runtime_env=clusters.runtime_env(folder, list(pip)))
            run.announce(f"{len(run.items)} calls of {_fn_name(run.fn)} submitted as Ray job {job} on {cluster}")
            started: set[int] = set()
            while (index := run.next_call()) is not None:  # every call runs in the job from now on
                started.add(index)
            seen: set[int] = set()
            raised_here = False
            last_logs = 0.0
            while True:
                status = client.get_job_status(job)
                if status in terminal:
                    break
                # Stopped from here (cancel, Ctrl-C): the driver and its tasks end with the job. A call of this
                # job that raised ends it by itself: the driver cancels the other tasks and exits.
                if run.stopping.is_set() and not raised_here:
                    client.stop_job(job)
                    while client.get_job_status(job) not in terminal:
                        time.sleep(POLL_MIN)
                    return
                if time.monotonic() - last_logs >= 1:  # results as they come, for map_async's calls
                    raised_here = _ray_results(run, client.get_job_logs(job), marker, cluster, seen, started) \
                        or raised_here
                    last_logs = time.monotonic()
                time.sleep(POLL_MIN / 2)
            _ray_results(run, client.get_job_logs(job), marker, cluster, seen, started)
            if run.failure is None and not run.stopping.is_set() and len(seen) < len(started):
                info = client.get_job_info(job)
                raise _function_error(f"the Ray job {job} on {cluster} ended {status} with {len(started) - len(seen)} "
                                      f"call(s) unanswered: {info.message or 'no message'}; its log: `invoke ray.logs "
                                      f"-s {cluster} {job}`")


def _ray_results(run: _Run, logs: str, marker: str, cluster: str, seen: set[int], started: set[int]) -> bool:
    """The results of the log not seen before, handed to their calls; whether one of them raised."""
    from labstack import functions

    raised = False
    for record in parse_results(logs, marker):
        index = record.get("index")
        if record.get("status") == "refused":
            raise _function_error(f"refused: {record.get('message')}. The Ray image of {cluster} must run Python "
                                  f"{functions.LOCAL_PYTHON}, as this machine does")
        if index in seen or index not in started:
            continue
        seen.add(index)
        raised = raised or record.get("status") != "returned"
        if record.get("status") == "lost":
            run.raised(index, _function_error(f"call {index} ({_fn_name(run.fn)}) on {cluster}: its Ray task died "
                                              f"({record.get('message')})"))
            continue
        pickled = base64.b64decode(record["pickled"]) if record.get("pickled") else None
        try:
            value = functions._outcome(record, pickled, f"the Ray image of {cluster}", f"call {index}",
                                       "Ray job")
        except Exception as error:  # noqa: BLE001 - the call's own exception
            run.raised(index, error)
        else:
            run.returned(index, value)
    return raised


def _function_error(message: str) -> Exception:
    from labstack.functions import FunctionError

    return FunctionError(message)


def _fn_name(fn: Callable) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)

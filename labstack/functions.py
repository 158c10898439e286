"""Python functions as jobs (covalent's EC2 executor, on labstack's jobs): `run_function(fn, *args, stack=...)`.

The function, its arguments and keyword arguments are cloudpickled on this machine and sent as one job with a
runner (hooks/templates/function_runner.py), the job script (hooks/templates/function-job.sh) and this machine's
own cloudpickle package (pure Python; the server needs no PyPI for it and unpickles with exactly the version that
pickled). In the job's container the runner first compares the image's Python minor version with this machine's
(pickled code objects only load on the same minor version) and refuses to run otherwise, installs `pip`
requirements, runs the function and writes out/result.json (+ out/result.pkl with the value or the exception).
Here the value is returned, or the remote exception raised again with the remote traceback as its cause.

The function's own module travels by value (it need not exist on the server); other modules of yours must be
importable there (give them as `pip` requirements, or build them into `image`).
"""
from __future__ import annotations

import functools
import json
import re
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from components.layout import HOOKS_DIR
from labstack.ssh.target import SshTarget, target_for_stack

TEMPLATES = HOOKS_DIR / "templates"
RUNNER = TEMPLATES / "function_runner.py"
JOB_SCRIPT = TEMPLATES / "function-job.sh"
LOCAL_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"  # what the image's Python must match


class FunctionError(RuntimeError):
    """The function could not be run remotely (refused image, failed pip install, no result); not its own error."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised on the server, attached as the cause of the one raised here."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n\nthe function raised on the server:\n{self.text}"


def default_image() -> str:
    return f"python:{LOCAL_PYTHON}-slim"


def run_function(fn: Callable, *args: Any, stack: Optional[str] = None, pip: Sequence[str] = (),
                 image: Optional[str] = None, machine=None, target: Optional[SshTarget] = None,
                 announce=print, **kwargs: Any) -> Any:
    """Run fn(*args, **kwargs) on a stack's server (stack=...), or on a throwaway instance (machine=Machine(...),
    see labstack/jobs/throwaway.py), in a container of `image` (default python:<this Python's minor version>-slim) after
    `pip install` of `pip`; return its value or raise its exception (remote traceback as the cause)."""
    with tempfile.TemporaryDirectory(prefix="labstack-function-") as folder:
        bundle = _bundle(Path(folder), fn, args, kwargs, pip)
        if target is not None or stack is not None:
            return _run(target or target_for_stack(stack), bundle, image or default_image(), fn, Path(folder),
                        announce)
        if machine is None:
            raise FunctionError("run_function needs stack='<stack>' (its server runs the function) or "
                                "machine=Machine(instance_type=...) for a throwaway instance")
        from labstack.jobs.throwaway import throwaway

        with throwaway(machine, announce=announce) as place:
            place.record.update(function=_name(fn), image=image or default_image())
            return _run(place.target, bundle, image or default_image(), fn, Path(folder), announce)


def remote(stack: Optional[str] = None, *, pip: Sequence[str] = (), image: Optional[str] = None, machine=None):
    """Decorator: calling the function runs it remotely, as run_function(fn, ..., stack=, pip=, image=, machine=)."""
    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            return run_function(fn, *args, stack=stack, pip=pip, image=image, machine=machine, **kwargs)
        call.local = fn  # the undecorated function, to run or test here
        return call
    return wrap


def _name(fn: Callable) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def _payload(fn: Callable, args: tuple, kwargs: dict) -> bytes:
    """(fn, args, kwargs) cloudpickled, fn's own module by value."""
    import cloudpickle

    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    by_value = module is not None and _is_own_module(module)
    if by_value:  # the server does not have this module: send its functions' code, not a reference
        cloudpickle.register_pickle_by_value(module)
    try:
        return cloudpickle.dumps((fn, args, kwargs))
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)


def _copy_cloudpickle(folder: Path) -> Path:
    """This machine's cloudpickle package into folder/: the other side unpickles with the version that pickled."""
    import cloudpickle

    package = Path(cloudpickle.__file__).parent
    shutil.copytree(package, folder / "cloudpickle", ignore=shutil.ignore_patterns("__pycache__"))
    return folder / "cloudpickle"


def _bundle(folder: Path, fn: Callable, args: tuple, kwargs: dict, pip: Sequence[str]) -> list[Path]:
    (folder / "function.pkl").write_bytes(_payload(fn, args, kwargs))
    (folder / "function.json").write_text(json.dumps({"python": LOCAL_PYTHON, "pip": list(pip),
                                                      "name": _name(fn)}))
    shutil.copy(RUNNER, folder / RUNNER.name)
    return [folder / "function.pkl", folder / "function.json", folder / RUNNER.name, _copy_cloudpickle(folder)]


def _is_own_module(module) -> bool:
    """The caller's code (a script, a notebook, a project module), not the standard library or an installed
    package, which the image brings (or `pip` installs)."""
    if module.__name__ == "__main__":
        return False  # cloudpickle sends __main__'s functions by value already
    path = getattr(module, "__file__", None)
    if not path:
        return False
    installed = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    return not any(Path(path).resolve().is_relative_to(Path(root).resolve()) for root in installed)


def _run(target: SshTarget, bundle: list[Path], image: str, fn: Callable, folder: Path, announce) -> Any:
    from labstack.jobs import server as jobs

    job_id = _submit(target, bundle, image, fn, announce)
    return _collect(target, job_id, jobs.wait(target, job_id), image, fn, folder)


def _submit(target: SshTarget, bundle: list[Path], image: str, fn: Callable, announce) -> str:
    """Start the function's job; its id."""
    from labstack.jobs import server as jobs

    job_id = jobs.submit(target, JOB_SCRIPT, bundle, image=image,
                         name=re.sub(r"[^A-Za-z0-9._-]", "-", _name(fn))[:64])  # job names: letters, digits, ._-
    announce(f"function {_name(fn)} submitted as job {job_id} on {target.host} ({image})")
    return job_id


def _collect(target: SshTarget, job_id: str, code: int, image: str, fn: Callable, folder: Path) -> Any:
    """The ended job's value, or its exception raised with the remote traceback as the cause."""
    from labstack.jobs import server as jobs

    out = folder / "result"
    try:
        fetched = jobs.fetch(target, job_id, path="out/", dest=out)
    except Exception as error:
        raise FunctionError(f"job {job_id} ({_name(fn)}) ended with exit code {code} and left no result "
                            f"({error}); its log: `invoke job.logs -s {target.stack} --job {job_id}`") from None
    return _result(Path(fetched), image, job_id, code)


def _result(out: Path, image: str, job_id: str, code: int) -> Any:
    summary_file = out / "result.json"
    if not summary_file.is_file():
        raise FunctionError(f"job {job_id} ended with exit code {code} and wrote no out/result.json")
    payload = out / "result.pkl"
    return _outcome(json.loads(summary_file.read_text()), payload.read_bytes() if payload.is_file() else None,
                    image, f"job {job_id}", f"exit code {code}")


def _outcome(summary: dict, payload: Optional[bytes], image: str, what: str, ended: str) -> Any:
    """The runner's summary (result.json) and pickled value or exception -> the value, or the exception raised with
    the remote traceback as its cause."""
    import cloudpickle

    status = summary.get("status")
    if status == "refused":
        raise FunctionError(f"refused: {summary.get('message')} (image {image}; this machine runs Python "
                            f"{sys.version.split()[0]}). Pass image= an image with Python {LOCAL_PYTHON}, e.g. "
                            f"{default_image()}")
    if status == "pip-failed":
        raise FunctionError(f"pip install failed in {image}: {summary.get('message')}")
    if status not in ("returned", "raised"):
        raise FunctionError(f"{what}: unexpected result {summary!r} ({ended})")
    obj = cloudpickle.loads(payload) if payload is not None else None
    if status == "returned":
        return obj
    cause = RemoteTraceback(summary.get("traceback", ""))
    if not isinstance(obj, BaseException):  # the exception itself could not be pickled: its type and text
        obj = FunctionError(f"{summary.get('type')}: {summary.get('message')}")
    raise obj from cause

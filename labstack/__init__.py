"""labstack: one stack per experiment on AWS EC2, from the command line (invoke tasks) or from Python.

    import labstack
    stack = labstack.Stack("rome-pilot")            # stacks/Pulumi.rome-pilot.yaml
    job = stack.submit("python train.py", files=["train.py"])
    job.wait(); job.fetch("out/")

The package is the operator side. It works on a labstack project folder (Pulumi.yaml, the Pulumi program, stacks/),
found as labstack.project explains; `use_project(path)` names it explicitly. The names below load on first use, so
`import labstack` works before a project is chosen.
"""
from importlib import import_module

from labstack.project import ProjectNotFound, install_import_hook, locate, project_dir, use_project

__version__ = "0.9.0"

# public name -> the module that defines it
_LAZY = {
    "Stack": "labstack.stack",
    "RunResult": "labstack.stack",
    "Job": "labstack.jobs.job",
    "Machine": "labstack.jobs.throwaway",
    "remote": "labstack.functions",
    "run_function": "labstack.functions",
    "map": "labstack.parallel",
    "map_async": "labstack.parallel",
    "RemoteTraceback": "labstack.functions",
    "FunctionError": "labstack.functions",
    "JobError": "labstack.jobs.server",
    "RemoteError": "labstack.ssh.target",
    "StackFileError": "labstack.stacks.stackfile",
    "ConfigError": "components.config",
    "PulumiError": "labstack.stacks.pulumi_cli",
}

__all__ = ["ProjectNotFound", "__version__", "project_dir", "use_project", *_LAZY]

install_import_hook()
locate()


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'labstack' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

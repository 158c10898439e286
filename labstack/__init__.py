"""labstack: one stack per experiment on AWS EC2, from the command line (invoke tasks) or from Python.

The package is the operator side. It works on a labstack project folder (Pulumi.yaml, the Pulumi program, stacks/),
found as labstack.project explains; `use_project(path)` names it explicitly.
"""
from labstack.project import ProjectNotFound, install_import_hook, locate, project_dir, use_project

__version__ = "0.9.0"

install_import_hook()
locate()

__all__ = ["ProjectNotFound", "__version__", "project_dir", "use_project"]

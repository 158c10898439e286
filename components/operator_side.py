"""The one way the Pulumi program reaches the operator side: local commands that Pulumi runs on the operator's
machine when it deletes something, each running one labstack module with the checkout's virtualenv.

The program never imports labstack (tests/unit/test_layering.py holds both: these modules exist in labstack/, and no
other component names one)."""
from __future__ import annotations

from dataclasses import dataclass

DESTROY_EXPORT = "labstack.data.destroy_export"  # exports an app's database and data before the app is removed
VOLUME_SNAPSHOT = "labstack.data.volume_snapshot"  # snapshots the data volume before it is deleted
ENTRY_POINTS = (DESTROY_EXPORT, VOLUME_SNAPSHOT)


@dataclass(frozen=True)
class OperatorSide:
    project_dir: str  # the checkout whose venv/ runs the modules (a local command's `dir`)

    def command(self, module: str) -> str:
        if module not in ENTRY_POINTS:
            raise ValueError(f"{module} is not an operator entry point; add it to ENTRY_POINTS in {__name__}")
        return f"venv/bin/python -m {module}"

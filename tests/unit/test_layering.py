"""The project's import structure: no cycles, and no module importing one from a higher layer.

Layers, lowest first: the server layout contract; the typed stack config; the pure renderers; the Pulumi components
(AWS resources, remote deploy steps, node handles); the program. The operator side (labstack/, tasks.py) stands beside the
components: it may use the layout, the config and the renderers, never the Pulumi components or the program.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
LAYERS = {
    "components.layout": 0,
    "components.config": 1,
    "components.render": 2,
    "components.operator_side": 2,
    "components.nodes": 3,
    "components.aws": 3,
    "components.remote": 3,
    "components.outputs": 4,
    "components.cluster": 4,
    "__main__": 5,
}
OPS_MAY_IMPORT = ("components.layout", "components.config", "components.render")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_modules() -> dict[str, Path]:
    files = [PROJECT / "__main__.py", PROJECT / "tasks.py", *(PROJECT / "components").rglob("*.py"),
             *(PROJECT / "labstack").rglob("*.py")]
    return {_module_name(path): path for path in files}


def _imports(path: Path, known: set[str]) -> set[str]:
    """Project modules a file imports, at any depth of the file (lazy imports inside functions count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def _layer(module: str) -> int | None:
    for prefix, layer in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return None


def test_every_component_module_has_a_layer():
    unplaced = [m for m in _project_modules() if m.startswith("components.") and _layer(m) is None]
    assert unplaced == [], f"add these modules to a layer in {__file__}: {unplaced}"


def test_no_module_imports_from_a_higher_layer():
    modules = _project_modules()
    wrong = []
    for module, path in modules.items():
        own = _layer(module)
        for imported in _imports(path, set(modules)):
            other = _layer(imported)
            if module.startswith("labstack") or module == "tasks":
                if imported.startswith("components") and not imported.startswith(OPS_MAY_IMPORT):
                    wrong.append(f"{module} -> {imported} (the operator side never imports Pulumi components)")
            elif own is not None and other is not None and other > own:
                wrong.append(f"{module} (layer {own}) -> {imported} (layer {other})")
            elif own is not None and (imported.startswith("labstack") or imported == "tasks"):
                wrong.append(f"{module} -> {imported} (components never import the operator side)")
    assert wrong == []


def test_no_import_cycles():
    modules = _project_modules()
    graph = {module: _imports(path, set(modules)) - {module} for module, path in modules.items()}
    # A package's __init__ re-exporting its own submodules is not a cycle of ideas: drop package -> child edges.
    graph = {m: {i for i in deps if not i.startswith(m + ".")} for m, deps in graph.items()}
    cycles = []
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == 1:
                cycles.append(" -> ".join(trail[trail.index(imported):] + [imported]))
            elif imported not in state:
                visit(imported, trail + [imported])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_checks_see_real_imports():
    """Guards the checks above against passing vacuously (e.g. a path change that finds no modules)."""
    modules = _project_modules()
    assert "components.render.app_files" in modules and "labstack.tasks.actions" in modules
    assert "components.layout" in _imports(modules["components.render.app_files"], set(modules))


def test_components_reach_the_operator_side_only_through_its_entry_points():
    """components/operator_side.py names the labstack modules the program's local commands run; each exists, and no
    other component's string names a labstack module (a `python -m labstack…` the import checks above cannot see)."""
    from components.operator_side import ENTRY_POINTS

    modules = _project_modules()
    assert ENTRY_POINTS and [m for m in ENTRY_POINTS if m not in modules] == []
    dotted = re.compile(r"(?<![\w.])labstack(?:\.\w+)+")  # e.g. labstack.data.export (not stacks/labstack.schema.json)
    found = []
    for module, path in modules.items():
        if not module.startswith("components.") or module == "components.operator_side":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found += [f"{module}:{node.lineno}: {name}" for name in dotted.findall(node.value)
                          if any(name == m or name.startswith(m + ".") for m in modules if m.startswith("labstack."))]
    assert found == []
    # The check sees what it looks for: the entry points' own strings would be reported anywhere else.
    assert all(dotted.fullmatch(m) for m in ENTRY_POINTS)

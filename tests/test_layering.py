"""The package's layers, read from its source with ``ast``: no import circles, and the core
never reaches up into the notebook layer.

Every import counts -- at module level, inside functions, and under ``TYPE_CHECKING`` --
because each is a place where one module leans on another.
"""

from __future__ import annotations

import ast
from pathlib import Path

import runway_widgets

PACKAGE = Path(runway_widgets.__file__).parent
NAME = "runway_widgets"

# The core: what watches, polls, journals and saves.  It works with no IPython installed.
CORE = {"snapshot", "policy", "budget", "client", "scheduler", "watch", "endings", "updates", "errors", "config",
        "expiry", "journal", "recorder", "records", "partials", "download", "responses", "workers", "filelock",
        "triage", "lone", "cadence", "cadence_memory", "cadence_store", "gateways"}
# The notebook layer and the libraries only it may load.
NOTEBOOK_LAYER = ("runway_widgets.views", "runway_widgets.notebook", "runway_widgets.magic",
                  "IPython", "ipywidgets")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module ``name`` imports (absolute names; a package's submodule when one is named)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # ``from . import api`` imports the module api
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle among the package's own modules, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in graph or target == node:
                continue
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_graph_reads_the_real_imports() -> None:
    # The check below means something only if the parser sees what the modules import.
    graph = _graph()
    assert "runway_widgets.notebook" in graph["runway_widgets.magic"]
    assert "runway_widgets.scheduler" in graph["runway_widgets.api"]
    assert "runway_widgets.views.widget" in graph["runway_widgets.notebook"]
    assert "runway_widgets.simulator.handler" in graph["runway_widgets.simulator.server"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_circles() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_core_never_imports_the_notebook_layer() -> None:
    graph = _graph()
    assert CORE <= {name.rpartition(".")[2] for name in graph}, "a core module was renamed: update CORE"
    bad = sorted(f"{module} imports {target}"
                 for module, targets in graph.items() if module.rpartition(".")[2] in CORE
                 and module.count(".") == 1
                 for target in targets if target.startswith(NOTEBOOK_LAYER))
    assert not bad, bad

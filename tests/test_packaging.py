"""Packaging promises: light import, typed, the console script, and what the wheel ships."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import runway_widgets

ROOT = Path(__file__).resolve().parents[1]


def test_import_loads_neither_ipython_nor_ipywidgets_nor_requests() -> None:
    code = ("import sys, runway_widgets; print(sorted(m for m in ('IPython', 'ipywidgets', 'ipykernel', "
            "'nest_asyncio', 'requests', 'runway_widgets.api') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_exist() -> None:
    for name in runway_widgets.__all__:
        assert hasattr(runway_widgets, name), name


def test_rw_watch_is_the_function_whichever_module_loads_first() -> None:
    # The submodule runway_widgets.watch must not shadow the function once names load lazily.
    orders = ["import runway_widgets.watch; from runway_widgets.api import watch as w",
              "from runway_widgets.watch import Watch; import runway_widgets.scheduler; w = 1",
              "import runway_widgets as rw; rw.watch; import runway_widgets.watch; w = 2"]
    for prelude in orders:
        code = f"{prelude}\nimport runway_widgets as rw\nprint(callable(rw.watch), type(rw.watch).__name__)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
        assert out.stdout.split() == ["True", "function"], (prelude, out.stdout, out.stderr)


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        runway_widgets.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("no AttributeError")


def test_console_script_is_declared_and_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "runway_widgets.cli", "--help"], capture_output=True, text=True,
                         timeout=60, check=True)
    assert "runway-watch" in out.stdout and "COMETAPI_KEY" in out.stdout
    assert 'runway-watch = "runway_widgets.cli:main"' in (ROOT / "pyproject.toml").read_text()


def test_wheel_ships_types_and_the_demo_video(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, timeout=300, capture_output=True)
    (wheel,) = tmp_path.glob("runway_widgets-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "runway_widgets/py.typed" in names
    assert "runway_widgets/simulator/media/demo.mp4" in names
    assert not any(n.startswith(("tests/", "benchmarks/", "notebooks/")) for n in names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Requires-Dist: ipywidgets<9,>=7.6" in metadata and "Requires-Dist: ipython>=7.23" in metadata
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert not any("nest" in line.lower() for line in requires)  # see the README's design notes


def test_lazy_names_and_their_type_checking_imports_agree() -> None:
    # The public names are written twice in __init__.py: for type checkers (under
    # TYPE_CHECKING) and in _LAZY for run time.  They must name the same modules.
    import ast

    tree = ast.parse((ROOT / "runway_widgets" / "__init__.py").read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    typed = {alias.name: node.module for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert typed == runway_widgets._LAZY

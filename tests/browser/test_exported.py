"""A notebook executed headless (nbclient, which saves the widget state) and exported to HTML,
opened in Chromium with no internet: the cards must show without the CDN's widget script.

Also the export without the widget state (what GitHub-style renderers get).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from kernel_envs import NotebookRun

from .test_reopen import export_html, exported_state

pytestmark = [pytest.mark.browser, pytest.mark.kernel, pytest.mark.timeout(600)]

CELLS = [
    "%load_ext runway_widgets",
    "%runway_watch --demo 2 --demo-fail",
    "h = %runway_watch --demo",
    "h",
    "import runway_widgets as rw\nrw.wait_all(60)\nNone",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("exported")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    source = work / "headless.ipynb"
    nbformat.write(nb, str(source))
    run = NotebookRun(sys.executable, source, work / "run").start()
    try:
        run.wait()
    finally:
        run.stop()
    assert run.summary["status"] == "ok", run.summary
    return run.out_path


@pytest.mark.parametrize("keep_state", [True, False], ids=["with-widget-state", "without-widget-state"])
def test_headless_notebook_exported_offline_shows_cards(executed: Path, keep_state: bool,
                                                       browser_session: Any, tmp_path: Path) -> None:
    nb = nbformat.read(str(executed), as_version=4)
    assert ("widgets" in nb.metadata) is True, "nbclient should have saved the widget state"
    if not keep_state:
        nb.metadata.pop("widgets")
    copy = tmp_path / "copy.ipynb"
    nbformat.write(nb, str(copy))
    state = exported_state(browser_session, export_html(copy))
    assert not state["errorShown"] and state["records"] == 0, state
    # A board of two (one failed), a card, and that card shown again by `h`.
    assert sorted(state["cards"]) == ["rw-failed", "rw-succeeded", "rw-succeeded", "rw-succeeded"], state
    assert state["videos"] == 3 and state["playable"] == 3, state  # the demo's videos are embedded

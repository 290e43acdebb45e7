"""The shipped notebooks, executed headless in a real kernel (nbclient) in this venv.

``01_quickstart`` and ``03_teaching`` need no key (``--demo``); ``02_cometapi`` needs a real
one and is not run.  Each notebook runs once per session, in a temp copy (nothing is
written into the repo), and the tests read the saved notebook the way GitHub, nbviewer
and a reopened JupyterLab would: the static ``text/html``/``text/plain`` fallback, the
saved widget state, and an nbconvert HTML export without the widget state.

The quickstart runs with a made-up ``COMETAPI_KEY`` in the kernel's environment, to check
that no key reaches the saved file.  The Colab and ipykernel 7.0 versions are in
tests/test_colab_env.py.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path
from typing import Any, Iterator

import nbformat
import pytest

from kernel_envs import REPO, NotebookRun
from notebook_checks import (
    WIDGET_STATE,
    check_final_card,
    code_cells,
    cross_cell_problems,
    error_outputs,
    source_text,
    stray_outputs,
    task_lines,
    watch_cells,
    widget_state,
)
from runway_widgets.demo import FAIL_REASON

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(900)]

NOTEBOOKS = REPO / "notebooks"
EXECUTED = ("01_quickstart", "03_teaching")  # 02_cometapi needs a real key
#: Made up, shaped like a key; must never reach the saved notebook.
SENTINEL_KEY = "sentinel-KEY-1234567890"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, NotebookRun]]:
    """Both notebooks, executed concurrently (their demo tasks mostly wait on timers)."""
    started = {}
    try:
        for name in EXECUTED:
            env = {"COMETAPI_KEY": SENTINEL_KEY} if name == "01_quickstart" else {}
            started[name] = NotebookRun(sys.executable, NOTEBOOKS / f"{name}.ipynb",
                                        tmp_path_factory.mktemp(name), env=env).start()
        yield {name: run.wait() for name, run in started.items()}
    finally:
        for run in started.values():
            run.stop()


@pytest.fixture(params=EXECUTED)
def executed(request: pytest.FixtureRequest, runs: dict[str, NotebookRun]) -> tuple[NotebookRun, Any]:
    run = runs[request.param]
    return run, nbformat.read(run.out_path, as_version=4)


def test_kernel_is_this_venvs(runs: dict[str, NotebookRun]) -> None:
    for run in runs.values():
        assert Path(run.info["prefix"]) == Path(sys.prefix), run.info
        assert run.info["cwd"] == str(run.workdir), "the kernel must run in the temp copy's folder"
        assert run.summary["status"] == "ok"


def test_no_errors_and_no_output_in_the_wrong_cell(executed: tuple[NotebookRun, Any]) -> None:
    run, nb = executed
    assert error_outputs(nb) == []
    assert stray_outputs(nb) == []
    assert cross_cell_problems(nb) == []


def test_every_card_shows_the_final_state(executed: tuple[NotebookRun, Any]) -> None:
    run, nb = executed
    cells = watch_cells(nb)
    assert len(cells) >= 3
    problems = [p for wc in cells for p in check_final_card(nb, wc)]
    assert problems == [], "\n".join(problems)


def test_saved_widget_state_has_finished_bars(executed: tuple[NotebookRun, Any]) -> None:
    run, nb = executed
    state = widget_state(nb)
    bars = [m["state"] for m in state.values() if m["model_name"] == "FloatProgressModel"]
    expected_ok = sum(wc.expected.count("SUCCESS") for wc in watch_cells(nb))
    expected_bad = sum(wc.expected.count("FAILURE") for wc in watch_cells(nb))
    # A failed task's bar keeps the progress it had, in red; a success's is full.
    assert sorted(b["bar_style"] for b in bars) == ["danger"] * expected_bad + ["success"] * expected_ok
    assert all((b["value"] == 1.0) == (b["bar_style"] == "success") for b in bars), bars


def test_quickstart_sum_cell_has_only_its_result(runs: dict[str, NotebookRun]) -> None:
    nb = nbformat.read(runs["01_quickstart"].out_path, as_version=4)
    [cell] = [c for _, c in code_cells(nb) if source_text(c).lstrip().startswith("# The kernel is free")]
    assert [o.output_type for o in cell.outputs] == ["execute_result"]
    assert cell.outputs[0]["data"] == {"text/plain": str(sum(i * i for i in range(1_000_000)))}


def test_quickstart_handle_belongs_to_its_own_card(runs: dict[str, NotebookRun]) -> None:
    nb = nbformat.read(runs["01_quickstart"].out_path, as_version=4)
    [wc] = [w for w in watch_cells(nb) if "--wait" in w.source]
    [(task_id, status, _)] = task_lines(wc.cards[0]["data"]["text/plain"])
    results = [o for o in nb.cells[wc.index].outputs if o.output_type == "execute_result"]
    assert status == "SUCCESS" and len(results) == 1 and task_id in results[0]["data"]["text/plain"]


def test_teaching_prints_the_failure(runs: dict[str, NotebookRun]) -> None:
    nb = nbformat.read(runs["03_teaching"].out_path, as_version=4)
    text = "".join(o.get("text", "") for _, c in code_cells(nb) for o in c.outputs if o.output_type == "stream")
    assert "status:   SUCCESS" in text and "progress: 100 %" in text
    assert "The task failed:" in text and FAIL_REASON in text


def test_static_html_export_without_widget_state_shows_final_cards(executed: tuple[NotebookRun, Any]) -> None:
    """What GitHub/nbviewer show: no widget state, so the text/html fallback."""
    from nbconvert import HTMLExporter

    run, nb = executed
    nb.metadata.pop("widgets", None)
    assert WIDGET_STATE not in nbformat.writes(nb)
    body, _ = HTMLExporter().from_notebook_node(nb)
    cells = watch_cells(nb)
    n_ok = sum(wc.expected.count("SUCCESS") for wc in cells)
    n_bad = sum(wc.expected.count("FAILURE") for wc in cells)
    assert body.count('class="rw-card rw-succeeded"') == n_ok
    assert body.count('class="rw-card rw-failed"') == n_bad
    assert body.count("<video") >= n_ok
    assert html.escape(FAIL_REASON) in body
    widths = re.findall(r'<div class="rw-bar"[^>]*><div style="width:(\d+)%', body)
    assert len(widths) == n_ok + n_bad and widths.count("100") == n_ok, widths  # failed bars: where they were
    assert "rw-running" not in body and ">connecting<" not in body


def test_no_key_in_the_saved_notebook(runs: dict[str, NotebookRun]) -> None:
    run = runs["01_quickstart"]
    assert run.info["has_cometapi_key_env"], "the kernel should have had the sentinel key in its environment"
    saved = run.out_path.read_bytes()
    assert SENTINEL_KEY.encode() not in saved
    for path in run.workdir.rglob("*"):  # nor anything else the run wrote next to it (saved videos, logs)
        if path.is_file() and path.name != "runner.log":
            assert SENTINEL_KEY.encode() not in path.read_bytes(), path

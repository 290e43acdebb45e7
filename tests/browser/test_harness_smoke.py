"""Harness smoke test with plain ipywidgets: thread-driven progress bars render live.

Proves the harness (server, kernel readiness, running cells, DOM waits) in JupyterLab and
Notebook 7 independently of the product code, and the platform fact the product relies on:
trait updates from a background thread keep reaching the page while another cell is busy.
"""

from __future__ import annotations

import time
import pytest

from .harness import NotebookPage

pytestmark = pytest.mark.browser

#: ipywidgets 8 renders a horizontal bar as `.widget-hprogress > .progress > .progress-bar`.
BAR = ".widget-hprogress .progress-bar"

#: Width (CSS ``style.width``) of the progress bar in the cell, or null while not rendered.
BAR_WIDTH_JS = f"const bar = node.querySelector('{BAR}'); return bar ? bar.style.width : null;"


@pytest.fixture
def page(scenario_page: NotebookPage) -> NotebookPage:
    return scenario_page


def test_thread_driven_bar_reaches_100(page: NotebookPage) -> None:
    page.run_cell(0)
    cell = page.run_code(
        "bar_a = W.FloatProgress(value=0, min=0, max=100, description='smoke')\n"
        "display(bar_a)\n"
        "def _step_a():\n"
        "    for v in range(0, 101, 20):\n"
        "        bar_a.value = v\n"
        "        time.sleep(0.15)\n"
        "threading.Thread(target=_step_a, daemon=True).start()\n",
        label=f"smoke-bar-a-{page.server.flavour}")
    page.scroll_to(cell)
    page.wait_in_cell(cell, BAR_WIDTH_JS.replace("return bar ?", "return bar && bar.style.width === '100%' ?"),
                      timeout=15, what="progress bar at 100%")


def test_bar_keeps_moving_while_another_cell_sleeps(page: NotebookPage) -> None:
    page.run_cell(0)
    # The thread starts in one cell and steps while the next cell blocks in time.sleep.
    bar_cell = page.run_code(
        "bar_b = W.FloatProgress(value=0, min=0, max=100, description='busy')\n"
        "display(bar_b)\n"
        "def _step_b():\n"
        "    time.sleep(0.5)\n"
        "    for v in range(0, 101, 20):\n"
        "        bar_b.value = v\n"
        "        time.sleep(0.25)\n"
        "threading.Thread(target=_step_b, daemon=True).start()\n",
        label=f"smoke-bar-b-{page.server.flavour}")
    sleeper = page.run_code("print('sleeping', flush=True)\ntime.sleep(10)\nprint('woke')",
                            label=f"smoke-sleeper-{page.server.flavour}", wait=False)
    page.wait_output_text(sleeper, "sleeping", timeout=10)
    page.scroll_to(bar_cell)
    busy_since = time.monotonic()
    widths: list[str | None] = []
    while time.monotonic() - busy_since < 10:
        width = page.query_in_cell(bar_cell, BAR_WIDTH_JS)
        if not widths or widths[-1] != width:
            widths.append(width)
        sleeper_state = page.cell_state(sleeper)
        if width == "100%":
            break
        time.sleep(0.1)
    assert widths and widths[-1] == "100%", f"bar stopped at {widths}"
    assert sleeper_state["count"] is None, "the sleeping cell finished before the bar did: nothing proven"
    assert "woke" not in sleeper_state["text"]
    moving = [w for w in widths if w not in (None, "0%")]
    assert len(moving) >= 3, f"the bar did not move step by step while the kernel was busy: {widths}"
    page.interrupt_kernel()  # no need to sit out the sleep
    page.wait_cell_done(sleeper, timeout=10, check=False)

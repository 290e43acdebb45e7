"""A saved notebook reopened the way people do it: in JupyterLab or Notebook 7, with a fresh kernel.

Each scenario runs watches in a real page, saves with File > Save, closes the page (its kernel
is shut down), opens the file again in a new tab with a new kernel, and reads what a user
sees. No cell runs after the reopen: the outputs must stand on their own.

* Watches that ended: every showing of every card is the final static card (video that
  plays, escaped failure), and nowhere "Error displaying widget", with the widget state
  saved in the notebook or not (JupyterLab's "save widget state" setting).
* A watch still running when the notebook was saved: its record shows the last state and how
  to resume it, and the widget's "model not found" line is hidden.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from runway_widgets.simulator import Simulator, Timeline

from .conftest import BROWSER_FAKE_KEY, OpenNotebook
from .harness import NotebookPage

pytestmark = pytest.mark.browser

REASON = "<b>bad</b> prompt"

#: Everything a user can see in the notebook, as plain data.
PAGE_JS = """
const root = window.__rwtPanel.content.node;
const visible = el => !!el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
const text = root.innerText;
const cards = [...root.querySelectorAll('.rw-card')].filter(c => visible(c) && !c.closest('.rw-record'));
return {
  errorShown: [...root.querySelectorAll('.jp-OutputArea-output')]
      .some(o => o.textContent.includes('Error displaying widget') && visible(o)),
  liveCards: [...root.querySelectorAll('.runway-card')].filter(visible).length,
  cards: cards.map(c => ({cls: c.className, text: c.innerText,
                          video: (() => { const v = c.querySelector('video');
                                          return v ? {readyState: v.readyState, error: v.error ? v.error.code : null,
                                                      src: v.getAttribute('src')} : null; })()})),
  records: [...root.querySelectorAll('.rw-record')].filter(visible).map(r => r.innerText),
  injected: root.querySelectorAll('.rw-card b b, .rw-card img').length,
  text: text,
};
"""


def page_state(nb: NotebookPage) -> dict[str, Any]:
    return nb.evaluate(f"() => {{ {PAGE_JS} }}")


def wait_page(nb: NotebookPage, condition: str, what: str, timeout: float = 20.0) -> dict[str, Any]:
    nb.wait_js(f"() => {{ const s = (() => {{ {PAGE_JS} }})(); return {condition}; }}", timeout=timeout, what=what)
    return page_state(nb)


#: What an exported HTML page shows.
EXPORTED_JS = """
() => {
  const visible = el => !!el && el.getClientRects().length > 0;
  const cards = [...document.querySelectorAll('.rw-card')].filter(c => visible(c) && !c.closest('.rw-record'));
  const videos = cards.map(c => c.querySelector('video')).filter(v => v);
  return {
    cards: cards.map(c => c.className.split(' ')[1]),
    records: [...document.querySelectorAll('.rw-record')].filter(visible).length,
    errorShown: document.body.innerText.includes('Error displaying widget'),
    videos: videos.length,
    playable: videos.filter(v => v.readyState >= 1 && !v.error).length,
  };
}
"""


def export_html(notebook: Path) -> Path:
    """nbconvert's HTML export of a saved notebook, as nbviewer makes it."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(str(notebook), as_version=4))
    out = notebook.with_suffix(".html")
    out.write_text(body, encoding="utf-8")
    return out


def exported_state(browser: Any, page_path: Path, timeout: float = 15.0) -> dict[str, Any]:
    """Open an exported page with no internet; wait for its videos' metadata; read it."""
    page, _refused = browser.open_offline(page_path)
    try:
        deadline = time.monotonic() + timeout
        state = page.evaluate(EXPORTED_JS)
        while state["playable"] < state["videos"] and time.monotonic() < deadline:
            time.sleep(0.2)
            state = page.evaluate(EXPORTED_JS)
        return state
    finally:
        page.context.close()


def reopen(nb: NotebookPage) -> NotebookPage:
    """Save, close (the kernel is shut down), and open the same file in a new tab."""
    nb.save()
    nb.close()
    again = NotebookPage(nb.server, nb.browser, nb.name)
    again.open(write=False)
    return again


@pytest.fixture
def save_widget_state(open_notebook: OpenNotebook) -> Iterator[Any]:
    """Turn JupyterLab's "save widget state automatically" on for a page's server (the page
    is reloaded to take it), off again afterwards."""
    servers: list[Any] = []

    def turn_on(nb: NotebookPage) -> None:
        nb.server.api("PUT", "/lab/api/settings/@jupyter-widgets/jupyterlab-manager:plugin",
                      {"raw": json.dumps({"saveState": True})})
        servers.append(nb.server)
        nb.page.reload()
        nb.wait_kernel_ready()

    yield turn_on
    for server in servers:
        server.api("PUT", "/lab/api/settings/@jupyter-widgets/jupyterlab-manager:plugin",
                   {"raw": json.dumps({"saveState": False})})


@pytest.mark.parametrize("flavour", ["lab", "notebook"])
@pytest.mark.parametrize("widget_state", [False, True], ids=["no-widget-state", "widget-state"])
def test_reopened_notebook_shows_final_cards(flavour: str, widget_state: bool, open_notebook: OpenNotebook,
                                              browser_sim: Simulator, save_widget_state: Any) -> None:
    ok = browser_sim.add_task(BROWSER_FAKE_KEY, Timeline.fast(run_for=1.0))
    a = browser_sim.add_task(BROWSER_FAKE_KEY, Timeline.fast(run_for=1.0))
    bad = browser_sim.add_task(BROWSER_FAKE_KEY, Timeline.fast(run_for=1.0, outcome="FAILURE", fail_reason=REASON))
    later = browser_sim.add_task(BROWSER_FAKE_KEY, Timeline.fast(run_for=3.0))
    nb = open_notebook(flavour, name=f"reopen-{uuid.uuid4().hex[:6]}.ipynb")
    if widget_state:
        save_widget_state(nb)
    nb.run_code("%load_ext runway_widgets")
    nb.run_code(f"%runway_watch {ok}")
    nb.run_code(f"%runway_watch {a} {bad}")
    nb.run_code(f"h = %runway_watch {later}")
    nb.run_code("h")  # a second showing of a live card: it must end final too
    state = wait_page(nb, "s.liveCards === 0 && s.cards.length === 5",
                      "every card (5 showings, one a board of 2) to become its final static card", timeout=30)
    assert not state["errorShown"] and not state["records"], state
    nb.run_code("import runway_widgets as rw; rw.wait_all(20)")

    nb = reopen(nb)
    time.sleep(2.0)  # give a widget manager time to try (and fail) to render anything
    nb.screenshot(f"reopened-final-{'state' if widget_state else 'nostate'}")
    state = page_state(nb)
    assert not state["errorShown"], "a reopened card says 'Error displaying widget'"
    assert state["liveCards"] == 0
    assert not state["records"], f"records of ended watches are visible: {state['records']}"
    classes = sorted(c["cls"].split()[1] for c in state["cards"])
    assert classes == ["rw-failed"] + ["rw-succeeded"] * 4, classes
    failed = next(c for c in state["cards"] if "rw-failed" in c["cls"])
    assert REASON in failed["text"] and state["injected"] == 0, failed
    assert "FAILURE" in failed["text"], failed["text"]
    state = wait_page(nb, "s.cards.filter(c => c.video).every(c => c.video.readyState >= 1 || c.video.error)",
                      "the reopened videos to load their metadata")
    videos = [c["video"] for c in state["cards"] if c["video"]]
    assert len(videos) == 4 and all(v["readyState"] >= 1 and v["error"] is None for v in videos), videos
    nb.close()

    # The same file through nbconvert (what nbviewer shows), opened with no internet.
    exported = export_html(nb.server.root / nb.name)
    state = exported_state(nb.browser, exported)
    assert not state["errorShown"] and state["records"] == 0, state
    assert sorted(state["cards"]) == ["rw-failed"] + ["rw-succeeded"] * 4, state
    assert state["videos"] == 4 and state["playable"] == 4, state


@pytest.mark.parametrize("flavour", ["lab", "notebook"])
@pytest.mark.parametrize("widget_state", [False, True], ids=["no-widget-state", "widget-state"])
def test_notebook_saved_mid_watch_shows_last_state(flavour: str, widget_state: bool, open_notebook: OpenNotebook,
                                                  browser_sim: Simulator, save_widget_state: Any) -> None:
    task_id = browser_sim.add_task(BROWSER_FAKE_KEY, Timeline.fast(run_for=600.0))
    nb = open_notebook(flavour, name=f"midway-{uuid.uuid4().hex[:6]}.ipynb")
    if widget_state:
        save_widget_state(nb)
    nb.run_code("%load_ext runway_widgets")
    cell = nb.run_code(f"%runway_watch {task_id} --interval 1")
    nb.scroll_to(cell)
    state = wait_page(nb, "s.liveCards === 1 && s.text.includes('IN_PROGRESS')", "a live card, in progress")
    assert not state["records"], "the record shows beside the live card"
    assert len(state["cards"]) == 0
    time.sleep(2.5)  # the record is rewritten at most every 2 s
    nb = reopen(nb)
    time.sleep(2.0)
    nb.screenshot(f"reopened-midway-{'state' if widget_state else 'nostate'}")
    state = page_state(nb)
    assert not state["errorShown"], "the widget's 'model not found' line is shown"
    if widget_state:
        # The widget comes back from the saved state as it was (and hides the record).
        assert state["liveCards"] == 1 and not state["records"], state
        assert "IN_PROGRESS" in state["text"], state["text"]
    else:
        assert state["liveCards"] == 0
        assert len(state["records"]) == 1, state
        record = state["records"][0]
        assert "IN_PROGRESS" in record and "--resume" in record, record
        assert task_id[:8] in record, record
    nb.close()

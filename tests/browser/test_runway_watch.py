"""``%runway_watch`` in a real JupyterLab and Notebook 7, against the in-process simulator.

Everything is asserted from the page's DOM (what a user sees), or from the simulator's request
log (what the kernel really sends). One notebook page per flavour is shared by the session's
scenarios; each scenario appends its own cells and creates its own simulated task.

DOM contract relied on (``runway_widgets/views/widget.py``):

* ``.runway-card``: the card (an ipywidgets VBox);
* ``.runway-bar .progress-bar``: the bar; ``style.width`` is the percentage and the bar style is
  the class ``progress-bar-{info,success,danger,warning}``;
* ``.runway-status``: the status line (an HTML widget);
* ``button.runway-stop``: the Stop button;
* ``.runway-result video.rw-video``: the video once the task succeeded.

When the watch ends, the widget is replaced by the static card (``runway_widgets/views/card.py``):
``.rw-card.rw-succeeded`` / ``.rw-failed`` / ..., ``.rw-bar > div`` (its width is the
percentage), ``.rw-status`` and ``.rw-result video.rw-video``; ``CARD_JS`` reads both alike.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from runway_widgets.simulator import Simulator, Timeline

from .conftest import BROWSER_FAKE_KEY
from .harness import NotebookPage

pytestmark = pytest.mark.browser

XSS_REASON = "<img src=x onerror=window.__pwned=1> bad prompt"

#: The card in a cell as plain data (null until it is rendered): the live widget while the
#: watch runs, then the final static card that replaces it (``final: true``), read alike.
CARD_JS = """
const live = node.querySelector('.runway-card');
const done = [...node.querySelectorAll('.rw-card')].find(c => !c.closest('.rw-record'));
const card = live || done;
if (!card) return null;
const video = card.querySelector('.rw-result video');
const common = {
  imgs: node.querySelectorAll('.jp-OutputArea img').length,
  video: video ? {src: video.src, readyState: video.readyState, error: video.error ? video.error.code : null,
                  autoplay: video.autoplay, controls: video.controls} : null,
};
if (live) {
  const bar = card.querySelector('.runway-bar .progress-bar');
  const status = card.querySelector('.runway-status');
  const stop = card.querySelector('button.runway-stop');
  return Object.assign(common, {
    final: false,
    barClass: bar ? bar.className : null,
    width: bar ? bar.style.width : null,
    status: status ? status.innerText : null,
    stopVisible: !!stop && stop.style.display !== 'none' && stop.offsetParent !== null,
  });
}
const styles = {'rw-succeeded': 'success', 'rw-failed': 'danger', 'rw-cancelled': 'warning', 'rw-running': 'info'};
const kind = [...card.classList].find(c => c in styles);
const fill = card.querySelector('.rw-bar > div');
const status = card.querySelector('.rw-status');
return Object.assign(common, {
  final: true,
  barClass: 'static progress-bar-' + (styles[kind] || 'none'),
  width: fill ? fill.style.width : null,
  status: status ? status.innerText : null,
  stopVisible: false,
});
"""


def card(nb: NotebookPage, cell: int) -> dict[str, Any] | None:
    return nb.query_in_cell(cell, CARD_JS)


def wait_card(nb: NotebookPage, cell: int, condition: str, what: str, timeout: float = 20.0) -> dict[str, Any]:
    """Wait until ``condition`` (JS over ``c``, the card data) holds; return the card data."""
    nb.wait_in_cell(cell, f"const c = (() => {{ {CARD_JS} }})(); return !!c && ({condition});",
                    timeout=timeout, what=what)
    state = card(nb, cell)
    assert state is not None
    return state


def polls(sim: Simulator, task_id: str) -> int:
    """Status requests the kernel sent for ``task_id`` (media downloads excluded)."""
    return sum(1 for r in sim.requests_for(task_id) if r.path == "/runway/feed" or r.path.startswith("/runwayml/"))


@pytest.fixture
def nb(scenario_page: NotebookPage) -> NotebookPage:
    """The shared page of the flavour, with the extension loaded (once per page)."""
    if not scenario_page.state.get("runway_loaded"):
        scenario_page.run_code("%load_ext runway_widgets", label=f"load-ext-{scenario_page.server.flavour}")
        scenario_page.state["runway_loaded"] = True
    return scenario_page


def test_watch_succeeds_and_plays_video(nb: NotebookPage, browser_sim: Simulator) -> None:
    task_id = browser_sim.add_task(BROWSER_FAKE_KEY, Timeline.fast(run_for=2.0))
    cell = nb.run_code(f"%runway_watch {task_id}", label=f"ok-{nb.server.flavour}")
    nb.scroll_to(cell)
    state = wait_card(nb, cell, "c.barClass.includes('progress-bar-success') && c.width === '100%'"
                                " && c.status.includes('SUCCESS')", "a green bar at 100% and a success status")
    assert "progress-bar-danger" not in state["barClass"]
    assert not state["stopVisible"], "the Stop button is still shown after the task finished"
    state = wait_card(nb, cell, "c.video && (c.video.readyState >= 1 || c.video.error !== null)",
                      "the video to load its metadata (or fail)", timeout=15)
    video = state["video"]
    assert video["error"] is None, f"the <video> failed to load: MediaError code {video['error']}"
    assert video["readyState"] >= 1
    assert video["src"].startswith(f"{browser_sim.base_url}/media/{task_id}.mp4?"), video["src"]
    assert video["controls"] and not video["autoplay"]
    media = [r for r in browser_sim.requests_for(task_id) if r.path.startswith("/media/")]
    assert media and all(r.status in (200, 206) for r in media), media


def test_failed_task_shows_red_bar_and_escaped_reason(nb: NotebookPage, browser_sim: Simulator) -> None:
    task_id = browser_sim.add_task(BROWSER_FAKE_KEY, Timeline.fast(outcome="FAILURE", fail_reason=XSS_REASON))
    cell = nb.run_code(f"%runway_watch {task_id}", label=f"fail-{nb.server.flavour}")
    nb.scroll_to(cell)
    state = wait_card(nb, cell, "c.barClass.includes('progress-bar-danger') && c.status.includes('FAILURE')",
                      "a red bar and a FAILURE status")
    assert XSS_REASON in state["status"], f"the reason is not shown as literal text: {state['status']!r}"
    assert state["imgs"] == 0, "an <img> element was injected from the failure reason"
    assert state["video"] is None
    time.sleep(0.3)  # an injected onerror handler would have run by now
    assert nb.evaluate("() => typeof window.__pwned") == "undefined", "the failure reason ran script"
    assert card(nb, cell)["imgs"] == 0  # type: ignore[index]


def test_stop_button_stops_requests(nb: NotebookPage, browser_sim: Simulator) -> None:
    task_id = browser_sim.add_task(BROWSER_FAKE_KEY, Timeline.fast(run_for=600.0))
    cell = nb.run_code(f"%runway_watch {task_id} --interval 1", label=f"stop-{nb.server.flavour}")
    nb.scroll_to(cell)
    wait_card(nb, cell, "c.status.includes('IN_PROGRESS') && c.stopVisible", "a running card with a Stop button")
    # Polling really is going on before the click (about one request a second).
    start, t0 = polls(browser_sim, task_id), time.monotonic()
    deadline = t0 + 10
    while polls(browser_sim, task_id) < start + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert polls(browser_sim, task_id) >= start + 2, "the watch was not polling before Stop"

    nb.click_in_cell(cell, "button.runway-stop")
    state = wait_card(nb, cell, "c.status.includes('stopped')", "the card to say it stopped", timeout=10)
    assert not state["stopVisible"]
    time.sleep(0.5)  # a request already in flight at the click may still land
    after_stop = polls(browser_sim, task_id)
    time.sleep(3.0)  # at --interval 1 a live watch would poll about three more times
    assert polls(browser_sim, task_id) == after_stop, "requests went on after Stop was clicked"


def test_card_moves_while_another_cell_is_busy(nb: NotebookPage, browser_sim: Simulator) -> None:
    task_id = browser_sim.add_task(BROWSER_FAKE_KEY, Timeline.fast(run_for=4.0))
    flavour = nb.server.flavour
    cell = nb.run_code(f"%runway_watch {task_id} --interval 1", label=f"busy-{flavour}")
    sleeper = nb.run_code("print('sleeping', flush=True)\ntime.sleep(15)", label=f"sleeper-{flavour}", wait=False)
    nb.wait_output_text(sleeper, "sleeping", timeout=10)
    nb.scroll_to(cell)
    seen: list[tuple[str | None, str | None]] = []
    deadline = time.monotonic() + 15
    state: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        state = card(nb, cell)
        if state is not None:
            key = (state["width"], state["status"])
            if not seen or seen[-1] != key:
                seen.append(key)
            if "progress-bar-success" in state["barClass"]:
                break
        time.sleep(0.1)
    sleeper_state = nb.cell_state(sleeper)
    assert state is not None and "progress-bar-success" in state["barClass"], f"the card stalled: {seen}"
    assert sleeper_state["count"] is None, "the busy cell ended first: nothing was proven"
    widths = {w for w, _ in seen if w not in (None, "0%")}
    assert len(widths) >= 3, f"the bar did not move step by step while another cell ran: {seen}"
    # The card's updates must not leak into the cell that happened to be running.
    assert nb.query_in_cell(sleeper, "return node.querySelectorAll('.runway-card, .rw-card').length;") == 0
    assert sleeper_state["text"].strip() == "sleeping", sleeper_state["text"]
    nb.interrupt_kernel()
    nb.wait_cell_done(sleeper, check=False, timeout=10)


BOARD_JS = """
return [...node.querySelectorAll('.runway-card')].map(card => {
  const stop = card.querySelector('button.runway-stop');
  const status = card.querySelector('.runway-status');
  return {status: status ? status.innerText : '', stopVisible: !!stop && stop.offsetParent !== null};
});
"""


def test_a_finished_card_on_a_running_board_hides_its_stop_button(nb: NotebookPage, browser_sim: Simulator) -> None:
    # The finished card stays live while the board's other task runs.  Its Stop button is
    # hidden by a style in its final body, scoped to that card (it was hidden through its
    # layout, one comm message more per watch): the running card's button must stay.
    done = browser_sim.add_task(BROWSER_FAKE_KEY, Timeline.fast(run_for=1.0))
    running = browser_sim.add_task(BROWSER_FAKE_KEY, Timeline.fast(run_for=600.0))
    cell = nb.run_code(f"%runway_watch {done} {running} --interval 1", label=f"board-stop-{nb.server.flavour}")
    nb.scroll_to(cell)
    condition = ("const cards = (() => { " + BOARD_JS + " })(); return cards.length === 2 && "
                 "cards.some(c => c.status.includes('SUCCESS')) && cards.some(c => c.status.includes('IN_PROGRESS'));")
    nb.wait_in_cell(cell, condition, timeout=20, what="one card finished and one running")
    cards = nb.query_in_cell(cell, BOARD_JS)
    finished = [c for c in cards if "SUCCESS" in c["status"]]
    live = [c for c in cards if "IN_PROGRESS" in c["status"]]
    assert len(finished) == 1 and len(live) == 1, cards
    assert not finished[0]["stopVisible"], "the finished card still shows its Stop button"
    assert live[0]["stopVisible"], "the style hid the running card's Stop button too"
    nb.run_code("import runway_widgets as rw; rw.stop_all()", label=f"board-stop-all-{nb.server.flavour}")

"""Hostile server text and URLs in a real JupyterLab, and in the saved notebook's HTML export.

The simulator serves script-bearing values everywhere the card shows server text (action,
failure reason and code, an unknown status, a terminal status it never leaves, a retry note
built from a 503's error message, a task object echoing a hostile id) and result URLs that
must be refused (``javascript:``, ``data:``, attribute-breaking quotes).  Every payload would
set ``window.__pwned`` if it ran.

Asserted from the DOM of JupyterLab (the live widgets), then of the saved notebook converted
by ``jupyter nbconvert --to html`` (without the widget state, as GitHub/nbviewer show it: the
static card; and with it), opened from a file:// URL in a fresh page with the network cut:

* no element a payload would bring (img, script, svg, iframe, ...), no ``on*`` attribute, no
  href/src that is not http(s) inside any output area, at any moment (a MutationObserver
  records transient states too: the unknown status and the retry note are on screen for a
  few seconds only);
* the hostile text is on screen as literal text, and the refused URLs are announced;
* ``window.__pwned`` stays undefined after hovering, clicking and focusing every element of
  the cards.

Controls keep this from passing vacuously: an unescaped payload (a plain ``W.HTML`` in Lab,
a raw ``text/html`` output in the export) does run on the same pages, and a task with a
plain http URL does get its ``<video>``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import nbformat
import pytest

from runway_widgets.simulator import Fault, Simulator, Timeline

from .conftest import BROWSER_FAKE_KEY
from .harness import BrowserSession, NotebookPage

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

ACTION = '<img src=x onerror="window.__pwned=1">'
REASON = '<script>window.__pwned=2</script><b onmouseover="window.__pwned=3">x</b>'
CODE = '"><svg onload="window.__pwned=15">'
EXTRA_STATUS = '<svg onload="window.__pwned=4">'
STUCK_STATUS = '<svg onload="window.__pwned=7">'
ERROR_MESSAGE = '<img src=x onerror="window.__pwned=12">'
ECHO_ID = '<img src=x onerror="window.__pwned=9">'
ECHO_FAILURE = '<iframe src="javascript:window.__pwned=10"></iframe>'
BAD_URLS = {
    "javascript": "javascript:window.__pwned=5",
    "javascript-mixed-case": "  JaVaScRiPt:window.__pwned=13",
    "attr-break": 'https://x.example/a.mp4" onerror="window.__pwned=6',
    "attr-break-single": "https://x.example/a.mp4'><img src=x onerror=window.__pwned=14>",
    "data": "data:text/html,<script>window.__pwned=8</script>",
}
REFUSED = "Finished, but the server sent a result URL that is not plain http(s), so it is not shown."
UNSAFE_NOTE = "the server sent an unsafe result URL; it was not used"

#: Inside the output elements under ``root``: what a payload would have brought.
#: ``allowScripts`` exempts nbconvert's own widget scripts in the export with widget state.
SCAN_JS = """
([root, allowScripts]) => {
  const BAD = new Set(['SCRIPT', 'IMG', 'SVG', 'IFRAME', 'FRAME', 'OBJECT', 'EMBED', 'LINK', 'META', 'STYLE', 'BASE',
                       'FORM', 'INPUT', 'TEXTAREA', 'MATH', 'AUDIO', 'SOURCE', 'PORTAL', 'TEMPLATE']);
  const URL_ATTRS = new Set(['href', 'src', 'action', 'formaction', 'xlink:href', 'poster', 'srcdoc', 'data', 'background']);
  // Our own <style> rules (a live card hides its saved-state record; a record hides the
  // widget's "model not found" line; a finished live card hides its Stop button and hint),
  // matched exactly: no server text can take this shape.
  const OUR_STYLE = /^(\\.runway-card-([0-9a-f]{32}) \\.runway-stop,\\.runway-card-\\2 \\.runway-hint\\{display:none!important\\}|\\.rw-record-[0-9a-f]{32}\\{display:none\\} \\.jp-OutputArea-child:has\\(\\.rw-record-[0-9a-f]{32}\\)\\{display:none\\}|\\.jp-OutputArea-child:has\\(\\+ \\.jp-OutputArea-child \\.rw-record-[0-9a-f]{32}\\):has\\(> \\.jp-OutputArea-output\\.jupyter-widgets\\)\\{display:none\\})$/;
  const ours = (el) => (el.tagName === 'STYLE' && OUR_STYLE.test(el.textContent)) ||
    (allowScripts && el.tagName === 'SCRIPT' && (
      el.type === 'application/vnd.jupyter.widget-view+json' ||
      /^\\s*var element = document\\.getElementById\\('[0-9a-f-]+'\\);\\s*$/.test(el.textContent)));
  const bad = [];
  // The outputs themselves: Lab's own chrome around them (prompts, collapse icons) is not server text.
  const outputs = Array.from(root.querySelectorAll('.jp-OutputArea-output'));
  for (const el of outputs.flatMap(o => Array.from(o.querySelectorAll('*')))) {
    const tag = el.tagName.toUpperCase();
    if (BAD.has(tag) && !ours(el)) bad.push(`<${tag}> ${el.outerHTML.slice(0, 160)}`);
    for (const a of Array.from(el.attributes)) {
      const name = a.name.toLowerCase();
      if (name.startsWith('on')) bad.push(`${name}= on <${tag}>: ${el.outerHTML.slice(0, 160)}`);
      if (URL_ATTRS.has(name) && !/^https?:\\/\\//i.test(a.value.trim()))
        bad.push(`${name}="${a.value.slice(0, 80)}" on <${tag}>`);
    }
  }
  return bad;
}
"""

#: Records, for every cell labelled hostile-*, anything injected at any moment and every
#: status line it ever showed (some states are on screen for a few seconds only).
RECORDER_JS = """
(scanSource) => {
  if (window.__rwtRecorder) return true;
  const scan = eval(scanSource);
  const rec = window.__rwtRecorder = {injected: [], seen: {}};
  const look = () => {
    for (const cell of document.querySelectorAll('[data-rwt-cell^="hostile-"]')) {
      const label = cell.getAttribute('data-rwt-cell');
      const area = cell.querySelector('.jp-OutputArea');
      if (!area) continue;
      for (const b of scan([area, false])) if (!rec.injected.includes(label + ': ' + b)) rec.injected.push(label + ': ' + b);
      const seen = rec.seen[label] = rec.seen[label] || [];
      for (const s of area.querySelectorAll('.runway-status')) if (!seen.includes(s.innerText)) seen.push(s.innerText);
    }
  };
  new MutationObserver(look).observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
  look();
  return true;
}
"""

#: Hover, enter, click and focus every element under ``root`` (inline handlers run on
#: synthetic events too); a link's navigation is cancelled after its handlers ran.
POKE_JS = """
(root) => {
  let n = 0;
  const stop = (e) => { if (e.target.closest && e.target.closest('a')) e.preventDefault(); };
  root.addEventListener('click', stop, true);
  for (const el of root.querySelectorAll('.jp-OutputArea-output, .jp-OutputArea-output *')) {
    for (const type of ['mouseover', 'mouseenter', 'mousemove', 'mousedown', 'mouseup', 'click', 'dblclick',
                        'focus', 'focusin']) {
      el.dispatchEvent(new MouseEvent(type, {bubbles: true, cancelable: true, view: window}));
    }
    n++;
  }
  root.removeEventListener('click', stop, true);
  return n;
}
"""


def pwned(page: Any) -> str:
    return page.evaluate("() => typeof window.__pwned === 'undefined' ? 'undefined' : String(window.__pwned)")


class Cells:
    """The hostile watch cells of one run: label -> (source, what to wait for)."""

    def __init__(self, sim: Simulator, nb: NotebookPage) -> None:
        self.sim, self.nb = sim, nb
        self.run_id = uuid.uuid4().hex[:6]
        self.labels: dict[str, str] = {}
        self.tasks: dict[str, str] = {}

    def label(self, name: str) -> str:
        return f"hostile-{name}-{self.run_id}"

    def run(self, name: str, magic: str) -> int:
        """Run ``# rwt-hostile:NAME`` + the magic (the comment finds the cell in the export)."""
        self.labels[name] = self.label(name)
        return self.nb.run_code(f"# rwt-hostile:{name}\n{magic}", label=self.labels[name])


def scan(page: Any, root_js: str, allow_scripts: bool = False) -> list[str]:
    return page.evaluate(f"([allow]) => ({SCAN_JS})([{root_js}, allow])", [allow_scripts])


@pytest.mark.parametrize("shared_page", ["lab"], indirect=True)  # the shared JupyterLab page only
def test_hostile_values_are_inert_in_lab_and_in_the_exported_notebook(
        scenario_page: NotebookPage, browser_sim: Simulator, browser_session: BrowserSession, tmp_path: Path) -> None:
    nb = scenario_page
    assert nb.server.flavour == "lab"
    if not nb.state.get("runway_loaded"):
        nb.run_code("%load_ext runway_widgets", label="load-ext-lab")
        nb.state["runway_loaded"] = True
    page = nb.page
    assert pwned(page) == "undefined", "a flag left over from before this test"
    nb.evaluate(RECORDER_JS, SCAN_JS)
    sim, key = browser_sim, BROWSER_FAKE_KEY
    cells = Cells(sim, nb)
    t = cells.tasks

    # -- every hostile value, each where the card shows it ------------------------------------
    # An unknown status with markup, on screen while the task is queued (0.4 s to 2.9 s).
    t["extra"] = sim.add_task(key, Timeline.fast(queued_for=5.0, extra_status=EXTRA_STATUS))
    cells.run("extra", f"%runway_watch {t['extra']} --interval 1")
    # A 503 whose error message is markup: the card's retry note quotes it.
    t["retry"] = sim.add_task(key, Timeline.fast())
    sim.inject(Fault("custom", count=2, status=503, path=f"/runwayml/v1/tasks/{t['retry']}",
                     body=json.dumps({"error": {"message": ERROR_MESSAGE, "type": "x"}}).encode()))
    cells.run("retry", f"%runway_watch {t['retry']} --official")
    # The action (live: status line; static: title).
    t["action"] = sim.add_task(key, Timeline.fast(action=ACTION))
    cells.run("action", f"%runway_watch {t['action']}")
    # Failure reason and code.
    t["reason"] = sim.add_task(key, Timeline.fast(outcome="FAILURE", fail_reason=REASON, fail_code=CODE))
    cells.run("reason", f"%runway_watch {t['reason']}")
    # A terminal word the client does not know: watched until --timeout, then quoted in the error.
    t["stuck"] = sim.add_task(key, Timeline.fast(outcome=STUCK_STATUS))
    cells.run("stuck", f"%runway_watch {t['stuck']} --timeout 4 --interval 1")
    # A task object echoing a hostile id, failure text and code (Runway's own endpoint).
    t["echo"] = sim.add_task(key, Timeline.fast())
    sim.inject(Fault("custom", count=50, path=f"/runwayml/v1/tasks/{t['echo']}", body=json.dumps(
        {"id": ECHO_ID, "status": "FAILED", "failure": ECHO_FAILURE, "failureCode": CODE, "progress": 1}).encode()))
    cells.run("echo", f"%runway_watch {t['echo']} --official")
    # Result URLs to refuse, on one board.
    url_tasks = {name: sim.add_task(key, Timeline.fast(result_url_override=url)) for name, url in BAD_URLS.items()}
    t.update({f"url-{n}": tid for n, tid in url_tasks.items()})
    cells.run("urls", "%runway_watch " + " ".join(url_tasks.values()))

    # -- the transient states were shown, as text -----------------------------------------------
    for name, needle, why in (("extra", EXTRA_STATUS, "the unknown status"),
                              ("retry", "retrying in", "the retry note")):
        nb.scroll_to(cells.labels[name])
        nb.wait_js("([label, needle]) => ((window.__rwtRecorder.seen[label] || []).some(s => s.includes(needle)))",
                   [cells.labels[name], needle], timeout=15, what=f"{why} on the card of {name}")
    seen_retry = [s for s in page.evaluate("(l) => window.__rwtRecorder.seen[l]", cells.labels["retry"]) if "retrying" in s]
    assert any(ERROR_MESSAGE in s for s in seen_retry), f"the 503's message is not quoted as text: {seen_retry}"

    # -- all cards finished -----------------------------------------------------------------------
    expected_cards = {"extra": 1, "retry": 1, "action": 1, "reason": 1, "stuck": 1, "echo": 1, "urls": len(BAD_URLS)}
    for name, count in expected_cards.items():
        nb.scroll_to(cells.labels[name])
        nb.wait_in_cell(cells.labels[name], """
            // An ended watch's live widget is replaced by its final static card.
            const cards = [...node.querySelectorAll('.rw-card')].filter(c => !c.closest('.rw-record'));
            return node.querySelectorAll('.runway-card').length === 0 && cards.length === arg
                   && cards.every(c => !c.classList.contains('rw-running'));""", count, timeout=20,
            what=f"{count} finished card(s) for {name}")
    cells.run("table", "%runway_tasks")

    # -- what each card shows -------------------------------------------------------------------------
    def text(name: str) -> str:
        return nb.query_in_cell(cells.labels[name],
                                "const a = node.querySelector('.jp-OutputArea'); return a ? a.innerText : '';")

    assert ACTION in text("action") and "SUCCESS" in text("action"), text("action")
    assert nb.query_in_cell(cells.labels["action"],
                            "return node.querySelectorAll('.rw-result video.rw-video[src^=\"http\"]').length;") == 1, \
        "control: the task with a plain http URL has no <video>"
    assert REASON in text("reason") and CODE in text("reason"), text("reason")
    assert f"last seen: {STUCK_STATUS}" in text("stuck"), text("stuck")
    assert ECHO_FAILURE in text("echo") and CODE in text("echo"), text("echo")
    assert text("urls").count(REFUSED) == len(BAD_URLS), text("urls")
    assert text("urls").count(UNSAFE_NOTE) == len(BAD_URLS), text("urls")
    assert nb.query_in_cell(cells.labels["urls"], "return node.querySelectorAll('video, a').length;") == 0
    table = text("table")
    assert REASON in table and STUCK_STATUS in table, table

    # -- nothing injected, now or ever; hover, click and focus everything; no script ran ---------
    for name in [*expected_cards, "table"]:
        nb.scroll_to(cells.labels[name])
        selector = nb.cell_selector(cells.labels[name])
        for part in page.locator(f"{selector} .rw-status, {selector} .rw-title, {selector} .rw-result, "
                                 f"{selector} .rw-result a, {selector} table").all():
            if not part.is_visible():  # an empty result area (a failure) has no box to hover
                continue
            part.hover(timeout=5000)
            if part.evaluate("(el) => el.tagName") != "A":  # links: synthetic clicks below, no new tabs
                part.click(timeout=5000)
        poked = nb.query_in_cell(cells.labels[name], f"return ({POKE_JS})(node.querySelector('.jp-OutputArea'));")
        assert poked > 3, f"nothing to poke in {name}"
        assert scan(page, f"document.querySelector('{selector} .jp-OutputArea')") == [], name
    time.sleep(0.5)  # an onerror/onload would have fired by now
    recorder = page.evaluate("() => window.__rwtRecorder")
    assert recorder["injected"] == [], recorder["injected"]
    assert pwned(page) == "undefined", f"a payload ran in JupyterLab: window.__pwned = {pwned(page)}"
    assert len(recorder["seen"]) == len(cells.labels), recorder["seen"].keys()
    for task_id in t.values():
        assert any(r.status == 200 for r in sim.requests_for(task_id)) or task_id == t["echo"], task_id

    # -- the saved notebook, converted to HTML -----------------------------------------------------
    saved = save_with_widget_state(nb)
    for with_state in (False, True):
        html_path = export_html(saved, tmp_path, with_state)
        check_export(browser_session, html_path, with_state)

    # -- control: on this very page an unescaped payload does run (so the checks above can fail) --
    control = nb.run_code("import ipywidgets as W\nW.HTML(value='<img src=x onerror=\"window.__rwtControl=1\">')",
                          label=f"hostile-zcontrol-{cells.run_id}")
    nb.wait_js("() => window.__rwtControl === 1", timeout=10, what="the control payload to run in JupyterLab")
    nb.wait_js("(l) => window.__rwtRecorder.injected.some(b => b.startsWith(l + ': <IMG>'))",
               f"hostile-zcontrol-{cells.run_id}", timeout=5, what="the recorder to see the control's <img>")
    found = scan(page, f"document.querySelector('{nb.cell_selector(control)} .jp-OutputArea')")
    assert any(b.startswith("<IMG>") for b in found) and any(b.startswith("onerror=") for b in found), found
    assert pwned(page) == "undefined"


# ------------------------------------------------------------------------------ the export
def save_with_widget_state(nb: NotebookPage) -> dict[str, Any]:
    """Save the notebook (``docmanager:save``) with "Save Widget State Automatically" on; return the file's JSON."""
    command = "@jupyter-widgets/jupyterlab-manager:saveWidgetState"
    nb.evaluate("""async (command) => {
        const app = window.jupyterapp;
        if (!app.commands.isToggled(command)) await app.commands.execute(command);
    }""", command)
    nb.wait_js("(command) => window.jupyterapp.commands.isToggled(command)", command, timeout=10,
               what="widget state saving turned on")
    nb.evaluate("""async () => {
        const app = window.jupyterapp;
        app.shell.activateById(window.__rwtPanel.id);
        await app.commands.execute('docmanager:save');
    }""")
    nb.wait_js("() => !window.__rwtPanel.context.model.dirty", timeout=10, what="the notebook saved")
    path = nb.server.root / nb.name
    saved = json.loads(path.read_text())
    state = saved.get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    assert state.get("state"), "Lab saved no widget state"
    return saved


def export_html(saved: dict[str, Any], tmp_path: Path, with_state: bool) -> Path:
    """``jupyter nbconvert --to html`` (this venv's) on a copy, plus a control cell whose raw
    text/html output would set ``window.__rwtControl``: the export does not sanitize."""
    nb = nbformat.from_dict(json.loads(json.dumps(saved)))
    if not with_state:
        nb.metadata.pop("widgets", None)
    control = nbformat.v4.new_code_cell("# rwt-control")
    control.outputs = [nbformat.v4.new_output("display_data", data={
        "text/html": '<img src=x onerror="window.__rwtControl=2">', "text/plain": "control"})]
    nb.cells.append(control)
    stem = "with-state" if with_state else "no-state"
    source = tmp_path / f"{stem}.ipynb"
    nbformat.write(nb, str(source))
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMETAPI_")}
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "nbconvert-config")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "jupyter"), "nbconvert", "--to", "html",
                             "--output-dir", str(tmp_path), str(source)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    assert proc.returncode == 0, out.decode(errors="replace")[-3000:]
    return tmp_path / f"{stem}.html"


def check_export(browser: BrowserSession, html_path: Path, with_state: bool) -> None:
    where = f"nbconvert HTML {'with' if with_state else 'without'} widget state"
    raw = html_path.read_text()
    context = browser.new_context()
    errors: list[str] = []
    try:
        # Offline, as a file: only file:// loads (the CDN scripts of the template are cut).
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                      else route.abort())
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(html_path.as_uri(), wait_until="load", timeout=30_000)
        page.wait_for_function("() => window.__rwtControl === 2", timeout=10_000)  # the control ran
        cells = page.evaluate("""() => Array.from(document.querySelectorAll('.jp-Cell')).map((c, i) => {
            const input = c.querySelector('.jp-InputArea');
            const m = input ? input.innerText.match(/# rwt-(hostile:[a-z]+|control)/) : null;
            const out = c.querySelector('.jp-OutputArea');
            return {i, tag: m ? m[1] : null, out: out ? out.innerText : ''};
        })""")
        ours = {c["tag"].split(":", 1)[1]: c for c in cells if c["tag"] and c["tag"].startswith("hostile:")}
        assert set(ours) >= {"extra", "retry", "action", "reason", "stuck", "echo", "urls", "table"}, (where, cells)
        # No output area of the notebook (the control's aside) holds anything a payload brought.
        for c in cells:
            root = (f"document.querySelectorAll('.jp-Cell')[{c['i']}].querySelector('.jp-OutputArea')"
                    " || document.createElement('div')")
            found = scan(page, root, allow_scripts=with_state)
            if c["tag"] == "control":  # the scan does see a payload
                assert any(b.startswith("<IMG>") for b in found) and any(b.startswith("onerror=") for b in found), found
            else:
                assert found == [], f"{where}: cell {c['i']} ({c['tag']}): {found}"
        for c in cells:
            if c["tag"] != "control":
                page.evaluate(f"() => ({POKE_JS})(document.querySelectorAll('.jp-Cell')[{c['i']}])")
        for part in page.locator(".rw-status, .rw-title").all()[:40]:
            if part.is_visible():
                part.hover(timeout=5000)
        time.sleep(0.3)
        assert pwned(page) == "undefined", f"{where}: a payload ran: window.__pwned = {pwned(page)} ({errors})"
        if not with_state:
            # GitHub/nbviewer: the static cards, hostile text as text, refused URLs announced.
            out = {name: c["out"] for name, c in ours.items()}
            assert ACTION in out["action"] and "SUCCESS" in out["action"], (where, out["action"])
            assert REASON in out["reason"] and CODE in out["reason"], (where, out["reason"])
            assert f"last seen: {STUCK_STATUS}" in out["stuck"], (where, out["stuck"])
            assert ECHO_FAILURE in out["echo"], (where, out["echo"])
            assert out["urls"].count(REFUSED) == len(BAD_URLS), (where, out["urls"])
            assert REASON in out["table"], (where, out["table"])
            videos = page.evaluate("() => Array.from(document.querySelectorAll('.jp-OutputArea video'))"
                                   ".map(v => v.getAttribute('src'))")
            assert videos and all(re.match(r"https?://", v) for v in videos), (where, videos)
            assert raw.count('class="rw-card ') == 6 + len(BAD_URLS), where  # six cards and the board
        else:
            # The state is embedded as script data: it must parse as JSON (no early </script>)
            # and carry the server text only escaped.
            state = page.evaluate("""() => JSON.parse(document.querySelector(
                'script[type="application/vnd.jupyter.widget-state+json"]').textContent)""")
            values = json.dumps(state)
            assert "&lt;img src=x onerror=" in values and "<img src=x onerror=" not in values, where
    finally:
        context.close()

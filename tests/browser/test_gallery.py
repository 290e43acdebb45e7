"""The gallery in real Chromium: a headless-run notebook exported to HTML and opened with no
internet, and the same notebook served live by Voilà (a teaching dashboard).

Both check what a reader sees: two captioned cards per row, side by side, each with its
prompt and seed, every video playable (the demo's small videos are embedded).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import nbformat
import pytest

from kernel_envs import NotebookRun

from .harness import free_port
from .test_reopen import export_html

pytestmark = [pytest.mark.browser, pytest.mark.kernel, pytest.mark.timeout(600)]

CELLS = [
    "%load_ext runway_widgets",
    '%runway_generate "a paper boat on a pond" "a glass boat on a pond" --seed 1 2 --demo --wait',
    'one = %runway_generate "a single boat" --seed 3 --demo --wait',
]
PROMPTS = ["a glass boat on a pond", "a glass boat on a pond", "a paper boat on a pond", "a paper boat on a pond"]

GALLERY_JS = """
() => {
  const grids = [...document.querySelectorAll('.rw-gallery .rw-grid')].filter(g => g.getClientRects().length);
  const single = [...document.querySelectorAll('.rw-card')].filter(c => !c.closest('.rw-gallery')
      && !c.closest('.rw-record') && c.getClientRects().length);
  return {
    grids: grids.map(g => {
      const cells = [...g.children];
      const rects = cells.map(c => c.getBoundingClientRect());
      const videos = cells.map(c => c.querySelector('video')).filter(v => v);
      return {
        columns: getComputedStyle(g).gridTemplateColumns.split(' ').length,
        tops: rects.map(r => Math.round(r.top)), lefts: rects.map(r => Math.round(r.left)),
        rights: rects.map(r => Math.round(r.right)),
        prompts: cells.map(c => (c.querySelector('.rw-prompt') || {}).innerText || ''),
        params: cells.map(c => (c.querySelector('.rw-params') || {}).innerText || ''),
        videos: videos.length,
        playable: videos.filter(v => v.readyState >= 1 && !v.error).length,
        overflow: videos.some((v, i) => v.getBoundingClientRect().right > rects[i].right + 1),
      };
    }),
    single: single.map(c => (c.querySelector('.rw-prompt') || {}).innerText || ''),
    widgetError: document.body.innerText.includes('Error displaying widget'),
  };
}
"""


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("gallery")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    source = work / "gallery.ipynb"
    nbformat.write(nb, str(source))
    return source


def wait_state(page: Any, timeout: float, ready: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    state = page.evaluate(GALLERY_JS)
    while not ready(state) and time.monotonic() < deadline:
        time.sleep(0.25)
        state = page.evaluate(GALLERY_JS)
    return state


def finished(state: dict[str, Any]) -> bool:
    grids = state["grids"]
    return bool(grids) and grids[0]["videos"] == 4 and grids[0]["playable"] == 4 and bool(state["single"])


def check_side_by_side(state: dict[str, Any]) -> None:
    [grid] = state["grids"]
    assert grid["columns"] == 2, grid
    tops, lefts = grid["tops"], grid["lefts"]
    assert tops[0] == tops[1] and tops[2] == tops[3] and tops[2] > tops[0], grid  # two rows of two
    assert lefts[0] == lefts[2] and lefts[1] == lefts[3] and lefts[1] >= grid["rights"][0], grid
    assert sorted(grid["prompts"]) == [f"“{p}”" for p in PROMPTS], grid
    assert sorted(p.split("seed ")[-1] for p in grid["params"]) == ["1", "1", "2", "2"], grid
    assert grid["videos"] == 4 and grid["playable"] == 4 and not grid["overflow"], grid
    assert state["single"] == ["“a single boat”"] and not state["widgetError"], state


@pytest.fixture(scope="module")
def executed(notebook: Path) -> Path:
    """The notebook run headless once (nbclient saves the widget state)."""
    run = NotebookRun(sys.executable, notebook, notebook.parent / "run").start()
    try:
        run.wait()
    finally:
        run.stop()
    return run.out_path


@pytest.mark.parametrize("keep_state", [True, False], ids=["with-widget-state", "without-widget-state"])
def test_exported_gallery_offline(executed: Path, keep_state: bool, browser_session: Any, tmp_path: Path) -> None:
    nb = nbformat.read(str(executed), as_version=4)
    if not keep_state:
        nb.metadata.pop("widgets", None)
    copy = tmp_path / "copy.ipynb"
    nbformat.write(nb, str(copy))
    page, _refused = browser_session.open_offline(export_html(copy))
    try:
        check_side_by_side(wait_state(page, 15.0, finished))
    finally:
        page.context.close()


@pytest.fixture
def voila(notebook: Path, tmp_path: Path) -> Iterator[str]:
    """Voilà serving the notebook on 127.0.0.1 (own process group, private Jupyter dirs)."""
    voila_bin = Path(sys.executable).with_name("voila")
    if not voila_bin.exists():
        pytest.skip("voila is not installed (pip install -e '.[test]')")
    port = free_port()
    home = tmp_path / "voila-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMETAPI_", "RUNWAYML_"))}
    env.update({"PATH": str(voila_bin.parent) + os.pathsep + env.get("PATH", ""),
                "JUPYTER_DATA_DIR": str(home / "data"), "JUPYTER_CONFIG_DIR": str(home / "config"),
                "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython")})
    shutil.copyfile(notebook, tmp_path / notebook.name)
    log = open(tmp_path / "voila.log", "w")
    proc = subprocess.Popen([str(voila_bin), notebook.name, "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
                             "--VoilaConfiguration.show_tracebacks=True"],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:  # listening is enough: a GET of the page would start a kernel of its own
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"voila did not start: {(tmp_path / 'voila.log').read_text()[-3000:]}")
                time.sleep(0.3)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        log.close()


def test_gallery_in_voila(voila: str, browser_session: Any) -> None:
    refused: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
            r.continue_()
        else:  # Voilà must work without the internet
            refused.append(r.request.url)
            r.abort()

    context = browser_session.new_context()
    context.route("**/*", route)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(voila, wait_until="domcontentloaded", timeout=120_000)
        state = wait_state(page, 150.0, finished)
        check_side_by_side(state)
        assert not errors, errors
        # Voila's own page template asks jsdelivr for Font Awesome (button icons); refused here,
        # and everything above still shows.  Nothing else may leave the machine.
        assert all("@fortawesome/fontawesome-free" in url for url in refused), refused
    finally:
        context.close()


GRID_JS = """
const live = node.querySelector('.runway-gallery-grid');
const done = node.querySelector('.rw-gallery .rw-grid');
const grid = live || done;
if (!grid) return null;
const cells = [...grid.children].filter(c => c.getClientRects().length);
const rects = cells.map(c => c.getBoundingClientRect());
return {
  live: !!live, n: cells.length,
  tops: rects.map(r => Math.round(r.top)), lefts: rects.map(r => Math.round(r.left)),
  prompts: cells.map(c => (c.querySelector('.rw-prompt') || {}).innerText || '').sort(),
  videos: cells.filter(c => c.querySelector('video')).length,
  errorShown: node.innerText.includes('Error displaying widget'),
};
"""


@pytest.mark.parametrize("flavour", ["lab", "notebook"])
def test_live_gallery_in_jupyter(flavour: str, open_notebook: Any) -> None:
    """While the tasks run: a widget grid, two captioned cards per row; at the end the static gallery."""
    import uuid

    nb = open_notebook(flavour, name=f"gallery-{uuid.uuid4().hex[:6]}.ipynb")
    nb.run_code("%load_ext runway_widgets")
    nb.run_code('%runway_generate "a paper boat on a pond" "a glass boat on a pond" --seed 1 2 --demo', label="gen")
    live = nb.wait_in_cell("gen", GRID_JS.replace("return {", "const s = {").rstrip() + "\nreturn s.live && s.n === 4 ? s : null;",
                           timeout=30, what="the live gallery with 4 cards")
    assert live["tops"][0] == live["tops"][1] and live["lefts"][1] > live["lefts"][0], live
    assert live["prompts"] == [f"“{p}”" for p in PROMPTS] and not live["errorShown"], live
    final = nb.wait_in_cell("gen", GRID_JS.replace("return {", "const s = {").rstrip()
                            + "\nreturn !s.live && s.videos === 4 ? s : null;",
                            timeout=90, what="the static gallery with 4 videos")
    assert final["n"] == 4 and final["tops"][0] == final["tops"][1] and final["tops"][2] > final["tops"][0], final
    assert final["prompts"] == live["prompts"] and not final["errorShown"], final

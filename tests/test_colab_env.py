"""Notebooks run in the kernels of other versions: Colab's, and ipykernel 7.0.1.

* ``.venv-colab`` (ipywidgets 7.7.1, ipykernel 6.17.1, IPython 7.34, as Colab ships):
  the quickstart executed there by nbclient (a runner started with that venv's python, so
  the kernel is that venv's), with the same final-state checks as tests/test_notebooks.py.
* Colab's code paths with a stand-in ``google.colab`` (tests/fake_colab on the kernel's
  PYTHONPATH, imported by an IPython startup file as Colab does): the key comes from
  ``userdata.get`` on the main thread; the watch runs in the foreground by default (the
  cell returns when the task is done, its outputs final); ``--background`` returns at once.
  A simulator runs in this process and accepts only the stand-in secret.
* ``.venv-ipk70`` (ipykernel 7.0.1, ipykernel#1450): a background watch, another cell, then
  ``rw.wait_all``; and a negative control with the workaround turned off
  (``RUNWAY_WIDGETS_CONTEXT_FIX=0``).

The venvs are built by ``make`` (targets ``.venv-colab/.installed``, ``.venv-ipk70/.installed``)
or, failing that, by the session fixtures here (tests/kernel_envs.py).  The runs a module's
selected tests need start together, then each test waits for its own.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any, Callable, Iterator

import nbformat
import pytest

from kernel_envs import FAKE_COLAB, REPO, NotebookRun, ensure_env, env_python, pins
from notebook_checks import (
    check_final_card,
    cell_seconds,
    cross_cell_problems,
    error_outputs,
    source_text,
    stray_outputs,
    watch_cells,
    widget_state,
)
from runway_widgets.simulator import Simulator, Timeline

pytestmark = [pytest.mark.kernel, pytest.mark.colab, pytest.mark.timeout(1500)]

#: Made up; stands for a Colab secret named COMETAPI_KEY.  The simulator accepts only this key.
COLAB_SECRET = "colab-secret-not-a-real-key-7f3a9c"
#: Every task of the stand-in Colab run; its length is what the foreground cell must wait for.
TASK = Timeline(invisible_for=0.3, submitted_for=0.5, queued_for=0.7, run_for=3.5)
TASK_SECONDS = TASK.invisible_for + TASK.not_start_for + TASK.submitted_for + TASK.queued_for + TASK.run_for


def _notebook(cells: list[str]) -> Any:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    return nb


FAKE_COLAB_CELLS = [
    # 0: a Colab-like kernel: google.colab loaded, no COMETAPI_KEY in the environment.
    "import os, sys, time\n"
    "import runway_widgets as rw\n"
    "%load_ext runway_widgets\n"
    "BASE = os.environ['RW_TEST_BASE_URL']\n"
    "# Creates tasks on the simulator with the same made-up key; the magic does not see this.\n"
    "maker = rw.Client(os.environ['FAKE_COLAB_SECRET'], BASE)\n"
    "('google.colab' in sys.modules, 'COMETAPI_KEY' in os.environ)",
    # 1: the default mode in Colab: foreground.
    "fg_id = maker.create_text_to_video('foreground', callback_url=BASE + '/callback')\n"
    "t0 = time.monotonic()\n"
    "fg = %runway_watch $fg_id --base-url $BASE --interval 0.5\n"
    "fg_seconds = time.monotonic() - t0",
    # 2
    "(fg_id, fg.done(), fg.outcome.value, round(fg_seconds, 3))",
    # 3: opting into background mode.
    "bg_id = maker.create_text_to_video('background', callback_url=BASE + '/callback')\n"
    "t0 = time.monotonic()\n"
    "bg = %runway_watch $bg_id --base-url $BASE --interval 0.5 --background\n"
    "bg_seconds = time.monotonic() - t0\n"
    "bg_done_at_return = bg.done()",
    # 4
    "time.sleep(0.5)\n6 * 7",
    # 5: a headless run must end waiting for the background watch.
    "_ = rw.wait_all(60)\n"
    "(bg_id, bg_done_at_return, round(bg_seconds, 3), bg.outcome.value)",
]

IPK70_CELLS = [
    "import io, logging\n"
    "_log = io.StringIO()\n"
    "logging.getLogger('runway_widgets').addHandler(logging.StreamHandler(_log))\n"
    "%load_ext runway_widgets",
    "%runway_watch --demo",
    "import time\ntime.sleep(1)\n6 * 7",
    "import json\n"
    "import runway_widgets as rw\n"
    "_ = rw.wait_all(60)\n"
    "# What the kernel itself holds (not what nbclient recorded): did the card's updates run?\n"
    "from runway_widgets import notebook as _nbm\n"
    "print('KERNEL_SIDE ' + json.dumps({'outcomes': [w.outcome.value for w in _],\n"
    "    'cards': [[c.bar.value, c.bar.bar_style, v._finalized] for v in list(_nbm._views.values())\n"
    "              for c in v.widget.cards.values()],\n"
    "    'log': _log.getvalue()[-4000:]}))",
]

RUN_NAMES = ("fake_colab", "colab_quickstart", "colab_teaching", "ipk70_fix_on", "ipk70_fix_off")  # start order


@pytest.fixture(scope="session")
def colab_env() -> Path:
    return ensure_env("colab")


@pytest.fixture(scope="session")
def ipk70_env() -> Path:
    return ensure_env("ipk70")


class RunPool:
    """Starts notebook runs (overlapping), hands each to the fixture that waits for it."""

    def __init__(self, request: pytest.FixtureRequest, tmp: pytest.TempPathFactory) -> None:
        self.request = request
        self.tmp = tmp
        self.runs: dict[str, NotebookRun] = {}
        self.sim: Simulator | None = None
        self.userdata_log: Path | None = None

    def start(self, name: str) -> None:
        if name not in self.runs:
            starter: Callable[[], NotebookRun] = getattr(self, f"_start_{name}")
            self.runs[name] = starter().start()

    def get(self, name: str) -> NotebookRun:
        self.start(name)
        run = self.runs[name]
        return run if run.summary else run.wait()

    def close(self) -> None:
        for run in self.runs.values():
            run.stop()
        if self.sim is not None:
            self.sim.stop()

    def _written(self, name: str, cells: list[str]) -> tuple[Path, Path]:
        workdir = self.tmp.mktemp(name)
        source = workdir / "src" / f"{name}.ipynb"
        source.parent.mkdir()
        nbformat.write(_notebook(cells), source)
        return source, workdir / "run"

    def _start_colab_quickstart(self) -> NotebookRun:
        self.request.getfixturevalue("colab_env")
        return NotebookRun(env_python("colab"), REPO / "notebooks" / "01_quickstart.ipynb",
                           self.tmp.mktemp("colab_quickstart"))

    def _start_colab_teaching(self) -> NotebookRun:
        self.request.getfixturevalue("colab_env")
        return NotebookRun(env_python("colab"), REPO / "notebooks" / "03_teaching.ipynb",
                           self.tmp.mktemp("colab_teaching"))

    def _start_fake_colab(self) -> NotebookRun:
        self.request.getfixturevalue("colab_env")
        self.sim = Simulator(keys=[COLAB_SECRET], default_timeline=TASK).start()
        source, workdir = self._written("fake_colab", FAKE_COLAB_CELLS)
        self.userdata_log = source.parent / "userdata.log"
        return NotebookRun(
            env_python("colab"), source, workdir, pythonpath=[str(FAKE_COLAB)],
            ipython_startup="import google.colab  # Colab loads it in every kernel\n",
            env={"FAKE_COLAB_SECRET": COLAB_SECRET, "FAKE_COLAB_USERDATA_LOG": str(self.userdata_log),
                 "RW_TEST_BASE_URL": self.sim.base_url})

    def _start_ipk70(self, name: str, fix: bool) -> NotebookRun:
        self.request.getfixturevalue("ipk70_env")
        source, workdir = self._written(name, IPK70_CELLS)
        return NotebookRun(env_python("ipk70"), source, workdir,
                           env={} if fix else {"RUNWAY_WIDGETS_CONTEXT_FIX": "0"})

    def _start_ipk70_fix_on(self) -> NotebookRun:
        return self._start_ipk70("ipk70_fix_on", True)

    def _start_ipk70_fix_off(self) -> NotebookRun:
        return self._start_ipk70("ipk70_fix_off", False)


@pytest.fixture(scope="module")
def pool(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunPool]:
    runs = RunPool(request, tmp_path_factory)
    needed = set()
    for item in request.session.items:
        if getattr(item, "module", None) is request.module:
            needed |= set(getattr(item, "fixturenames", ())) & set(RUN_NAMES)
    try:
        for name in RUN_NAMES:
            if name in needed:
                runs.start(name)
        yield runs
    finally:
        runs.close()


def _read(run: NotebookRun) -> Any:
    return nbformat.read(run.out_path, as_version=4)


@pytest.fixture(scope="module")
def colab_quickstart(pool: RunPool) -> NotebookRun:
    return pool.get("colab_quickstart")


@pytest.fixture(scope="module")
def colab_teaching(pool: RunPool) -> NotebookRun:
    return pool.get("colab_teaching")


@pytest.fixture(scope="module")
def fake_colab(pool: RunPool) -> NotebookRun:
    return pool.get("fake_colab")


@pytest.fixture(scope="module")
def ipk70_fix_on(pool: RunPool) -> NotebookRun:
    return pool.get("ipk70_fix_on")


@pytest.fixture(scope="module")
def ipk70_fix_off(pool: RunPool) -> NotebookRun:
    return pool.get("ipk70_fix_off")


def _result(nb: Any, index: int) -> Any:
    [out] = [o for o in nb.cells[index].outputs if o.output_type == "execute_result"]
    return ast.literal_eval(out["data"]["text/plain"])


def _kernel_side(nb: Any) -> dict[str, Any]:
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    [line] = [ln for ln in text.splitlines() if ln.startswith("KERNEL_SIDE ")]
    return json.loads(line[len("KERNEL_SIDE "):])


# -- Colab's versions -----------------------------------------------------------------------------

def test_colab_venv_has_colabs_versions(colab_quickstart: NotebookRun) -> None:
    info = colab_quickstart.info
    assert Path(info["prefix"]) == REPO / ".venv-colab", info
    assert {k: info["versions"][k] for k in pins("colab")} == pins("colab")
    assert not info["google_colab_loaded"]  # plain Jupyter with Colab's versions here


def test_colab_versions_quickstart_ends_final(colab_quickstart: NotebookRun) -> None:
    nb = _read(colab_quickstart)
    assert error_outputs(nb) == []
    assert stray_outputs(nb) == []
    assert cross_cell_problems(nb) == []
    cells = watch_cells(nb)
    assert len(cells) == 4
    problems = [p for wc in cells for p in check_final_card(nb, wc)]
    assert problems == [], "\n".join(problems)


def test_colab_versions_generate_card_and_gallery_end_final(colab_teaching: NotebookRun) -> None:
    """``%runway_generate`` (captioned card, gallery: an ipywidgets 7 GridBox) under Colab's versions."""
    nb = _read(colab_teaching)
    assert not error_outputs(nb) and not stray_outputs(nb)
    cells = [wc for wc in watch_cells(nb) if "%runway_generate" in wc.source]
    assert [wc.tasks for wc in cells] == [1, 4]
    for wc in cells:
        assert not check_final_card(nb, wc), check_final_card(nb, wc)
    gallery = cells[1].cards[0]["data"]["text/html"]
    assert gallery.count('class="rw-cell"') == 4 and gallery.count("<video") == 4


def test_colab_versions_saved_state_is_ipywidgets_7(colab_quickstart: NotebookRun) -> None:
    state = widget_state(_read(colab_quickstart))
    bars = [m for m in state.values() if m["model_name"] == "FloatProgressModel"]
    assert {m["model_module_version"] for m in bars} == {"1.5.0"}  # ipywidgets 7's controls
    # Their values are not checked: once a watch ends no output refers to these models (the
    # card output became static HTML, checked by check_final_card), and the last trait
    # messages of a thread may carry a finished cell's parent, which nbclient then skips.
    assert len(bars) == 6


# -- Colab's code paths (stand-in google.colab) -----------------------------------------------------

def test_fake_colab_kernel_is_colab_like(fake_colab: NotebookRun) -> None:
    nb = _read(fake_colab)
    assert fake_colab.info["google_colab_loaded"] and not fake_colab.info["has_cometapi_key_env"]
    assert fake_colab.info["versions"]["ipywidgets"] == "7.7.1"
    assert _result(nb, 0) == (True, False)
    assert error_outputs(nb) == [] and stray_outputs(nb) == [] and cross_cell_problems(nb) == []


def test_fake_colab_key_comes_from_userdata_on_the_main_thread(pool: RunPool, fake_colab: NotebookRun) -> None:
    assert pool.userdata_log is not None and pool.sim is not None
    calls = [tuple(line.split("\t")) for line in pool.userdata_log.read_text().splitlines()]
    assert calls == [("COMETAPI_KEY", "MainThread")] * 2  # one per %runway_watch, both on the main thread
    polls = [r for r in pool.sim.requests if r.path.startswith("/runway/feed")]
    assert polls and all(r.key_ok for r in polls) and any(r.status == 200 for r in polls), polls[:5]


def test_fake_colab_default_is_foreground(pool: RunPool, fake_colab: NotebookRun) -> None:
    nb = _read(fake_colab)
    fg_id, done, outcome, seconds = _result(nb, 2)
    assert (done, outcome) == (True, "succeeded")
    # The task was created just before the magic; the cell could only return once it had ended,
    # and (polling every 0.5 s) returns soon after.
    assert TASK_SECONDS - 0.25 <= seconds <= TASK_SECONDS + 4, seconds
    assert cell_seconds(nb.cells[1]) >= TASK_SECONDS - 0.25
    assert pool.sim is not None
    created = [r.time for r in pool.sim.requests_for(fg_id) if r.path == "/runway/pro/generate"]
    last_poll = max(r.time for r in pool.sim.requests_for(fg_id) if r.path == "/runway/feed")
    assert created and last_poll - created[0] >= TASK_SECONDS - 0.05  # it polled until the end
    # The cell's own outputs are final when it returns (no later update needed).
    [wc] = [w for w in watch_cells(nb) if w.index == 1]
    assert check_final_card(nb, wc) == []


def test_fake_colab_background_returns_at_once(fake_colab: NotebookRun) -> None:
    nb = _read(fake_colab)
    assert "bg_done_at_return" in source_text(nb.cells[3])
    bg_id, done_at_return, seconds, outcome = _result(nb, 5)
    assert not done_at_return and seconds < 2.0 and seconds < TASK_SECONDS / 2, seconds
    assert cell_seconds(nb.cells[3]) < 2.5
    assert outcome == "succeeded"
    [wc] = [w for w in watch_cells(nb) if w.index == 3]
    assert check_final_card(nb, wc) == []  # final thanks to the wait_all cell


def test_fake_colab_secret_not_in_saved_notebook(fake_colab: NotebookRun) -> None:
    assert COLAB_SECRET.encode() not in fake_colab.out_path.read_bytes()


# -- ipykernel 7.0.1 (ipykernel#1450) ----------------------------------------------------------------

def test_ipk70_venv_versions(ipk70_fix_on: NotebookRun) -> None:
    assert Path(ipk70_fix_on.info["prefix"]) == REPO / ".venv-ipk70"
    assert ipk70_fix_on.info["versions"]["ipykernel"] == "7.0.1"


def test_ipk70_poller_updates_the_card(ipk70_fix_on: NotebookRun) -> None:
    """With the workaround (the default), the card's updates run in the kernel: not killed."""
    nb = _read(ipk70_fix_on)
    assert error_outputs(nb) == [] and stray_outputs(nb) == []
    side = _kernel_side(nb)
    assert side["outcomes"] == ["succeeded"]
    assert side["cards"] == [[1.0, "success", True]], side
    assert "LookupError" not in side["log"], side["log"]


def test_ipk70_negative_control_without_the_workaround(ipk70_fix_off: NotebookRun) -> None:
    """RUNWAY_WIDGETS_CONTEXT_FIX=0 on 7.0.1: the first trait set from the poller thread raises
    LookupError(shell_parent); Watch._deliver logs it and detaches the card, which stays at
    'connecting' / 0 % and is never replaced by its final static card (the poller itself goes
    on, so the watch still succeeds)."""
    nb = _read(ipk70_fix_off)
    side = _kernel_side(nb)
    assert side["outcomes"] == ["succeeded"]
    assert side["cards"] == [[0.0, "info", False]], side
    assert "LookupError" in side["log"] and "shell_parent" in side["log"], side["log"]
    [wc] = watch_cells(nb)
    problems = check_final_card(nb, wc)
    assert any("still needs a widget model" in p for p in problems), problems  # never became final


def test_ipk70_saved_notebook_shows_final_state(ipk70_fix_on: NotebookRun) -> None:
    nb = _read(ipk70_fix_on)
    [wc] = watch_cells(nb)
    assert check_final_card(nb, wc) == []

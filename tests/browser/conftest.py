"""Fixtures for the real-browser tests (JupyterLab and Notebook 7 in Debian's Chromium).

* ``browser_sim``: one simulator for the whole session, on 127.0.0.1; its URL and a made-up key
  reach every kernel through the Jupyter server's environment.
* ``jupyter_servers``: a :class:`~browser.harness.ServerPool`, one server per flavour (both
  booted in parallel at the first browser test) stopped at the end of the session.
* ``browser_session``: one headless Chromium for the session.
* ``shared_page`` / ``scenario_page``: one notebook page per flavour (parametrized over
  "lab" and "notebook") shared by all scenarios, which append their own cells.
* ``open_notebook``: a factory opening a fresh notebook page in a flavour; closed (kernel shut
  down) at the end of the test.

A failing browser test gets a screenshot of every open page in ``tests/artifacts/screenshots/``
and the tail of each server's log in its report.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from typing import Callable, Iterator

import pytest

import runway_widgets
from runway_widgets.simulator import Simulator, Timeline

from .harness import CHROMIUM, FLAVOURS, BrowserSession, NotebookPage, ServerPool

#: Made up: the simulator accepts any key; never a real one.
BROWSER_FAKE_KEY = "browser-test-key-not-secret"


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Overrides the suite-wide guard: Playwright's event loop lazily grows a (non-daemon)
    ``asyncio_N`` executor pool that lives as long as the session's browser. Threads of ours
    and any other new non-daemon thread still fail the test."""
    before = set(threading.enumerate())
    yield
    runway_widgets.stop_all("test teardown")
    deadline = time.monotonic() + 5.0
    while True:
        leaked = [t for t in threading.enumerate()
                  if t not in before and t.is_alive() and not t.name.startswith("asyncio_")
                  and (t.name.startswith(("runway-widgets", "runway_widgets")) or not t.daemon)]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not leaked, f"threads leaked: {[t.name for t in leaked]}"


@pytest.fixture(scope="session")
def browser_sim() -> Iterator[Simulator]:
    server = Simulator(default_timeline=Timeline.fast())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def jupyter_servers(browser_sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    pool = ServerPool(tmp_path_factory.mktemp("jupyter"),
                      env={"COMETAPI_BASE_URL": browser_sim.base_url, "COMETAPI_KEY": BROWSER_FAKE_KEY})
    _pools.append(pool)
    try:
        pool.start(*FLAVOURS)  # both boot in parallel
        yield pool
    finally:
        _pools.remove(pool)
        pool.close()


@pytest.fixture(scope="session")
def browser_session() -> Iterator[BrowserSession]:
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing (make chromium)")
    session = BrowserSession()
    try:
        yield session
    finally:
        session.close()


OpenNotebook = Callable[..., NotebookPage]


def _opener(pool: ServerPool, browser: BrowserSession, opened: list[NotebookPage]) -> OpenNotebook:
    def open_notebook(flavour: str, cells: tuple[str, ...] | list[str] = (), name: str | None = None) -> NotebookPage:
        server = pool.get(flavour)
        page = NotebookPage(server, browser, name or f"t-{uuid.uuid4().hex[:8]}.ipynb", cells)
        opened.append(page)
        return page.open()
    return open_notebook


@pytest.fixture
def open_notebook(jupyter_servers: ServerPool, browser_session: BrowserSession) -> Iterator[OpenNotebook]:
    """Open pages for one test; closed (kernel shut down) after it."""
    opened: list[NotebookPage] = []
    yield _opener(jupyter_servers, browser_session, opened)
    for page in opened:
        page.close()


@pytest.fixture(scope="session", params=FLAVOURS)
def shared_page(request: pytest.FixtureRequest, jupyter_servers: ServerPool,
                browser_session: BrowserSession) -> Iterator[NotebookPage]:
    """One notebook page (and kernel) per flavour, shared by every scenario of the session.

    Opening a page costs ~4-5 s, so scenarios append their own cells to this one (use
    distinct variable names). Cell 0 imports threading, time and ipywidgets as W. pytest
    groups the tests by flavour, so each page is opened once.
    """
    opened: list[NotebookPage] = []
    page = _opener(jupyter_servers, browser_session, opened)(
        request.param, cells=["import threading, time\nimport ipywidgets as W"], name=f"shared-{request.param}.ipynb")
    page.run_cell(0)
    try:
        yield page
    finally:
        for p in opened:
            p.close()


@pytest.fixture
def scenario_page(shared_page: NotebookPage, request: pytest.FixtureRequest) -> Iterator[NotebookPage]:
    """The shared page of the current flavour, with an idle kernel; fails the test on any
    uncaught JavaScript error the scenario caused."""
    shared_page.ensure_idle()
    errors_before = len(shared_page.page_errors)
    shared_page.note(f"start {request.node.name}")
    yield shared_page
    shared_page.note(f"end {request.node.name}")
    new_errors = shared_page.page_errors[errors_before:]
    assert not new_errors, f"uncaught errors in the page: {new_errors}"


# --------------------------------------------------------------- failure artefacts
_pools: list[ServerPool] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed or "tests/browser/" not in item.nodeid.replace("\\", "/"):
        return
    shots = []
    for page in list(NotebookPage.open_pages):
        path = page.screenshot(f"{item.name}")
        if path is not None:
            shots.append(str(path))
        if page.console_errors or page.page_errors:
            report.sections.append((f"browser console ({page.server.flavour} {page.name})",
                                    "\n".join(page.console_errors[-30:] + page.page_errors[-30:])))
    if shots:
        report.sections.append(("screenshots", "\n".join(shots)))
    for pool in _pools:
        for server in pool.servers.values():
            report.sections.append((f"jupyter {server.flavour} server log", server.log_tail(60)))


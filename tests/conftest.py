"""Shared fixtures: a real simulator on a loopback port, and a guard against leaked threads."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

import runway_widgets
from runway_widgets import api
from runway_widgets.scheduler import shutdown_scheduler
from runway_widgets.simulator import Simulator, Timeline
from helpers import FAKE_KEY


# Tests never write the task journal into the real home: a session folder from the start (for
# session fixtures and anything they spawn), and a fresh one per test (the autouse fixture
# below).  Subprocesses and kernels inherit it through os.environ.
_SESSION_HOME = tempfile.mkdtemp(prefix="rw-test-home-")
os.environ["RUNWAY_WIDGETS_HOME"] = _SESSION_HOME
atexit.register(shutil.rmtree, _SESSION_HOME, True)

# A CI runner may start us as a background job of a non-interactive shell, which ignores
# SIGINT: Ctrl-C tests (interrupt_main, SIGINT to a child) would then test nothing.  Put
# Python's handler back; children then get the default disposition on exec too.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def journal_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own task-journal folder (``$RUNWAY_WIDGETS_HOME``), apart from its tmp_path."""
    home = tmp_path_factory.mktemp("rw-home")
    monkeypatch.setenv("RUNWAY_WIDGETS_HOME", str(home))
    return home


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> Iterator[Simulator]:
    """A simulator on 127.0.0.1 (port 0) with fast timelines; any key is accepted.

    ``@pytest.mark.sim_options(refresh_period=2.0, ...)`` passes options to the Simulator
    (e.g. one refresh loop for all tasks, at a random phase).
    """
    marker = request.node.get_closest_marker("sim_options")
    server = Simulator(**{"default_timeline": Timeline.fast(), **(marker.kwargs if marker else {})})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening: connections to it are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, sim: Simulator) -> Iterator[InteractiveShell]:
    """A real IPython shell (no kernel) with the extension loaded, pointed at ``sim``."""
    monkeypatch.setenv("COMETAPI_KEY", FAKE_KEY)
    monkeypatch.setenv("COMETAPI_BASE_URL", sim.base_url)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "runway_widgets")
    try:
        yield ip
    finally:
        ip.run_line_magic("unload_ext", "runway_widgets")
        ip.user_ns.pop("h", None)


@pytest.fixture
def client(sim: Simulator) -> Iterator[runway_widgets.Client]:
    c = runway_widgets.Client(FAKE_KEY, sim.base_url, read_timeout=5.0, deadline=10.0)
    try:
        yield c
    finally:
        c.close()


def _ours(thread: threading.Thread) -> bool:
    return thread.name.startswith("runway-widgets") or thread.name.startswith("runway_widgets")


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread of ours (or any new non-daemon thread) running."""
    before = set(threading.enumerate())
    yield
    runway_widgets.stop_all("test teardown")
    shutdown_scheduler()
    api.shutdown_downloads()
    deadline = time.monotonic() + 5.0
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and (_ours(t) or not t.daemon)]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not leaked, f"threads leaked: {[t.name for t in leaked]}"

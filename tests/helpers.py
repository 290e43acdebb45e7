"""Small helpers the tests share: the made-up key, short simulator timelines, a CLI run's result.

(Fixtures live in conftest.py; these are plain values and functions a test imports.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from runway_widgets.simulator import Timeline

FAKE_KEY = "test-key-not-secret"  # made up; the simulator accepts any key


def instant(**changes: Any) -> Timeline:
    """A task that has already succeeded when first polled (override any phase)."""
    return Timeline(**{"invisible_for": 0, "submitted_for": 0, "queued_for": 0, "run_for": 0, **changes})


def quick(**changes: Any) -> Timeline:
    """A task through every phase in about half a second (override any phase)."""
    return Timeline(**{"invisible_for": 0, "submitted_for": 0.1, "queued_for": 0.1, "run_for": 0.3, **changes})


@dataclass
class Run:
    """What a finished ``runway-watch`` process left: its exit code and output."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def sentence(self) -> str:
        """The one ``runway-watch: ...`` line on stderr (and no traceback, no escape codes anywhere)."""
        assert "Traceback" not in self.err and "Traceback" not in self.out, self
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith("runway-watch: ") and lines[0][-1] in ".)]", lines[0]
        assert "\x1b" not in self.err
        return lines[0]


def communicate(proc: subprocess.Popen[str], timeout: float = 60.0) -> tuple[int, str, str]:
    """Wait for ``proc`` (at most ``timeout`` s) and return (exit code, stdout, stderr).

    A process that outlives the timeout is killed with its whole process group, by pid
    (it was started with ``start_new_session=True``): a hang fails the test, not the suite.
    """
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return proc.returncode, out, err


def stop_group(proc: subprocess.Popen[str], grace: float = 10.0) -> None:
    """SIGTERM ``proc``'s process group (by pid), then SIGKILL it if it has not ended after ``grace`` s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(grace)


def part_file_growing(folder: Path, at_least: int = 1_000_000) -> Callable[[], bool]:
    """A predicate: a ``.part`` download in ``folder`` holds at least ``at_least`` bytes."""
    def check() -> bool:
        try:
            return any(p.name.endswith(".part") and p.stat().st_size >= at_least for p in folder.iterdir())
        except OSError:  # the folder does not exist yet, or the file just went
            return False
    return check


# -- running a child as uid 65534 (root ignores permission bits; "nobody" does not) --------------

NOBODY = 65534
REPO = Path(__file__).resolve().parents[1]


def drop_to_nobody() -> None:
    """``preexec_fn`` for a child that runs as nobody (65534), with no supplementary groups."""
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def nobody_python() -> tuple[list[str], dict[str, str]]:
    """An interpreter uid 65534 can run with this package importable: ours, or the system's
    (same version) with our site-packages and checkout on ``PYTHONPATH``.  Each is tried by
    importing the package as nobody, so a checkout nobody cannot enter (a clone under a 0700
    folder) skips the test instead of failing it."""
    site = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
    candidates = [([sys.executable], {}),
                  ([f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"],
                   {"PYTHONPATH": os.pathsep.join([str(REPO), site])})]
    for argv, extra in candidates:
        try:
            probe = subprocess.run([*argv, "-c", "import runway_widgets.cli"], env={**os.environ, **extra},
                                   preexec_fn=drop_to_nobody, cwd="/", capture_output=True, timeout=60)
        except OSError:
            continue
        if probe.returncode == 0:
            return argv, extra
    pytest.skip("no Python interpreter that uid 65534 may run with this checkout importable "
                "(is the checkout under a folder only its owner can enter?)")

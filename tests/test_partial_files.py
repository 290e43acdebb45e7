"""No partial files, sane modes: a process ended mid-download leaves no ``.part`` file behind.

Real processes and signals: the CLI and small scripts as subprocesses (SIGTERM, SIGHUP,
normal interpreter exit, a program's own SIGTERM handler, a ``nohup``-style ignored
SIGHUP) and a real kernel through jupyter_client (restart, shutdown, SIGTERM), each while
a 200 MB video trickles in through a throttling relay.  ``kill -9`` cannot be caught and is
not tested: it leaves the partial file (the README says so).
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from runway_widgets import Client
from runway_widgets.download import save_video
from runway_widgets.simulator import Simulator, Timeline
from throttle import Throttle, slow_task

from helpers import FAKE_KEY, communicate, part_file_growing



@pytest.fixture
def slow_video(sim: Simulator) -> Iterator[str]:
    """A finished task whose 200 MB video takes about a minute to arrive."""
    throttle = Throttle(sim.port)
    try:
        yield slow_task(sim, throttle, FAKE_KEY)
    finally:
        throttle.close()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def part_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.name.endswith(".part"))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def env_for(sim: Simulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMETAPI_")}
    env.update(COMETAPI_KEY=FAKE_KEY, COMETAPI_BASE_URL=sim.base_url, PYTHONIOENCODING="utf-8")
    return env


def start(argv: list[str], sim: Simulator) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                            env=env_for(sim), start_new_session=True)


# -- the CLI and scripts --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_cli_terminated_mid_download_leaves_no_partial_file(sim: Simulator, slow_video: str, tmp_path: Path,
                                                            signum: int) -> None:
    folder = tmp_path / "cli"
    proc = start([sys.executable, "-m", "runway_widgets.cli", slow_video, "--interval", "0.1",
                  "--save", f"{folder}{os.sep}"], sim)
    try:
        wait_until(part_file_growing(folder), 30, "the download to start")
        sent = time.monotonic()
        proc.send_signal(signum)
        code, out, err = communicate(proc, 10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    print(f"{signal.Signals(signum).name}: the CLI ended {took * 1000:.0f} ms after the signal")
    assert code == -signum, (code, out, err)  # it still dies of the signal, as without us
    assert took < 2.0
    assert "Traceback" not in err, err
    assert leftovers(folder) == []


SCRIPT = """
import os, signal, sys, time
import runway_widgets as rw

task, folder, mode = sys.argv[1:]
if mode == "own-handler":
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(3))
elif mode == "nohup":
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
handle = rw.watch(task, save=folder + os.sep, interval=0.1)
print(signal.getsignal(signal.SIGTERM).__module__, flush=True)
if mode == "exit":
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
            name.endswith(".part") and os.path.getsize(os.path.join(folder, name)) > 1_000_000
            for name in (os.listdir(folder) if os.path.isdir(folder) else [])):
        time.sleep(0.02)
    sys.exit(0)  # the download is still running on its (daemon) thread
handle.wait()
"""


def run_script(sim: Simulator, task: str, folder: Path, mode: str) -> subprocess.Popen[str]:
    return start([sys.executable, "-c", SCRIPT, task, str(folder), mode], sim)


def test_interpreter_exit_mid_download_leaves_no_partial_file(sim: Simulator, slow_video: str,
                                                              tmp_path: Path) -> None:
    folder = tmp_path / "exit"
    proc = run_script(sim, slow_video, folder, "exit")
    code, out, err = communicate(proc, 40)
    assert code == 0, (out, err)
    assert out.split() == ["runway_widgets.partials"]  # the handler is ours while saving
    assert leftovers(folder) == []


def test_a_programs_own_sigterm_handler_still_decides(sim: Simulator, slow_video: str, tmp_path: Path) -> None:
    folder = tmp_path / "own"
    proc = run_script(sim, slow_video, folder, "own-handler")
    try:
        wait_until(part_file_growing(folder), 30, "the download to start")
        proc.send_signal(signal.SIGTERM)
        code, out, err = communicate(proc, 10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert code == 3, (code, out, err)  # its handler ran (sys.exit(3)); atexit then cleaned up
    assert leftovers(folder) == []


def test_an_ignored_sighup_stays_ignored(sim: Simulator, slow_video: str, tmp_path: Path) -> None:
    folder = tmp_path / "nohup"
    proc = run_script(sim, slow_video, folder, "nohup")
    try:
        wait_until(part_file_growing(folder), 30, "the download to start")
        proc.send_signal(signal.SIGHUP)
        before = part_size(folder)
        wait_until(lambda: part_size(folder) > before + 1_000_000, 10, "the download to go on after SIGHUP")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        code, out, err = communicate(proc, 10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert code == -signal.SIGTERM, (code, out, err)
    assert leftovers(folder) == []


def test_no_handler_is_installed_at_import_or_without_a_save(sim: Simulator) -> None:
    code = ("import signal, sys, runway_widgets as rw\n"
            "print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, signal.getsignal(signal.SIGHUP) is signal.SIG_DFL)\n"
            "rw.watch(sys.argv[1], interval=0.1).wait(timeout=20)\n"
            "print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, signal.getsignal(signal.SIGHUP) is signal.SIG_DFL)\n")
    task = sim.add_task(FAKE_KEY, Timeline(invisible_for=0, submitted_for=0, queued_for=0, run_for=0.2))
    result, out, err = communicate(start([sys.executable, "-c", code, task], sim), 40)
    assert result == 0, err
    assert out.splitlines() == ["True True"] * 2


# -- a real kernel -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["restart", "shutdown", "SIGTERM"])
def test_kernel_ended_mid_download_leaves_no_partial_file(sim: Simulator, slow_video: str, tmp_path: Path,
                                                          how: str) -> None:
    from jupyter_client import KernelManager

    folder = tmp_path / "kernel"
    env = env_for(sim)
    env.update(IPYTHONDIR=str(tmp_path / "ipython"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env, cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        errors: list[str] = []

        def keep(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "error":
                errors.append(msg["content"]["ename"])

        reply = kc.execute_interactive(
            f"%load_ext runway_widgets\nh = %runway_watch {slow_video} --background --interval 0.1 --save {folder}/",
            timeout=60, output_hook=keep)
        assert reply["content"]["status"] == "ok", errors
        wait_until(part_file_growing(folder), 30, "the download to start in the kernel")
        process = km.provisioner.process  # type: ignore[union-attr]
        started = time.monotonic()
        if how == "restart":
            km.restart_kernel(now=False)  # what a frontend's "Restart Kernel" does
        elif how == "shutdown":
            km.shutdown_kernel(now=False)  # "Shut Down Kernel"
        else:
            km.signal_kernel(signal.SIGTERM)  # what jupyter_client sends a kernel slow to shut down
        wait_until(lambda: process.poll() is not None, 15, "the old kernel to end")
        took = time.monotonic() - started
        print(f"{how}: the kernel ended after {took:.2f} s, status {process.returncode}")
        assert process.returncode == (-signal.SIGTERM if how == "SIGTERM" else 0)  # never killed with -9
        assert leftovers(folder) == []
    finally:
        kc.stop_channels()
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        km.cleanup_resources()


# -- modes -------------------------------------------------------------------------------------------------------------


def mode_of(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask,expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_the_umasks_mode(sim: Simulator, client: Client, tmp_path: Path, umask: int,
                                         expected: int) -> None:
    url = client.fetch(sim.add_task(FAKE_KEY, Timeline(invisible_for=0, submitted_for=0, queued_for=0,
                                                         run_for=0))).result_url
    assert url is not None
    old = os.umask(umask)
    try:
        saved = save_video(url, tmp_path / "clip.mp4", "t1")
    finally:
        os.umask(old)
    assert mode_of(saved) == expected


def test_overwriting_keeps_the_files_mode(sim: Simulator, client: Client, tmp_path: Path) -> None:
    url = client.fetch(sim.add_task(FAKE_KEY, Timeline(invisible_for=0, submitted_for=0, queued_for=0,
                                                         run_for=0))).result_url
    assert url is not None
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"an older video")
    target.chmod(0o640)
    old = os.umask(0o022)
    try:
        save_video(url, target, "t2")
    finally:
        os.umask(old)
    assert mode_of(target) == 0o640 and target.stat().st_size > 1000
    assert leftovers(tmp_path) == ["clip.mp4"]

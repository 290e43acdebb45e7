"""Starting and stopping: Ctrl-C, ``%reload_ext``, many watches, and a kernel shutting down.

Nothing of ours may outlive what started it: no thread named ``runway-widgets-*`` (nor any
other new one), no half-written video (no ``*.part`` file, no target file), no memory that
grows with the number of watches started and stopped, no kernel kept alive by our threads.

Interrupting a download needs a download that is still running when the interrupt comes:
the simulator serves its synthetic video through a local relay that throttles it to a few
MB/s, so a 200 MB video would take most of a minute.
"""

from __future__ import annotations

import _thread
import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests
from IPython.core.interactiveshell import InteractiveShell

import runway_widgets
from runway_widgets import Client, Outcome, RequestBudget, watch
from runway_widgets.scheduler import Scheduler
from runway_widgets.simulator import Simulator, Timeline
from throttle import Throttle, slow_task
from helpers import FAKE_KEY, part_file_growing, stop_group

BIG = 200_000_000  # bytes of synthetic video: minutes through the relay


def ours() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith(("runway-widgets", "runway_widgets")))


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def threads_back_to(baseline: set[threading.Thread], timeout: float = 8.0, servers_too: bool = False) -> None:
    """Every thread started since ``baseline`` ends (idle workers linger 2 s by design).

    The test's own simulator keeps a handler thread per open keep-alive connection (the
    shared client's pool keeps one): those are the server's, not ours, unless ``servers_too``.
    """
    def extra() -> list[str]:
        return sorted(t.name for t in threading.enumerate() if t not in baseline and t.is_alive()
                      and (servers_too or "process_request_thread" not in t.name))

    try:
        wait_until(lambda: not extra(), timeout, "threads to end")
    except AssertionError:
        raise AssertionError(f"threads left behind: {extra()}") from None


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def slow_video(sim: Simulator) -> Iterator[str]:
    """A finished task whose (validly signed) 200 MB video comes through the throttle."""
    throttle = Throttle(sim.port)
    try:
        yield slow_task(sim, throttle, FAKE_KEY, BIG)
    finally:
        throttle.close()


def interrupt_when(predicate: Callable[[], bool], timeout: float = 30.0) -> threading.Thread:
    """Send the main thread a KeyboardInterrupt (as Ctrl-C does) once ``predicate()``."""
    def run() -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        _thread.interrupt_main()

    thread = threading.Thread(target=run, name="test-interrupter", daemon=True)
    thread.start()
    return thread




# -- Ctrl-C --------------------------------------------------------------------------------------------------


def test_ctrl_c_on_a_foreground_wait_leaves_no_thread(shell: InteractiveShell, sim: Simulator) -> None:
    baseline = set(threading.enumerate())
    task = sim.add_task(FAKE_KEY, Timeline(invisible_for=0, submitted_for=0, queued_for=600, run_for=60))
    interrupter = interrupt_when(lambda: len(sim.requests_for(task)) >= 3)
    with pytest.raises(KeyboardInterrupt):
        shell.run_line_magic("runway_watch", f"{task} --wait --interval 0.05")
    interrupter.join(5)
    handle = runway_widgets.recent_watches()[-1]
    assert handle.task_id == task and handle.outcome is Outcome.STOPPED and handle.done()
    polls = len(sim.requests_for(task))
    threads_back_to(baseline | {interrupter})
    assert len(sim.requests_for(task)) == polls  # and nothing polls any more


def test_ctrl_c_during_a_save_leaves_no_partial_file(shell: InteractiveShell, sim: Simulator, slow_video: str,
                                                     tmp_path: Path) -> None:
    baseline = set(threading.enumerate())
    folder = tmp_path / "videos"
    interrupter = interrupt_when(part_file_growing(folder))
    with pytest.raises(KeyboardInterrupt):
        shell.run_line_magic("runway_watch", f"{slow_video} --wait --interval 0.05 --save {folder}{os.sep}")
    interrupter.join(5)
    handle = runway_widgets.recent_watches()[-1]
    assert handle.task_id == slow_video and handle.outcome is Outcome.STOPPED
    threads_back_to(baseline | {interrupter})  # the download thread saw the stop and ended
    assert leftovers(folder) == []  # neither a .part file nor a half video under the real name
    time.sleep(0.5)
    assert leftovers(folder) == [] and handle.saved_path is None


def test_ctrl_c_in_the_cli_during_a_save(sim: Simulator, slow_video: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMETAPI_")}
    env.update(COMETAPI_KEY=FAKE_KEY, COMETAPI_BASE_URL=sim.base_url, PYTHONIOENCODING="utf-8")
    folder = tmp_path / "cli"
    proc = subprocess.Popen([sys.executable, "-m", "runway_widgets.cli", slow_video, "--interval", "0.1",
                             "--save", f"{folder}{os.sep}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, encoding="utf-8", env=env, start_new_session=True)
    try:
        wait_until(part_file_growing(folder), 30, "the download to start")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "Interrupted; stopped watching" in out
    assert leftovers(folder) == []


# -- %reload_ext ------------------------------------------------------------------------------------------------


def test_reload_ext_during_a_demo_leaves_no_thread(shell: InteractiveShell) -> None:
    baseline = set(threading.enumerate())
    handle = shell.run_line_magic("runway_watch", "--demo --background")
    wait_until(lambda: handle.update().polls >= 2, 20, "the demo to be polled")
    assert ours() and any(t.name.startswith("runway-simulator") for t in threading.enumerate())
    shell.run_line_magic("reload_ext", "runway_widgets")
    assert handle.done() and handle.outcome is Outcome.STOPPED
    threads_back_to(baseline, servers_too=True)  # poller, workers, the demo simulator and its handlers


def test_reload_ext_during_a_save_leaves_no_thread_or_file(shell: InteractiveShell, slow_video: str,
                                                          tmp_path: Path) -> None:
    baseline = set(threading.enumerate())
    folder = tmp_path / "bg"
    handle = shell.run_line_magic("runway_watch", f"{slow_video} --background --interval 0.05 --save {folder}{os.sep}")
    wait_until(part_file_growing(folder), 30, "the download to start")
    shell.run_line_magic("reload_ext", "runway_widgets")
    assert handle.done() and handle.outcome is Outcome.STOPPED
    threads_back_to(baseline)
    assert leftovers(folder) == []


# -- 500 watches ---------------------------------------------------------------------------------------------------


@pytest.fixture
def remote_sim() -> Iterator[str]:
    """The simulator in its own process, so this process's memory is the library's alone."""
    proc = subprocess.Popen([sys.executable, "-m", "runway_widgets.simulator", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("Runway simulator listening on "), first
        yield first.split()[-1]
    finally:
        stop_group(proc)
        proc.stdout.close() if proc.stdout else None
        proc.stderr.close() if proc.stderr else None


def test_500_watches_started_and_stopped_leave_nothing_growing(remote_sim: str) -> None:
    timeline = Timeline(invisible_for=0, submitted_for=0, queued_for=3600, run_for=60).to_dict()
    made = requests.post(f"{remote_sim}/_sim/tasks", json={"key": FAKE_KEY, "timeline": timeline}, timeout=10)
    task = made.json()["task_id"]
    baseline = set(threading.enumerate())
    client = Client(FAKE_KEY, remote_sim)
    # The default process-wide budget (10 requests/s) would make this a 100 s test.
    sched = Scheduler(RequestBudget(rate=10_000, burst=1_000))

    def cycle() -> None:
        polled = threading.Event()
        handle = watch(task, client=client, interval=0.05, on_update=lambda update: polled.set(), scheduler=sched)
        assert polled.wait(10), "no poll within 10 s"
        handle.stop()

    def settled_size() -> int:
        time.sleep(0.2)  # let a poll that was in flight at stop() come home
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    tracemalloc.start()  # before the warm-up: what it allocates and later frees must be traced too
    try:  # (the finally below shuts the scheduler down whatever happens)
        # Warm up past the registry of recent watches (bounded at 500, for %runway_tasks),
        # the connection pool and the caches: after that, nothing may grow.
        for _ in range(500):
            cycle()
        assert len(runway_widgets.recent_watches()) == 500 and runway_widgets.live_watches() == []
        for _ in range(100):
            cycle()
        after_100 = settled_size()
        for _ in range(400):
            cycle()
        after_500 = settled_size()
        per_cycle = (after_500 - after_100) / 400
        print(f"traced memory: {after_100:,} B after 100 cycles, {after_500:,} B after 500: {per_cycle:.0f} B/cycle")
        assert per_cycle < 1024, f"{per_cycle:.0f} bytes per started-and-stopped watch"
        assert len(runway_widgets.recent_watches()) == 500 and runway_widgets.live_watches() == []
        assert sched.pending() == 0
        threads_back_to(baseline)  # the poller and its workers end by themselves when idle
    finally:
        tracemalloc.stop()
        client.close()
        sched.shutdown()


# -- a kernel shutting down ---------------------------------------------------------------------------------------


def test_kernel_shuts_down_promptly_with_a_background_demo(tmp_path: Path) -> None:
    from jupyter_client import KernelManager

    env = {k: v for k, v in os.environ.items() if not k.startswith("COMETAPI_")}
    env.update(IPYTHONDIR=str(tmp_path / "ipython"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env, cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)

        def run(code: str) -> list[str]:
            texts: list[str] = []

            def keep(msg: dict[str, Any]) -> None:
                if msg["msg_type"] == "stream":
                    texts.append(msg["content"]["text"])
                elif msg["msg_type"] == "error":
                    texts.append("ERROR " + msg["content"]["ename"])

            reply = kc.execute_interactive(code, timeout=60, output_hook=keep)
            assert reply["content"]["status"] == "ok", texts
            return texts

        run("%load_ext runway_widgets\nh = %runway_watch --demo --background")
        probe = ("import json, threading, time\n"
                 "deadline = time.monotonic() + 20\n"
                 "while h.update().polls < 2 and time.monotonic() < deadline: time.sleep(0.05)\n"
                 "print(json.dumps(sorted(t.name for t in threading.enumerate())))")
        names = json.loads("".join(run(probe)).strip().splitlines()[-1])
        assert any(n.startswith("runway-widgets-poller") for n in names), names  # it is polling right now
        process = km.provisioner.process  # type: ignore[union-attr]
        started = time.monotonic()
        kc.shutdown()  # what a frontend's "Shut Down Kernel" sends
        deadline = started + 15
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        took = time.monotonic() - started
        assert process.poll() is not None, "the kernel did not exit within 15 s"
        assert took < 5.0, f"the kernel took {took:.1f} s to exit"
        assert process.returncode == 0  # it exited by itself, it was not killed
    finally:
        kc.stop_channels()
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        km.cleanup_resources()

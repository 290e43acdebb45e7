"""Every watch ends: whatever a background job raises, the watch reaches a final outcome with a sentence.

Real faults where they can be made: a folder the CLI may not write (``chmod`` as a non-root
user, since root ignores it; a read-only mount), a full disk (a tiny tmpfs), a file where a
folder should be, a download that stalls.  A bug is injected through the watch's own seams
(its finisher, its random source, a subscriber): what matters is that nothing anyone's code
raises leaves ``wait()`` waiting for ever.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

import runway_widgets
from runway_widgets import Client, DownloadError, Outcome, RequestBudget, RunwayWidgetsError, watch
from runway_widgets.policy import PacingConfig
from runway_widgets.scheduler import Scheduler
from runway_widgets.simulator import Fault, Simulator, Timeline
from runway_widgets.watch import Watch, WatchSettings

from helpers import FAKE_KEY, NOBODY, communicate, drop_to_nobody, instant, nobody_python



def settings(timeout: float = 30.0) -> WatchSettings:
    return WatchSettings(timeout=timeout, not_found_grace=5.0, give_up_after=10.0,
                         pacing=PacingConfig(fixed_interval=0.1, min_interval=0.05))


# -- the CLI, run as someone the file system says no to ---------------------------------------------------------


def run_cli(sim: Simulator, args: Sequence[str], *, as_nobody: bool = False, wrap: Sequence[str] = (),
            cwd: str | None = None, timeout: float = 60.0) -> tuple[int, str, str, float]:
    """Run ``runway-watch`` in its own process group; return (code, stdout, stderr, seconds)."""
    argv, extra = nobody_python() if as_nobody else ([sys.executable], {})
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMETAPI_")}
    env.update(extra, COMETAPI_KEY=FAKE_KEY, COMETAPI_BASE_URL=sim.base_url, PYTHONIOENCODING="utf-8")
    home = None
    if as_nobody:  # a task journal that user may write (the suite's is root's own)
        home = tempfile.mkdtemp(prefix="rw-home-")
        os.chown(home, NOBODY, NOBODY)
        env["RUNWAY_WIDGETS_HOME"] = home
    started = time.monotonic()
    proc = subprocess.Popen([*wrap, *argv, "-m", "runway_widgets.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8", env=env, cwd=cwd or "/",
                            start_new_session=True, preexec_fn=drop_to_nobody if as_nobody else None)
    try:
        return (*communicate(proc, timeout), time.monotonic() - started)
    finally:
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder every user may enter (pytest's tmp_path is root's own when we run as root)."""
    folder = Path(tempfile.mkdtemp(prefix="rw-robust-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for path in [folder, *folder.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)


def check_saved_nothing_but_succeeded(code: int, out: str, err: str, took: float, task: str, reason: str) -> None:
    assert code == 6, (code, out, err)
    assert took < 10.0, f"the CLI took {took:.1f} s to exit"
    assert "Traceback" not in err and "Traceback" not in out, err
    assert "SUCCESS" in out and "/media/" in out, out  # the success and the URL are reported
    assert "could not save: " in out and reason in out, out
    assert f"Task {task} succeeded, but could not save: " in err and reason in err, err
    assert len(err.strip().splitlines()) == 1, err  # one sentence


@pytest.mark.parametrize("mode", [0o555, 0o000])
def test_cli_save_into_a_folder_it_may_not_write(sim: Simulator, shared_tmp: Path, mode: int) -> None:
    folder = shared_tmp / "videos"
    folder.mkdir()
    folder.chmod(mode)
    as_nobody = os.geteuid() == 0  # root ignores the mode: drop to uid 65534 for the CLI
    task = sim.add_task(FAKE_KEY, instant())
    code, out, err, took = run_cli(sim, [task, "--interval", "0.1", "--save", f"{folder}/"], as_nobody=as_nobody)
    print(f"mode {mode:o}: exit {code} after {took:.2f} s")
    check_saved_nothing_but_succeeded(code, out, err, took, task, "Permission denied")
    folder.chmod(0o755)
    assert os.listdir(folder) == []


def _unshare() -> list[str]:
    """A private mount namespace (as a mapped root when we are not root), or skip."""
    tool = shutil.which("unshare")
    if tool is None or subprocess.run([tool, "-rm", "true"], capture_output=True, timeout=30).returncode != 0:
        pytest.skip("cannot create a private mount namespace here (unshare -rm)")
    return [tool, "-rm"]


def _in_tmpfs(folder: Path, options: str) -> list[str]:
    """A command prefix: mount a tmpfs with ``options`` on ``folder`` privately, run the rest, list leftovers."""
    script = ('mount -t tmpfs -o "$1" tmpfs "$2" || exit 97; shift 2; "$@"; rc=$?; '
              'echo "LEFT:[$(ls -A "$RW_FOLDER" | tr "\\n" " ")]" >&2; exit $rc')
    return [*_unshare(), "sh", "-c", script, "sh", options, str(folder)]


def test_cli_save_onto_a_read_only_mount(sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    monkeypatch.setenv("RW_FOLDER", str(folder))
    task = sim.add_task(FAKE_KEY, instant())
    code, out, err, took = run_cli(sim, [task, "--interval", "0.1", "--save", f"{folder}/"],
                                   wrap=_in_tmpfs(folder, "ro,size=1m"))
    print(f"read-only mount: exit {code} after {took:.2f} s")
    assert code != 97, err
    err, left = err.rsplit("LEFT:", 1)
    check_saved_nothing_but_succeeded(code, out, err, took, task, "Read-only file system")
    assert left.strip() == "[]"


def test_cli_save_onto_a_full_disk(sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "small"
    folder.mkdir()
    monkeypatch.setenv("RW_FOLDER", str(folder))
    task = sim.add_task(FAKE_KEY, instant(media_size=3_000_000))  # a 1 MB disk
    code, out, err, took = run_cli(sim, [task, "--interval", "0.1", "--save", f"{folder}/"],
                                   wrap=_in_tmpfs(folder, "size=1m"))
    print(f"full disk: exit {code} after {took:.2f} s")
    assert code != 97, err
    err, left = err.rsplit("LEFT:", 1)
    check_saved_nothing_but_succeeded(code, out, err, took, task, "No space left on device")
    assert left.strip() == "[]"  # the partial file went too


OUT_OF_THREADS = """
import resource, sys, time
import runway_widgets as rw

task, folder = sys.argv[1:]
handle = rw.watch(task, save=folder, interval=0.1)
deadline = time.monotonic() + 10
while handle.update().polls < 2 and time.monotonic() < deadline:
    time.sleep(0.01)
# From now on no thread can start (the poller and its worker are already running).
resource.setrlimit(resource.RLIMIT_NPROC, (1, resource.getrlimit(resource.RLIMIT_NPROC)[1]))
try:
    handle.wait(timeout=30)
except rw.RunwayWidgetsError as exc:
    print(handle.outcome.value, type(exc).__name__, exc)
"""


def test_no_thread_for_the_download_ends_the_watch(sim: Simulator, shared_tmp: Path) -> None:
    task = sim.add_task(FAKE_KEY, Timeline(invisible_for=0, submitted_for=0, queued_for=1.0, run_for=0.5))
    # Root is exempt from RLIMIT_NPROC: run as uid 65534 then.
    argv, extra = nobody_python() if os.geteuid() == 0 else ([sys.executable], {})
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMETAPI_")}
    env.update(extra, COMETAPI_KEY=FAKE_KEY, COMETAPI_BASE_URL=sim.base_url)
    proc = subprocess.Popen([*argv, "-c", OUT_OF_THREADS, task, str(shared_tmp / "v") + "/"], env=env, cwd="/",
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=drop_to_nobody if os.geteuid() == 0 else None)
    try:
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, err
    assert out.strip() == ("succeeded DownloadError Saving the video failed: unexpected RuntimeError "
                           "while starting to save the video."), (out, err)


# -- the Python API: file-system faults and bugs ------------------------------------------------------------------


def test_a_file_where_the_folder_should_be(sim: Simulator, client: Client, tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("not a folder")
    task = sim.add_task(FAKE_KEY, instant())
    handle = watch(task, client=client, interval=0.1, save=tmp_path / "taken" / "clip.mp4")
    with pytest.raises(DownloadError, match=r"^Cannot create the folder .*taken \(File exists\)\.$"):
        handle.wait(timeout=10)
    assert handle.outcome is Outcome.SUCCEEDED and handle.result_url
    assert handle.update().note.startswith("could not save: Cannot create the folder")


def _watch_with(sim: Simulator, client: Client, sched: Scheduler, timeline: Timeline, **kwargs: Any) -> Watch:
    return Watch(sim.add_task(FAKE_KEY, timeline), client, settings(kwargs.pop("timeout", 30.0)),
                 clock=sched.clock, on_end=sched.remove, **kwargs)


@pytest.fixture
def sched() -> Iterator[Scheduler]:
    scheduler = Scheduler(RequestBudget(rate=100, burst=10))
    try:
        yield scheduler
    finally:
        scheduler.shutdown()


def test_a_finisher_that_raises_ends_the_watch(sim: Simulator, client: Client, sched: Scheduler) -> None:
    def broken(watch: Watch, snapshot: Any, done: Any) -> None:
        raise KeyError("a bug")

    handle = _watch_with(sim, client, sched, instant(), finisher=broken)
    sched.add(handle)
    with pytest.raises(DownloadError, match="^Saving the video failed: unexpected KeyError while starting to save"):
        handle.wait(timeout=10)
    assert handle.outcome is Outcome.SUCCEEDED and handle.done() and handle.result_url


def test_a_finisher_that_never_reports_ends_at_the_timeout(sim: Simulator, client: Client, sched: Scheduler) -> None:
    # A finisher that forgets to report:
    handle = _watch_with(sim, client, sched, instant(), timeout=2.0, finisher=lambda watch, snapshot, done: None)
    sched.add(handle)
    started = time.monotonic()
    with pytest.raises(DownloadError, match="^Saving the video did not finish within the watch's 2 s timeout"):
        handle.wait(timeout=15)
    assert time.monotonic() - started < 4.0
    assert handle.outcome is Outcome.SUCCEEDED


def test_a_download_that_stalls_ends_at_the_timeout(sim: Simulator, client: Client, tmp_path: Path) -> None:
    task = sim.add_task(FAKE_KEY, instant())
    sim.inject(Fault("slow", delay=60, path="/media/"))  # the video server never answers
    started = time.monotonic()
    handle = watch(task, client=client, interval=0.1, timeout=2.0, save=tmp_path)
    with pytest.raises(DownloadError, match="did not finish within the watch's 2 s timeout"):
        handle.wait(timeout=15)
    assert time.monotonic() - started < 4.0
    assert handle.outcome is Outcome.SUCCEEDED and os.listdir(tmp_path) == []


def test_a_bug_while_reading_an_answer_ends_the_watch(sim: Simulator, client: Client, sched: Scheduler) -> None:
    def broken_rand() -> float:
        raise ValueError("a bug in the pacing")

    handle = _watch_with(sim, client, sched, Timeline(invisible_for=0, queued_for=600), rand=broken_rand)
    sched.add(handle)
    with pytest.raises(RunwayWidgetsError, match=f"^Watching task {handle.task_id} stopped: unexpected ValueError"):
        handle.wait(timeout=10)
    assert handle.outcome is Outcome.ERROR
    assert "the task goes on on the server" in str(handle.error)


def test_a_subscriber_that_exits_still_lets_wait_return(sim: Simulator, client: Client, sched: Scheduler) -> None:
    handle = _watch_with(sim, client, sched, instant())

    def rude(update: Any) -> None:
        if update.done:
            raise SystemExit("a subscriber that calls sys.exit()")

    handle.on_update(rude)
    sched.add(handle)
    assert handle.wait(timeout=10).succeeded


def test_a_subscriber_that_exits_at_the_timeout_does_not_stop_the_poller(sim: Simulator, client: Client,
                                                                         sched: Scheduler) -> None:
    expiring = _watch_with(sim, client, sched, Timeline(invisible_for=0, queued_for=600), timeout=1.0)
    later = _watch_with(sim, client, sched, Timeline(invisible_for=0, submitted_for=0, queued_for=2.5, run_for=0.5),
                        timeout=30)

    def rude(update: Any) -> None:
        if update.done:  # delivered on the poller's own thread: the watch expires there
            raise SystemExit("a subscriber that calls sys.exit()")

    expiring.on_update(rude)
    sched.add(expiring)
    sched.add(later)
    with pytest.raises(runway_widgets.WatchTimeoutError):
        expiring.wait(timeout=10)
    assert later.wait(timeout=15).succeeded  # the poller went on polling the other watch


def test_shutting_the_poller_down_mid_poll_ends_the_watch(sim: Simulator, client: Client) -> None:
    sched = Scheduler(RequestBudget(rate=100, burst=10))
    handle = _watch_with(sim, client, sched, Timeline(invisible_for=0, queued_for=600), timeout=600)
    sim.inject(Fault("slow", delay=1.0))  # the first poll is in flight for a second
    sched.add(handle)
    deadline = time.monotonic() + 10
    while not sim.pending_faults() == [] and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        sched.shutdown(timeout=0.1)  # while the poll is out: it is not in the heap
        with pytest.raises(runway_widgets.WatchStoppedError, match="shut down"):
            handle.wait(timeout=30)
    finally:
        sched.shutdown()


# -- a fresh URL goes through the shared request budget -------------------------------------------------------------


def test_refreshing_an_expired_url_spends_from_the_shared_budget(sim: Simulator, client: Client,
                                                                 tmp_path: Path) -> None:
    rate, burst = 2.0, 1.0
    sched = Scheduler(RequestBudget(rate=rate, burst=burst))
    busy = [watch(sim.add_task(FAKE_KEY, Timeline(invisible_for=0, queued_for=600)), client=client,
                  interval=0.05, scheduler=sched) for _ in range(3)]  # they want 60 polls/s: saturated
    try:
        time.sleep(1.0)
        task = sim.add_task(FAKE_KEY, instant(url_ttl=1))
        sim.inject(Fault("slow", delay=2.1, path="/media/"))  # the signed URL has expired when it arrives
        saver = watch(task, client=client, interval=0.05, save=tmp_path, scheduler=sched)
        saver.wait(timeout=20)
        assert saver.saved_path and Path(saver.saved_path).stat().st_size > 0
        mine = [(r.path.split("/")[1], r.status) for r in sim.requests_for(task)]
        assert mine == [("runway", 200), ("media", 403), ("runway", 200), ("media", 200)]  # one re-poll
        time.sleep(0.6)  # polls after the re-poll count too
    finally:
        for handle in busy:
            handle.stop()
        sched.shutdown()
    times = [r.time for r in sim.requests if not r.path.startswith("/media/")]
    # A token bucket allows at most burst + rate * t requests in any t seconds (give or take
    # 200 ms for the trip from our send to the server's log).  The budget is saturated: its
    # polls come 0.5 s apart, so an extra, unbudgeted request makes some window hold one
    # request more than 1.4 + 2 t.
    slack = 0.2
    worst = max((j - i + 1 - (burst + rate * (times[j] - times[i] + slack)), i, j)
                for i in range(len(times)) for j in range(i, len(times)))
    assert worst[0] <= 0, f"{worst[2] - worst[1] + 1} requests in {times[worst[2]] - times[worst[1]]:.3f} s"
    assert len(times) >= 8  # the budget really was in use throughout


def test_fetch_now_waits_its_turn_and_gives_up_after_max_wait(sim: Simulator, client: Client) -> None:
    sched = Scheduler(RequestBudget(rate=1.0, burst=1.0))
    task = sim.add_task(FAKE_KEY, instant())
    try:
        started = time.monotonic()
        assert sched.fetch_now(client, task).succeeded  # the burst token: at once
        assert time.monotonic() - started < 0.5
        with pytest.raises(runway_widgets.RateLimitedError, match=r"^No request slot was free within 0\.2 s"):
            sched.fetch_now(client, task, max_wait=0.2)  # the next token is a second away
        waited = time.monotonic()
        sched.fetch_now(client, task)
        took = time.monotonic() - waited
    finally:
        sched.shutdown()
    assert 0.4 < took < 1.2, took  # it waited for the bucket to refill
    assert len(sim.requests_for(task)) == 2 and sched.budget.spent == 2  # the refused one sent nothing

"""``watch()`` end to end: the real scheduler, worker threads and client against the simulator.

Timelines are short and polling is fast (``interval=0.1`` or a PacingConfig with small
floors), so every scenario here takes well under a few seconds.
"""

from __future__ import annotations

import base64
import bisect
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import runway_widgets
from runway_widgets import (
    AuthenticationError,
    Client,
    ConfigError,
    GaveUpError,
    Outcome,
    PacingConfig,
    RequestBudget,
    ServerError,
    TaskFailedError,
    TaskNotFoundError,
    WatchStoppedError,
    WatchTimeoutError,
    WatchUpdate,
    watch,
)
from runway_widgets.scheduler import Scheduler
from runway_widgets.simulator import Fault, Simulator, Timeline
from runway_widgets.simulator.media import DEMO_PATH
from helpers import FAKE_KEY, instant, quick

# Fast polling for short simulated tasks: a small floor and exploring pace, and no crowd
# slow-down (these tests are about the poller and the client, not the pacing).
FAST = PacingConfig(min_interval=0.05, backoff_base=0.05, backoff_cap=0.2, jitter=0.0, explore_interval=0.3,
                    explore_spread=0.1, crowd_rate=10_000.0)


def long_running(**changes: Any) -> Timeline:
    return Timeline(**{"invisible_for": 0, "submitted_for": 0, "queued_for": 0, "run_for": 120, **changes})


def feed_polls(sim: Simulator, task_id: str) -> list[int]:
    return [r.status for r in sim.requests_for(task_id) if r.path == "/runway/feed"]


def media_requests(sim: Simulator, task_id: str) -> list[Any]:
    return [r for r in sim.requests_for(task_id) if r.path.startswith("/media/")]


# -- outcomes -------------------------------------------------------------------------------


@pytest.mark.sim_options(refresh_period=0.5)
def test_watches_of_one_gateway_share_what_they_learn_of_its_refresh_loop(sim: Simulator, client: Client) -> None:
    # The simulator refreshes every task in one loop, every 0.5 s: two changes of one task
    # 0.5 s apart prove the gateway refreshes too fast to aim at (continuous, for pacing),
    # and both watches of the base URL hold that one finding.
    first = watch(sim.add_task(FAKE_KEY, quick(run_for=1.2)), client=client, interval=0.1)
    second = watch(sim.add_task(FAKE_KEY, quick(run_for=1.2)), client=client, interval=0.1)
    assert first.gateway is second.gateway and first.gateway.base_url == sim.base_url
    assert first.wait(10).succeeded and second.wait(10).succeeded
    assert first.gateway.cadence.continuous


def test_success_with_result_url(sim: Simulator, client: Client) -> None:
    task = sim.add_task(FAKE_KEY, quick(invisible_for=0.2))
    handle = watch(task, client=client, interval=0.1)
    snap = handle.wait(timeout=10)
    assert snap.succeeded and snap.progress == 1.0
    assert snap.result_url is not None and snap.result_url.startswith(f"{sim.base_url}/media/{task}.mp4?")
    assert handle.done() and handle.outcome is Outcome.SUCCEEDED and handle.error is None
    assert handle.result_url == snap.result_url
    statuses = feed_polls(sim, task)
    assert statuses[-1] == 200 and len(statuses) >= 3
    assert handle.update().polls == len(statuses)


def test_official_feed_end_to_end(sim: Simulator) -> None:
    with Client(FAKE_KEY, sim.base_url, feed="official", read_timeout=5) as official:
        task = sim.add_task(FAKE_KEY, quick())
        snap = watch(task, client=official, interval=0.1).wait(timeout=10)
    assert snap.succeeded and snap.status == "SUCCEEDED" and snap.result_url
    assert {r.path for r in sim.requests} == {f"/runwayml/v1/tasks/{task}"}


def test_failure_raises_with_reason_and_code(sim: Simulator, client: Client) -> None:
    task = sim.add_task(FAKE_KEY, quick(outcome="FAILURE", fail_reason="The prompt was flagged.",
                                                fail_code="SAFETY.INPUT.TEXT"))
    handle = watch(task, client=client, interval=0.1)
    with pytest.raises(TaskFailedError) as info:
        handle.wait(timeout=10)
    message = str(info.value)
    assert "failed" in message and "The prompt was flagged." in message and "SAFETY.INPUT.TEXT" in message
    assert "\n" not in message
    assert info.value.snapshot.fail_code == "SAFETY.INPUT.TEXT"  # type: ignore[attr-defined]
    assert handle.outcome is Outcome.FAILED and handle.result_url is None


def test_early_failure(sim: Simulator, client: Client) -> None:
    task = sim.add_task(FAKE_KEY, quick(run_for=30, fail_at=0.2))
    with pytest.raises(TaskFailedError):
        watch(task, client=client, interval=0.1).wait(timeout=5)


def test_cancelled(sim: Simulator, client: Client) -> None:
    task = sim.add_task(FAKE_KEY, instant(outcome="CANCELLED"))
    handle = watch(task, client=client, interval=0.1)
    with pytest.raises(TaskFailedError, match="was cancelled"):
        handle.wait(timeout=5)
    assert handle.outcome is Outcome.CANCELLED


def test_not_yet_visible_then_visible(sim: Simulator, client: Client) -> None:
    task = sim.add_task(FAKE_KEY, quick(invisible_for=0.4))
    updates: list[WatchUpdate] = []
    handle = watch(task, client=client, interval=0.1, on_update=updates.append)
    assert handle.wait(timeout=10).succeeded
    statuses = feed_polls(sim, task)
    assert statuses[0] == 400 and statuses[-1] == 200 and 400 not in statuses[statuses.index(200):]
    assert any(u.note == "waiting for the task to appear" and u.snapshot is None for u in updates)


def test_never_visible_is_not_found_after_the_grace(sim: Simulator, client: Client) -> None:
    task = sim.add_task(FAKE_KEY, Timeline(invisible_for=math.inf))
    started = time.monotonic()
    handle = watch(task, client=client, interval=0.1, not_found_grace=0.5)
    with pytest.raises(TaskNotFoundError, match="not found after 0.5 s"):
        handle.wait(timeout=10)
    assert 0.5 <= time.monotonic() - started < 2.5
    assert handle.outcome is Outcome.NOT_FOUND
    assert set(feed_polls(sim, task)) == {400} and len(feed_polls(sim, task)) >= 3


def test_wrong_key_fails_fast(client: Client) -> None:
    with Simulator(keys=["the-right-key-not-secret"]) as strict, Client(FAKE_KEY, strict.base_url) as wrong:
        task = strict.add_task("the-right-key-not-secret", instant())
        started = time.monotonic()
        handle = watch(task, client=wrong, interval=0.1)
        with pytest.raises(AuthenticationError):
            handle.wait(timeout=5)
        assert time.monotonic() - started < 1.5
        assert handle.outcome is Outcome.ERROR
        assert [r.status for r in strict.requests] == [401]  # not retried


def test_another_keys_task_is_not_found(sim: Simulator, client: Client) -> None:
    task = sim.add_task("someone-elses-key-not-secret", instant())
    with pytest.raises(TaskNotFoundError):
        watch(task, client=client, interval=0.1, not_found_grace=0.3).wait(timeout=5)


def test_server_error_burst_then_recovery(sim: Simulator, client: Client) -> None:
    task = sim.add_task(FAKE_KEY, quick())
    sim.inject(Fault("server_error_json", count=2))
    sim.inject(Fault("server_error_html", count=2))
    sim.inject(Fault("reset"))
    updates: list[WatchUpdate] = []
    handle = watch(task, client=client, pacing=FAST, interval=0.1, on_update=updates.append)
    assert handle.wait(timeout=10).succeeded
    notes = [u.note for u in updates if u.note.startswith("retrying in")]
    assert len(notes) == 5
    assert any("HTTP 503" in n for n in notes) and any("HTTP 502" in n for n in notes)
    assert any(u.retry_in is not None for u in updates)
    assert updates[-1].outcome is Outcome.SUCCEEDED and updates[-1].note == ""
    assert [r.status for r in sim.requests][:5] == [503, 503, 502, 502, 0]


def test_gives_up_after_give_up_after(sim: Simulator, client: Client) -> None:
    task = sim.add_task(FAKE_KEY, instant())
    sim.inject(Fault("server_error_json", count=10_000))
    started = time.monotonic()
    handle = watch(task, client=client, pacing=FAST, give_up_after=0.6)
    with pytest.raises(GaveUpError) as info:
        handle.wait(timeout=10)
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 2.0
    assert isinstance(info.value.last_error, ServerError)
    assert "Gave up after" in str(info.value) and "\n" not in str(info.value)
    assert handle.outcome is Outcome.GAVE_UP


def test_rate_limit_is_honoured_then_recovers(sim: Simulator, client: Client) -> None:
    task = sim.add_task(FAKE_KEY, instant())
    sim.inject(Fault("rate_limit", retry_after="0.5"))
    sched = Scheduler(RequestBudget(rate=50, burst=5), max_workers=2)
    try:
        handle = watch(task, client=client, pacing=FAST, scheduler=sched)
        assert handle.wait(timeout=10).succeeded
        first, second = (r.time for r in sim.requests_for(task)[:2])
        assert second - first >= 0.45  # Retry-After respected (for everyone: the shared budget paused)
        assert sched.rate_limited == 1
    finally:
        sched.shutdown()


def test_timeout(sim: Simulator, client: Client) -> None:
    task = sim.add_task(FAKE_KEY, long_running())
    started = time.monotonic()
    handle = watch(task, client=client, interval=0.1, timeout=0.5)
    with pytest.raises(WatchTimeoutError, match="did not finish within 0.5 s"):
        handle.wait(timeout=10)
    assert time.monotonic() - started < 1.5
    assert handle.outcome is Outcome.TIMED_OUT


def test_wait_timeout_leaves_the_watch_running(sim: Simulator, client: Client) -> None:
    task = sim.add_task(FAKE_KEY, long_running())
    handle = watch(task, client=client, interval=0.1)
    with pytest.raises(TimeoutError):
        handle.wait(timeout=0.2)
    assert not handle.done() and handle.outcome is Outcome.WATCHING
    handle.stop()


def test_stop_stops_requests(sim: Simulator, client: Client) -> None:
    task = sim.add_task(FAKE_KEY, long_running())
    handle = watch(task, client=client, interval=0.05)
    deadline = time.monotonic() + 5
    while len(sim.requests_for(task)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    handle.stop()
    time.sleep(0.1)  # a poll in flight when stop() was called may still land
    frozen = len(sim.requests_for(task))
    time.sleep(0.5)
    assert len(sim.requests_for(task)) == frozen
    assert handle.outcome is Outcome.STOPPED and handle.done()
    with pytest.raises(WatchStoppedError):
        handle.wait(timeout=1)
    assert handle not in runway_widgets.live_watches()


def test_rewatching_supersedes_the_old_watch(sim: Simulator, client: Client) -> None:
    task = sim.add_task(FAKE_KEY, quick())
    old = watch(task, client=client, interval=0.1)
    new = watch(task, client=client, interval=0.1)
    assert old.outcome is Outcome.STOPPED and old.done()
    with pytest.raises(WatchStoppedError, match="Superseded"):
        old.wait(timeout=1)
    assert runway_widgets.live_watches() == [new]
    assert new.wait(timeout=10).succeeded


def test_on_update_sees_the_final_update(sim: Simulator, client: Client) -> None:
    task = sim.add_task(FAKE_KEY, quick())
    seen: list[WatchUpdate] = []
    threads: set[str] = set()

    def record(update: WatchUpdate) -> None:
        threads.add(threading.current_thread().name)
        seen.append(update)

    def broken(update: WatchUpdate) -> None:
        raise RuntimeError("a buggy subscriber")

    handle = watch(task, client=client, interval=0.1, on_update=record)
    handle.on_update(broken)  # detached on its first call; polling goes on
    handle.wait(timeout=10)
    assert seen[-1].done and seen[-1].outcome is Outcome.SUCCEEDED
    assert seen[-1].snapshot is not None and seen[-1].snapshot.result_url
    assert sum(1 for u in seen if u.done) == 1
    assert all(name.startswith("runway-widgets") for name in threads)
    late: list[WatchUpdate] = []
    handle.on_update(late.append)  # an ended watch calls a new subscriber once, at once
    assert len(late) == 1 and late[0].outcome is Outcome.SUCCEEDED


def test_repr_is_one_short_line_without_the_key(sim: Simulator, client: Client) -> None:
    task = sim.add_task(FAKE_KEY, quick())
    handle = watch(task, client=client, interval=0.1)
    handle.wait(timeout=10)
    for text in (repr(handle), str(handle)):
        assert "\n" not in text and len(text) <= 80 and FAKE_KEY not in text
        assert "succeeded" in text and "100%" in text
    assert FAKE_KEY not in repr(handle.update()) and FAKE_KEY not in repr(runway_widgets.recent_watches())


def test_save_writes_the_video_atomically(sim: Simulator, client: Client, tmp_path: Path) -> None:
    task = sim.add_task(FAKE_KEY, quick())
    handle = watch(task, client=client, interval=0.1, save=tmp_path)
    handle.wait(timeout=10)
    saved = tmp_path / f"{task}.mp4"
    assert handle.saved_path == str(saved) and handle.update().saved_path == str(saved)
    assert saved.read_bytes() == DEMO_PATH.read_bytes()
    assert os.listdir(tmp_path) == [saved.name]  # no .part file left
    (media,) = media_requests(sim, task)
    assert media.status == 200 and not media.auth_sent  # the key never goes to the media host


def test_save_to_a_file_path(sim: Simulator, client: Client, tmp_path: Path) -> None:
    task = sim.add_task(FAKE_KEY, instant(media_size=1_500_000))
    target = tmp_path / "sub" / "clip.mp4"
    handle = watch(task, client=client, interval=0.1, save=target)
    handle.wait(timeout=10)
    assert handle.saved_path == str(target)
    data = target.read_bytes()
    assert len(data) == 1_500_000 and data[4:8] == b"ftyp"
    assert os.listdir(target.parent) == ["clip.mp4"]


def test_save_true_uses_the_default_folder_and_the_card_points_at_it(sim: Simulator, client: Client, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from runway_widgets.views.card import card_html

    monkeypatch.chdir(tmp_path)
    task = sim.add_task(FAKE_KEY, quick())
    handle = watch(task, client=client, interval=0.1, save=True)
    handle.wait(timeout=10)
    saved = tmp_path / "runway_videos" / f"{task}.mp4"
    assert saved.read_bytes() == DEMO_PATH.read_bytes()
    page = card_html(handle.update())
    # The saved card plays the local copy: the demo's small file is embedded in the notebook.
    assert f'src="data:video/mp4;base64,{base64.b64encode(saved.read_bytes()).decode()}"' in page
    assert f"saved to {handle.saved_path}, embedded in this notebook" in page and "runway_videos" in str(handle.saved_path)


def test_failed_save_is_reported_but_the_task_succeeded(sim: Simulator, client: Client, tmp_path: Path) -> None:
    task = sim.add_task(FAKE_KEY, instant())
    sim.inject(Fault("html200", path="/media/"))
    handle = watch(task, client=client, interval=0.1, save=tmp_path)
    with pytest.raises(runway_widgets.DownloadError, match="not a video"):
        handle.wait(timeout=10)
    assert handle.outcome is Outcome.SUCCEEDED and handle.result_url
    assert handle.update().note.startswith("could not save: ")
    assert os.listdir(tmp_path) == []


def test_expired_signed_url_triggers_one_fresh_poll(sim: Simulator, client: Client, tmp_path: Path) -> None:
    # The URL lives 1-2 s; the first download stalls 2.1 s, so it arrives expired (403).
    task = sim.add_task(FAKE_KEY, instant(url_ttl=1))
    sim.inject(Fault("slow", delay=2.1, path="/media/"))
    handle = watch(task, client=client, interval=0.1, save=tmp_path)
    snap = handle.wait(timeout=10)
    records = sim.requests_for(task)
    assert [(r.path.split("/")[1], r.status) for r in records] == [
        ("runway", 200), ("media", 403), ("runway", 200), ("media", 200)]
    assert handle.saved_path and Path(handle.saved_path).read_bytes() == DEMO_PATH.read_bytes()
    first_url_poll, fresh_poll = records[0], records[2]
    assert fresh_poll.time > first_url_poll.time
    assert snap.result_url is not None and "exp=" in snap.result_url  # the fresh URL is the one kept


def test_create_then_watch_in_two_lines(sim: Simulator) -> None:
    sim.set_default_timeline(quick(invisible_for=0.1))
    task_id = runway_widgets.create_text_to_video("a paper boat", api_key=FAKE_KEY, base_url=sim.base_url,
                                                  callback_url="https://example.com/hook")
    snap = runway_widgets.watch(task_id, api_key=FAKE_KEY, base_url=sim.base_url, interval=0.1).wait(timeout=10)
    assert snap.succeeded and snap.task_id == task_id and snap.action == "TEXT_TO_VIDEO"
    assert [r.path for r in sim.requests][0] == "/runway/pro/generate"


def test_watch_input_errors(sim: Simulator, client: Client) -> None:
    for bad in ("", "  ", "a b", "x\x00y"):
        with pytest.raises(ConfigError):
            watch(bad, client=client)
    for kwargs in ({"timeout": 0}, {"timeout": -1}, {"interval": 0}, {"give_up_after": -1},
                   {"not_found_grace": float("nan")}):
        with pytest.raises(ConfigError):
            watch("abc", client=client, **kwargs)
    assert sim.requests == [] and runway_widgets.live_watches() == []


# -- scale --------------------------------------------------------------------------------------


def test_two_hundred_watches_share_a_few_threads_and_the_budget(sim: Simulator, client: Client) -> None:
    # Six workers could send ~140 requests/s to the simulator (measured unbudgeted), so a
    # budget of 60/s is what binds here: a scheduler that ignored it would fail the check.
    rate, burst, window = 60.0, 10.0, 1.0
    budget = RequestBudget(rate=rate, burst=burst)
    sched = Scheduler(budget, max_workers=6)
    tasks = [sim.add_task(FAKE_KEY, Timeline.fast()) for _ in range(200)]
    started = time.monotonic()
    try:
        handles = [watch(t, client=client, pacing=FAST, timeout=30, scheduler=sched) for t in tasks]
        most_threads = 0
        while not all(h.done() for h in handles) and time.monotonic() - started < 20:
            ours = [t for t in threading.enumerate() if t.name.startswith("runway-widgets")]
            most_threads = max(most_threads, len(ours))
            time.sleep(0.05)
        assert all(h.outcome is Outcome.SUCCEEDED for h in handles), {h.outcome for h in handles}
        assert all(h.result_url for h in handles)
    finally:
        sched.shutdown()
    assert 2 <= most_threads <= 8
    times = sorted(r.time for r in sim.requests)
    assert all(sim.requests_for(t)[-1].status == 200 for t in tasks)
    assert len(times) == budget.spent
    busiest = max(bisect.bisect_left(times, t + window) - i for i, t in enumerate(times))
    # Arrival times jitter a little against the scheduler's clock: allow a few requests of slack.
    assert busiest <= burst + rate * window + 5, busiest
    assert time.monotonic() - started < 20

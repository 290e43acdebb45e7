"""The shared poller on a fake clock: no threads, no sleeps, no sockets.

The HTTP layer is replaced by a scripted stand-in for :class:`Client` (tests of the real
client run against the simulator elsewhere); this file is about timing and decisions.
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from typing import Callable, Iterator

import pytest

from runway_widgets import watch
from runway_widgets.budget import SDK_PER_WATCH, RequestBudget
from runway_widgets.errors import (
    AuthenticationError,
    GaveUpError,
    RateLimitedError,
    ServerError,
    TaskFailedError,
    TaskNotFoundError,
    WatchStoppedError,
    WatchTimeoutError,
)
from runway_widgets.gateways import Gateway
from runway_widgets.policy import PacingConfig
from runway_widgets.scheduler import Scheduler
from runway_widgets.snapshot import TaskSnapshot, parse_task
from runway_widgets.simulator import Fault, Simulator, Timeline
from runway_widgets.watch import Outcome, Watch, WatchSettings, WatchUpdate

from helpers import FAKE_KEY
from runway_widgets.workers import InlineExecutor


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def snap(status: str, progress: str = "0%", **extra: object) -> TaskSnapshot:
    result = parse_task({"task_id": "t", "status": status, "progress": progress, **extra})
    assert result is not None
    return result


class ScriptedClient:
    """Answers ``fetch`` from a function of (task id, fake time); records every call."""

    def __init__(self, clock: FakeClock, answer: Callable[[str, float], TaskSnapshot | Exception]) -> None:
        self.clock = clock
        self.answer = answer
        self.calls: list[tuple[float, str]] = []
        self.base_url = "http://127.0.0.1:1"
        self.key_fingerprint = 0

    def fetch(self, task_id: str) -> TaskSnapshot:
        self.calls.append((self.clock.now, task_id))
        result = self.answer(task_id, self.clock.now)
        if isinstance(result, Exception):
            raise result
        return result


def timeline(queue: float = 10, run: float = 30, outcome: str = "SUCCESS") -> Callable[[str, float], TaskSnapshot]:
    def answer(task_id: str, now: float) -> TaskSnapshot:
        if now < queue:
            return snap("QUEUED")
        if now < queue + run:
            return snap("IN_PROGRESS", f"{int(100 * (now - queue) / run)}%")
        if outcome == "SUCCESS":
            return snap("SUCCESS", "100%", result_url="https://cdn.example/v.mp4")
        return snap(outcome, "100%", fail_reason="boom")

    return answer


def make(clock: FakeClock, budget: RequestBudget | None = None) -> Scheduler:
    return Scheduler(budget=budget or RequestBudget(rate=1000, burst=1000), executor=InlineExecutor(),
                     clock=clock, threaded=False)


def add(sched: Scheduler, clock: FakeClock, client: ScriptedClient, task_id: str = "t", **settings: object) -> Watch:
    w = Watch(task_id, client, WatchSettings(**settings), clock=clock, rand=lambda: 0.5,  # type: ignore[arg-type]
              on_end=sched.remove)
    sched.add(w)
    return w


def run(sched: Scheduler, clock: FakeClock, until: Callable[[], bool], limit: float = 10_000) -> None:
    while not until():
        wait = sched.step()
        if until():
            return
        assert wait != float("inf"), "scheduler went idle before the condition held"
        clock.now += max(wait, 1e-6)
        assert clock.now < limit, "fake time ran away"


def test_first_poll_is_immediate_and_success_is_reported() -> None:
    clock = FakeClock()
    sched = make(clock)
    client = ScriptedClient(clock, timeline())
    w = add(sched, clock, client)
    sched.step()
    assert client.calls[0][0] == 0.0
    run(sched, clock, w.done)
    assert w.outcome is Outcome.SUCCEEDED and w.result_url == "https://cdn.example/v.mp4"
    assert w.wait(0) .status == "SUCCESS"
    assert sched.pending() == 0


def test_failure_raises_task_failed_with_reason() -> None:
    clock = FakeClock()
    sched = make(clock)
    w = add(sched, clock, ScriptedClient(clock, timeline(outcome="FAILURE")))
    run(sched, clock, w.done)
    assert w.outcome is Outcome.FAILED
    with pytest.raises(TaskFailedError, match="boom"):
        w.wait(0)


def test_cancelled_has_its_own_outcome() -> None:
    clock = FakeClock()
    sched = make(clock)
    w = add(sched, clock, ScriptedClient(clock, timeline(outcome="CANCELLED")))
    run(sched, clock, w.done)
    assert w.outcome is Outcome.CANCELLED


def test_not_exist_is_tolerated_for_the_grace_window() -> None:
    clock = FakeClock()
    sched = make(clock)
    visible_at = 10.0

    def answer(task_id: str, now: float) -> TaskSnapshot | Exception:
        return TaskNotFoundError("no") if now < visible_at else timeline(queue=visible_at)(task_id, now)

    w = add(sched, clock, ScriptedClient(clock, answer))
    run(sched, clock, w.done)
    assert w.outcome is Outcome.SUCCEEDED


def test_never_visible_ends_not_found_after_grace() -> None:
    clock = FakeClock()
    sched = make(clock)
    client = ScriptedClient(clock, lambda t, n: TaskNotFoundError("no"))
    w = add(sched, clock, client, not_found_grace=30.0)
    run(sched, clock, w.done)
    assert w.outcome is Outcome.NOT_FOUND
    assert 30.0 <= clock.now <= 36.0
    assert len(client.calls) <= 12  # gentle: 1 s growing to 5 s
    with pytest.raises(TaskNotFoundError, match="not found after 30 s"):
        w.wait(0)


def test_transient_errors_back_off_then_recover_with_note() -> None:
    clock = FakeClock()
    sched = make(clock)
    notes: list[str] = []

    def answer(task_id: str, now: float) -> TaskSnapshot | Exception:
        return ServerError("The server had an error (HTTP 503).", 503) if now < 20 else timeline(queue=20, run=10)(task_id, now)

    client = ScriptedClient(clock, answer)
    w = add(sched, clock, client)
    w.on_update(lambda u: notes.append(u.note))
    run(sched, clock, w.done)
    assert w.outcome is Outcome.SUCCEEDED
    assert any(n.startswith("retrying in") and "503" in n for n in notes)
    error_times = [t for t, _ in client.calls if t < 20]
    gaps = [b - a for a, b in zip(error_times, error_times[1:])]
    assert gaps == sorted(gaps), "backoff should grow"


def test_gives_up_after_errors_for_too_long() -> None:
    clock = FakeClock()
    sched = make(clock)
    w = add(sched, clock, ScriptedClient(clock, lambda t, n: ServerError("down", 502)), give_up_after=60.0)
    run(sched, clock, w.done)
    assert w.outcome is Outcome.GAVE_UP and 60 <= clock.now < 100
    with pytest.raises(GaveUpError, match="Gave up after"):
        w.wait(0)


def test_permanent_error_ends_at_once() -> None:
    clock = FakeClock()
    sched = make(clock)
    client = ScriptedClient(clock, lambda t, n: AuthenticationError("bad key", 401))
    w = add(sched, clock, client)
    sched.step()
    assert w.done() and w.outcome is Outcome.ERROR and len(client.calls) == 1
    with pytest.raises(AuthenticationError):
        w.wait(0)


def test_timeout_ends_the_watch_at_its_deadline() -> None:
    clock = FakeClock()
    sched = make(clock)
    w = add(sched, clock, ScriptedClient(clock, lambda t, n: snap("QUEUED")), timeout=100.0)
    run(sched, clock, w.done)
    assert w.outcome is Outcome.TIMED_OUT and clock.now == pytest.approx(100.0, abs=0.01)
    with pytest.raises(WatchTimeoutError, match="did not finish within 100 s"):
        w.wait(0)


def test_stop_takes_effect_immediately() -> None:
    clock = FakeClock()
    sched = make(clock)
    client = ScriptedClient(clock, lambda t, n: snap("QUEUED"))
    w = add(sched, clock, client)
    sched.step()
    w.stop()
    before = len(client.calls)
    for _ in range(5):
        clock.now += 100
        sched.step()
    assert len(client.calls) == before and sched.pending() == 0
    with pytest.raises(WatchStoppedError):
        w.wait(0)


def test_retry_after_is_honoured_and_pauses_every_watch() -> None:
    clock = FakeClock()
    sched = make(clock, RequestBudget(rate=100, burst=100))
    limited = {"done": False}

    def answer(task_id: str, now: float) -> TaskSnapshot | Exception:
        if task_id == "a" and now >= 4 and not limited["done"]:
            limited["done"] = True
            return RateLimitedError("slow down", 429, retry_after=20.0)
        return snap("QUEUED")

    client = ScriptedClient(clock, answer)
    add(sched, clock, client, "a")
    add(sched, clock, client, "b")
    run(sched, clock, lambda: limited["done"])
    hit = clock.now
    run(sched, clock, lambda: clock.now > hit + 40)
    after = [t for t, _ in client.calls if t > hit]
    assert min(after) >= hit + 20 - 1e-6, "nobody polls during the Retry-After pause"
    assert {task for t, task in client.calls if t > hit + 20} == {"a", "b"}
    assert sched.rate_limited == 1 and sched.budget.rate < 100


def test_budget_is_never_exceeded_and_nobody_starves() -> None:
    clock = FakeClock()
    sched = make(clock, RequestBudget(rate=5, burst=5))
    client = ScriptedClient(clock, lambda t, n: snap("QUEUED"))
    for i in range(200):
        add(sched, clock, client, f"task-{i}")
    run(sched, clock, lambda: clock.now >= 300)
    per_second: dict[int, int] = defaultdict(int)
    for t, _ in client.calls:
        per_second[int(t)] += 1
    window = [sum(per_second[s] for s in range(start, start + 10)) for start in range(0, 290)]
    assert max(window) <= 5 * 10 + 5, "10 s windows hold at most rate*10 + burst"
    polled = {task for _, task in client.calls}
    assert len(polled) == 200
    first_poll = {}
    for t, task in client.calls:
        first_poll.setdefault(task, t)
    assert max(first_poll.values()) <= 200 / 5 + 1, "first polls are served in order, no starvation"


def test_the_default_budget_grows_with_the_watches_to_what_the_sdk_would_send() -> None:
    # 10 requests/s capped 200 watches at a third of the SDK's rate: a tick that showed a
    # hundred finishes could not have them polled in a second or two (p50 lag 1-2x the
    # SDK's).  The default now grows to one request per 6 s per watch, bursts of 4 s of it.
    clock = FakeClock()
    budget = RequestBudget(per_watch=SDK_PER_WATCH)
    sched = make(clock, budget)
    client = ScriptedClient(clock, lambda t, n: snap("QUEUED"))
    watches = [add(sched, clock, client, f"task-{i}") for i in range(120)]
    assert (budget.configured_rate, budget.burst) == pytest.approx((20.0, 80.0))
    run(sched, clock, lambda: clock.now >= 120)
    times = sorted(t for t, _ in client.calls)
    assert 120 * 100 / 7.5 <= len(times) <= 120 * 120 / 6  # the SDK's pace or slower, not 10/s
    for w in watches[:110]:
        w.stop()
    assert (budget.configured_rate, budget.burst) == (10.0, 10.0)  # never below the base
    budget.penalize(clock.now, 0.0)  # a 429 halves the rate; growing again keeps that
    for i in range(110):
        add(sched, clock, client, f"more-{i}")
    assert budget.rate == pytest.approx(10.0) and budget.configured_rate == pytest.approx(20.0)


def test_a_429_halves_the_burst_as_well_as_the_rate() -> None:
    # 200 watches: 33/s, bursts of 133 right after a tick.  A gateway that limits requests
    # per second answers such a burst with 429s; the rate halved, but the bucket refilled
    # to the full 133 before the next tick, so every tick met the limit again.
    budget = RequestBudget(per_watch=SDK_PER_WATCH)
    budget.fit_watches(200)
    budget.wait_time(0.0)  # its clock starts

    def burst_at(now: float) -> int:
        sent = 0
        while budget.try_spend(now):
            sent += 1
        return sent

    assert burst_at(60.0) == 133
    budget.penalize(60.0, 0.0)
    assert burst_at(120.0) == 66  # half, after a whole quiet minute
    for _ in range(20):
        budget.reward()  # good answers restore the rate, and the burst with it
    assert burst_at(180.0) == 133


def test_a_budget_set_by_the_user_is_a_fixed_cap() -> None:
    from runway_widgets.scheduler import get_scheduler, set_request_budget, shutdown_scheduler

    try:
        set_request_budget(None)
        budget = get_scheduler().budget
        budget.fit_watches(600)
        assert budget.configured_rate == pytest.approx(100.0)  # the default scales
        set_request_budget(3.0)
        budget.fit_watches(600)
        assert (budget.configured_rate, budget.burst) == (3.0, 3.0)  # a cap the user set does not
        shutdown_scheduler()
        get_scheduler().budget.fit_watches(600)
        assert get_scheduler().budget.configured_rate == 3.0  # nor in the next poller
        set_request_budget(None)  # back to the default
        assert get_scheduler().budget.per_watch == SDK_PER_WATCH
    finally:
        set_request_budget(None)
        shutdown_scheduler()


def test_a_raising_subscriber_is_detached_and_polling_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    sched = make(clock)
    seen: list[WatchUpdate] = []
    w = add(sched, clock, ScriptedClient(clock, timeline(queue=2, run=5)))

    def bad(update: WatchUpdate) -> None:
        raise RuntimeError("view bug")

    w.on_update(bad)
    w.on_update(seen.append)
    run(sched, clock, w.done)
    assert w.outcome is Outcome.SUCCEEDED and seen[-1].outcome is Outcome.SUCCEEDED
    assert sum("raised; it was detached" in r.getMessage() for r in caplog.records) == 1


def test_terminal_state_stands_even_if_status_goes_backwards() -> None:
    clock = FakeClock()
    sched = make(clock)
    answers: Iterator[TaskSnapshot] = iter([snap("IN_PROGRESS", "50%"), snap("SUCCESS", result_url="https://x.example/v.mp4"),
                                            snap("IN_PROGRESS", "10%")])
    client = ScriptedClient(clock, lambda t, n: next(answers))
    w = add(sched, clock, client)
    run(sched, clock, w.done)
    for _ in range(3):
        clock.now += 50
        sched.step()
    assert w.outcome is Outcome.SUCCEEDED and w.snapshot is not None and w.snapshot.status == "SUCCESS"
    assert len(client.calls) == 2


def test_unknown_status_keeps_polling_until_timeout() -> None:
    clock = FakeClock()
    sched = make(clock)
    w = add(sched, clock, ScriptedClient(clock, lambda t, n: snap("EXPIRED")), timeout=60.0)
    run(sched, clock, w.done)
    assert w.outcome is Outcome.TIMED_OUT


def test_updates_carry_eta_once_progress_allows() -> None:
    clock = FakeClock()
    sched = make(clock)
    updates: list[WatchUpdate] = []
    w = add(sched, clock, ScriptedClient(clock, timeline(queue=5, run=100)), pacing=PacingConfig(refresh_period=0))
    w.on_update(updates.append)
    run(sched, clock, w.done)
    etas = [(u.elapsed, u.eta) for u in updates if u.eta is not None]
    assert etas, "an ETA appears once the task reports progress"
    elapsed, eta = etas[len(etas) // 2]
    assert abs((elapsed + eta) - 105) < 15


def test_repr_is_one_short_line() -> None:
    clock = FakeClock()
    sched = make(clock)
    w = add(sched, clock, ScriptedClient(clock, lambda t, n: snap("IN_PROGRESS", "45%")), "3d957031-9a2a-45e2-9dc7-bc8513059c50")
    sched.step()
    text = repr(w)
    assert "\n" not in text and len(text) < 80 and "45%" in text and "3d957031" in text


def test_process_wide_budget_is_configurable() -> None:
    from runway_widgets.scheduler import get_scheduler, set_request_budget, shutdown_scheduler

    try:
        set_request_budget(3.0, burst=6)
        assert (get_scheduler().budget.rate, get_scheduler().budget.burst) == (3.0, 6.0)
        set_request_budget(25.0)  # a running poller takes the new budget at once
        assert (get_scheduler().budget.rate, get_scheduler().budget.burst) == (25.0, 25.0)
        shutdown_scheduler()
        assert get_scheduler().budget.rate == 25.0  # and so does the next one
        with pytest.raises(ValueError):
            set_request_budget(0)
    finally:
        set_request_budget(None)
        shutdown_scheduler()


def test_a_new_budget_keeps_a_running_429_pause_and_the_reduced_rate(sim: Simulator) -> None:
    from runway_widgets.scheduler import get_scheduler, set_request_budget, shutdown_scheduler

    try:
        set_request_budget(10.0, 10.0)
        task = sim.add_task(FAKE_KEY, Timeline(queued_for=60))
        sim.inject(Fault("rate_limit", retry_after="30"))
        handle = watch(task, api_key=FAKE_KEY, base_url=sim.base_url, interval=0.1, save=False)
        sched = get_scheduler()
        deadline = time.monotonic() + 10
        while sched.rate_limited == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sched.rate_limited == 1 and sched.budget.rate == 5.0  # paused, rate halved
        set_request_budget(20.0)
        budget = get_scheduler().budget
        assert budget.paused_until > sched.clock() + 25 and budget.rate == 10.0 and budget.configured_rate == 20.0
        before = len(sim.requests_for(task))
        time.sleep(1.0)
        assert len(sim.requests_for(task)) == before  # still paused: nothing was sent
        handle.stop()
    finally:
        set_request_budget(None)
        shutdown_scheduler()
def ticking(period: float, phase: float, tasks: dict[str, tuple[float, float, float]]) -> Callable[[str, float], TaskSnapshot]:
    """A gateway refreshing every task at ``phase + k * period``; tasks: id -> (created, queue, run)."""

    def answer(task_id: str, now: float) -> TaskSnapshot:
        created, queue, run = tasks[task_id]
        tick = phase + math.floor((now - phase) / period) * period
        if tick < created:
            return snap("SUBMITTED")
        if tick < created + queue:
            return snap("QUEUED")
        if tick < created + queue + run:
            return snap("IN_PROGRESS", f"{int(100 * (tick - created - queue) / run)}%")
        return snap("SUCCESS", "100%", result_url="https://cdn.example/v.mp4")

    return answer


def test_watches_of_one_gateway_learn_its_ticks_together_and_a_new_one_starts_phase_locked() -> None:
    clock, period, phase = FakeClock(), 20.0, 7.0
    sched = make(clock)
    rng = random.Random(3)
    tasks = {f"t{i}": (rng.uniform(0, 20), rng.uniform(0, 60), rng.uniform(600, 900)) for i in range(12)}
    tasks["late"] = (600.3, 30.0, 120.0)
    client = ScriptedClient(clock, ticking(period, phase, tasks))
    gateway = Gateway(client.base_url)
    watches = []
    for i in range(12):
        w = Watch(f"t{i}", client, WatchSettings(), clock=clock, rand=random.Random(i).random, gateway=gateway,
                  on_end=sched.remove)
        sched.add(w, delay=tasks[f"t{i}"][0])
        watches.append(w)
    run(sched, clock, lambda: clock.now >= 600.3)
    assert gateway.cadence.locked and gateway.cadence.period == pytest.approx(period, rel=0.01)
    late = Watch("late", client, WatchSettings(), clock=clock, rand=random.Random(99).random, gateway=gateway,
                 on_end=sched.remove)
    sched.add(late)
    run(sched, clock, late.done)
    polls = [t for t, task in client.calls if task == "late"]
    # After its first poll, polls land close to a tick (just after it, or inside the
    # window where it is expected), none in the quiet middle of a period.
    offsets = [(t - phase) % period for t in polls[1:]]
    assert offsets and sum(min(o, period - o) < 2.5 for o in offsets) >= 0.8 * len(offsets), offsets
    end = 600.3 + 150.0
    visible = phase + math.ceil((end - phase) / period) * period
    assert polls[-1] - visible < 1.5  # the finish is seen within a second or so of its tick
    assert len(polls) < (polls[-1] - polls[0]) / 6.0  # fewer requests than the SDK's 6 s polling
    run(sched, clock, lambda: all(w.done() for w in watches))
    assert all(w.outcome is Outcome.SUCCEEDED for w in watches)


def test_when_tokens_are_scarce_a_poll_that_may_see_a_finish_goes_first() -> None:
    # 20 queued tasks want ~2.5 polls/s; the budget gives 1/s.  Tasks whose progress says
    # when they finish must not wait their turn behind them (first due, first served sees
    # those finishes late); the queued ones are still polled now and then.
    clock = FakeClock()
    sched = make(clock, RequestBudget(rate=1, burst=1))
    queued = ScriptedClient(clock, lambda t, n: snap("QUEUED"))
    watches = [add(sched, clock, queued, f"q{i}") for i in range(20)]
    runs = [90.0 + 25.0 * i for i in range(5)]
    hot = []
    for i, length in enumerate(runs):
        client = ScriptedClient(clock, timeline(queue=0, run=length))
        w = Watch(f"hot{i}", client, WatchSettings(), clock=clock, rand=random.Random(i).random, on_end=sched.remove)
        sched.add(w)
        hot.append((w, client, length))
    run(sched, clock, lambda: all(w.done() for w, _, _ in hot), limit=400)
    lags = sorted(client.calls[-1][0] - length for _, client, length in hot)
    assert lags[len(lags) // 2] < 2.5, lags
    run(sched, clock, lambda: clock.now >= 300)
    last = defaultdict(list)
    for t, task in queued.calls:
        last[task].append(t)
    gaps = [b - a for times in last.values() for a, b in zip(times, times[1:])]
    assert len(last) == 20 and max(gaps) < 60, "nobody starves"
    for other in watches:
        other.stop()

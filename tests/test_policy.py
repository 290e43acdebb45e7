"""The pacing policy, pure: no clock, no threads, no sockets.

Small simulated gateways drive the policy the way ``watch.py`` does (observe, then ask for
the next delay); the last test runs a small version of ``benchmarks/pacing.py`` so that a
regression in the policy fails CI, not just the benchmark.
"""

from __future__ import annotations

import importlib.util
import math
import random
import sys
from pathlib import Path
from typing import Callable, Optional, Tuple

import pytest

from runway_widgets.policy import (
    PacerState,
    PacingConfig,
    backoff_delay,
    estimate_finish,
    next_delay,
    observe,
    observe_absent,
    phase_cover,
)
from runway_widgets.snapshot import TaskState, parse_progress, state_from_status

Answer = Optional[Tuple[str, str]]  # (status, progress) or None for task_not_exist


def drive(view: Callable[[float], Answer], config: PacingConfig = PacingConfig(), seed: int = 0,
          limit: float = 3600.0) -> tuple[list[tuple[float, Answer, PacerState]], float]:
    """Poll ``view`` from t=0 as a watch would; return every poll and the terminal time."""
    rng = random.Random(seed)
    pacer, t, polls = PacerState(), 0.0, []
    while t < limit:
        answer = view(t)
        if answer is None:
            pacer = observe_absent(pacer, t, t)
        else:
            state = state_from_status(answer[0])
            pacer = observe(pacer, state, parse_progress(answer[1]), t, t, config.refresh_period, answer[0])
        polls.append((t, answer, pacer))
        if answer is not None and state_from_status(answer[0]).is_terminal:
            return polls, t
        delay = next_delay(pacer, config, t, rng.random())
        assert delay > 0
        t += delay
    raise AssertionError("the task never finished")


def gateway(period: float, phase: float, queue: float, run: float, submitted: bool = True,
            jumpy: bool = False) -> Callable[[float], Answer]:
    """A task behind a gateway refreshing at ``phase + k * period`` (period 0: continuously)."""

    def view(t: float) -> Answer:
        if period > 0:
            k = math.floor((t - phase) / period + 1e-9)
            if k < 0:
                return ("SUBMITTED", "0%") if submitted else ("QUEUED", "0%")
            t = phase + k * period
        elif submitted and t < phase:
            return "SUBMITTED", "0%"
        if t < queue:
            return "QUEUED", "0%"
        if t < queue + run:
            return "IN_PROGRESS", "0%" if jumpy else f"{int(100 * (t - queue) / run)}%"
        return "SUCCESS", "100%"

    return view


def visible_end(period: float, phase: float, end: float) -> float:
    return end if period <= 0 else phase + math.ceil((end - phase) / period) * period


# -- bounds -----------------------------------------------------------------------------------


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        PacingConfig(min_interval=0)
    with pytest.raises(ValueError):
        PacingConfig(min_interval=5, max_interval=2)
    with pytest.raises(ValueError):
        PacingConfig(fixed_interval=0)


def test_every_delay_respects_floor_and_ceiling() -> None:
    config = PacingConfig(min_interval=2.5, max_interval=9.0)
    for view in (gateway(15, 3.3, 40, 120), gateway(0, 2, 30, 90), gateway(15, 7.1, 20, 60, jumpy=True)):
        polls, _ = drive(view, config, seed=3)
        gaps = [b[0] - a[0] for a, b in zip(polls, polls[1:])]
        assert gaps and min(gaps) >= 2.5 - 1e-9 and max(gaps) <= 9.0 + 1e-9


def test_default_floor_is_one_request_per_second_per_task() -> None:
    for view in (gateway(15, 0.2, 10, 200), gateway(0, 1, 5, 150), gateway(15.3, 4, 60, 100)):
        polls, _ = drive(view, seed=1)
        gaps = [b[0] - a[0] for a, b in zip(polls, polls[1:])]
        assert min(gaps) >= 1.0 - 1e-9


def test_fixed_interval_is_obeyed_but_not_below_the_floor() -> None:
    pacer = observe(PacerState(), TaskState.RUNNING, 0.4, 0, 0)
    assert next_delay(pacer, PacingConfig(fixed_interval=7.0), 0.0, 0.9) == 7.0
    assert next_delay(PacerState(), PacingConfig(fixed_interval=7.0), 0.0, 0.1) == 7.0
    assert next_delay(pacer, PacingConfig(fixed_interval=0.2), 0.0, 0.5) == 1.0
    polls, _ = drive(gateway(15, 3, 20, 40), PacingConfig(fixed_interval=5.0))
    assert {round(b[0] - a[0], 9) for a, b in zip(polls, polls[1:])} == {5.0}


def test_free_running_jitter_spreads_within_its_bounds() -> None:
    config = PacingConfig(jitter=0.1)
    pacer = observe(PacerState(), TaskState.WAITING, 0.0, 0, 0, status="QUEUED")
    low, mid, high = (next_delay(pacer, config, 0.0, r) for r in (0.0, 0.5, 0.999999))
    assert low < mid < high
    assert low == pytest.approx(mid * 0.9) and high == pytest.approx(mid * 1.1, rel=1e-5)
    assert next_delay(pacer, PacingConfig(jitter=0.0), 0.0, 0.0) == next_delay(pacer, PacingConfig(jitter=0.0), 0.0, 0.99)


def test_not_visible_backs_off_gently_and_stays_bounded() -> None:
    pacer, delays = PacerState(), []
    for i in range(12):
        pacer = observe_absent(pacer, float(i), float(i))
        delays.append(next_delay(pacer, PacingConfig(), float(i), 0.5))
    assert delays[0] <= 2.0  # a fresh id usually shows within seconds
    assert all(b >= a for a, b in zip(delays, delays[1:]))
    assert delays[-1] == pytest.approx(5.0) and max(delays) <= 5.0


# -- errors ---------------------------------------------------------------------------------


def test_backoff_grows_then_caps() -> None:
    config = PacingConfig(backoff_base=1.0, backoff_cap=30.0)
    full = [backoff_delay(config, n, None, 0.999999) for n in range(1, 9)]
    assert full[:5] == pytest.approx([1, 2, 4, 8, 16], rel=1e-5)
    assert full[5:] == pytest.approx([30, 30, 30], rel=1e-5)
    assert backoff_delay(config, 4, None, 0.0) == pytest.approx(4.0)  # jitter keeps the upper half
    assert backoff_delay(config, 10**6, None, 0.5) <= 30.0


def test_backoff_honours_retry_after_capped() -> None:
    config = PacingConfig(max_retry_after=120.0)
    assert backoff_delay(config, 1, 45.0, 0.5) == 45.0
    assert backoff_delay(config, 1, 500.0, 0.5) == 120.0
    assert backoff_delay(config, 6, 2.0, 0.999999) == pytest.approx(30.0, rel=1e-5)  # own backoff is longer
    assert backoff_delay(config, 1, float("nan"), 0.5) == pytest.approx(1.0)
    assert backoff_delay(PacingConfig(min_interval=3.0), 1, 0.0, 0.0) == 3.0


# -- phase ----------------------------------------------------------------------------------


def test_phase_cover_intersects_brackets_modulo_the_period() -> None:
    assert phase_cover((), 15.0) == (0.0, 15.0)
    start, width = phase_cover(((3.0, 5.0), (18.5, 21.0)), 15.0)
    assert (start, width) == pytest.approx((3.5, 1.5))
    # A bracket as wide as the period holds a tick whatever the phase: it is ignored.
    assert phase_cover(((3.0, 5.0), (20.0, 36.0)), 15.0) == pytest.approx((3.0, 2.0))


def test_phase_cover_wraps_around_zero() -> None:
    start, width = phase_cover(((14.0, 16.0), (29.5, 30.5)), 15.0)
    assert start == pytest.approx(14.5) and width == pytest.approx(1.0)


def test_phase_cover_rejects_brackets_no_phase_fits() -> None:
    assert phase_cover(((3.0, 5.0), (10.0, 12.0)), 15.0) is None
    # Back-to-back brackets (what a continuous server shows) share no tick.
    assert phase_cover(((3.0, 5.0), (20.0, 22.0)), 15.0) is None


# -- ticking and continuous servers -------------------------------------------------------------


def test_ticking_server_is_found_and_polls_land_just_after_ticks() -> None:
    period, phase, queue, run = 15.0, 4.2, 40.0, 150.0
    polls, seen = drive(gateway(period, phase, queue, run), seed=2)
    settled = [(t, p) for t, _, p in polls if t > queue + 30]
    assert settled and all(p.ticking for _, p in settled)
    # Once the phase is pinned, changes are seen within a second of their tick ...
    changes = [t for (t, a, _), (_, b, _) in zip(polls[1:], polls) if a != b]
    assert len(changes) > 8 and all((t - phase) % period < 1.0 for t in changes[-6:])
    assert seen - visible_end(period, phase, queue + run) < 1.0
    # ... with about one request per tick, far fewer than a blind 6 s poller.
    late = [t for t, _ in settled]
    assert len(late) / ((late[-1] - late[0]) / period) < 1.6


def test_ticking_server_without_progress_is_still_seen_promptly() -> None:
    # Progress jumps 0 -> 100 %: only the first changes place the tick, a few seconds wide.
    period, phase, queue, run = 15.0, 9.5, 50.0, 200.0
    polls, seen = drive(gateway(period, phase, queue, run, jumpy=True), seed=4)
    assert polls[-1][2].ticking
    assert seen - visible_end(period, phase, queue + run) < 4.0
    run_polls = [t for t, a, _ in polls if a and a[0] == "IN_PROGRESS"]
    assert len(run_polls) <= 2 * run / period + 2  # 2.5 per tick is what the SDK spends


def test_continuous_server_is_not_taken_for_a_ticking_one() -> None:
    queue, run = 37.0, 120.0
    polls, seen = drive(gateway(0.0, 2.0, queue, run), seed=5)
    running = [(t, p) for t, a, p in polls if a and a[0] == "IN_PROGRESS"]
    assert not any(p.ticking for _, p in running)
    # Progress moving between polls a few seconds apart gives it away within a tick or
    # so; from then on, no more waiting a whole tick between polls.
    settled = [(t, p) for t, p in running if t > queue + 25]
    assert all(p.ticking is False for _, p in settled)
    assert max(b[0] - a[0] for a, b in zip(settled, settled[1:])) < 9.0
    assert seen - (queue + run) < 3.0  # progress gives the finish away


def test_short_queue_on_a_continuous_server_is_not_frozen_for_a_period() -> None:
    # The demo's shape: SUBMITTED->QUEUED seen in a sharp bracket (a lone tick candidate),
    # then the run starts 2 s later.  Aiming only at the next "tick" would leave the card
    # on QUEUED for ~13 s; the look between ticks must catch the run within half a period.
    queue, run = 5.5, 8.0
    for seed in range(5):
        polls, seen = drive(gateway(0.0, 2.5, queue, run), seed=seed)
        first_running = min(t for t, a, _ in polls if a and a[0] == "IN_PROGRESS")
        assert first_running - queue <= 7.5 + 1.0
        assert seen - (queue + run) < 3.0


def test_continuous_server_that_looks_ticking_by_chance_is_unmasked() -> None:
    # SUBMITTED->QUEUED at 5 s and QUEUED->RUNNING at 35 s: exactly two periods apart,
    # so the first changes fit a 15 s tick.  Continuous progress must give it away.
    queue, run = 35.0, 200.0
    polls, seen = drive(gateway(0.0, 5.0, queue, run), seed=6)
    later = [p for t, _, p in polls if t > queue + 45]
    assert later and all(p.ticking is False for p in later)
    assert seen - (queue + run) < 3.0


def test_two_changes_closer_than_a_period_rule_out_ticks() -> None:
    pacer = observe(PacerState(), TaskState.RUNNING, 0.10, 0.0, 0.0)
    pacer = observe(pacer, TaskState.RUNNING, 0.12, 2.0, 2.0)
    assert pacer.ticking is None  # one change: could be a tick
    pacer = observe(pacer, TaskState.RUNNING, 0.14, 4.0, 4.0)
    assert pacer.ticking is False  # a second one 4 s later cannot be
    # Changes a period apart, each seen within a second, are what a ticking server shows.
    ticked, progress = observe(PacerState(), TaskState.RUNNING, 0.10, 0.0, 0.0), 0.10
    for t in (2.0, 17.0, 32.0):
        ticked = observe(ticked, TaskState.RUNNING, progress, t - 1.0, t - 1.0)  # just before: unchanged
        progress += 0.05
        ticked = observe(ticked, TaskState.RUNNING, progress, t, t)
    assert ticked.ticking is True
    assert phase_cover(ticked.brackets, 15.0) == pytest.approx((1.0, 1.0))


def test_drifting_loop_is_followed() -> None:
    # new-api sleeps 15 s *after* each pass: the real period is a little longer.
    period, phase, queue, run = 15.3, 1.0, 30.0, 240.0
    polls, seen = drive(gateway(period, phase, queue, run), seed=7)
    assert seen - visible_end(period, phase, queue + run) < 1.5
    late = [t for t, _, _ in polls if t > queue + 30]
    assert len(late) / ((late[-1] - late[0]) / period) < 2.0


def test_drifting_loop_does_not_hide_a_finish_that_comes_with_no_warning() -> None:
    # 0 -> 100 %: nothing shows the drift until the end, a tick later than predicted.
    period, phase, queue, run = 15.3, 6.0, 45.0, 280.0
    polls, seen = drive(gateway(period, phase, queue, run, jumpy=True), seed=9)
    assert seen - visible_end(period, phase, queue + run) < 5.5


def test_wrong_period_still_sees_the_finish_soon() -> None:
    # A gateway that ticks every 20 s (or 10 s) while the policy looks for 15 s.
    rng = random.Random(10)
    for period in (20.0, 10.0):
        lags = []
        for i in range(30):
            phase, queue, run = rng.uniform(0, period), rng.uniform(5, 100), rng.uniform(60, 250)
            _, seen = drive(gateway(period, phase, queue, run), seed=i)
            lags.append(seen - visible_end(period, phase, queue + run))
        assert sum(lags) / len(lags) < 3.0 and max(lags) < 9.0, (period, max(lags))


# -- progress -------------------------------------------------------------------------------


def test_estimate_finish_from_two_progress_marks() -> None:
    pacer = observe(PacerState(), TaskState.RUNNING, 0.0, 0.0, 0.0)
    pacer = observe(pacer, TaskState.RUNNING, 0.2, 9.9, 10.1)
    assert estimate_finish(pacer) is None  # one mark says nothing about speed
    pacer = observe(pacer, TaskState.RUNNING, 0.5, 39.9, 40.1)
    assert estimate_finish(pacer) == pytest.approx(90.0)
    pacer = observe(pacer, TaskState.RUNNING, 0.5, 50.0, 50.0)  # no new mark: same estimate
    assert estimate_finish(pacer) == pytest.approx(90.0)


def test_estimate_finish_ignores_progress_going_backwards() -> None:
    pacer = observe(PacerState(), TaskState.RUNNING, 0.6, 10.0, 10.0)
    pacer = observe(pacer, TaskState.RUNNING, 0.3, 20.0, 20.0)
    assert estimate_finish(pacer) is None


# -- the benchmark, small -------------------------------------------------------------------


def _benchmark():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "pacing.py"
    spec = importlib.util.spec_from_file_location("_pacing_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_benchmark_target_holds_on_a_small_run() -> None:
    bench = _benchmark()
    rows = bench.run_scenario(bench.Scenario("ticking", 15.0, True), 500, 11)
    ok, line = bench.verdict(rows)
    assert ok, line
    ours, sdk = rows[0], next(r for r in rows if r.policy == bench.SDK)
    assert ours.p50 <= 0.4 * sdk.p50 and ours.requests <= 0.9 * sdk.requests  # with margin
    assert ours.p95 < sdk.p95


def test_benchmark_continuous_server_stays_sane() -> None:
    bench = _benchmark()
    rows = bench.run_scenario(bench.Scenario("continuous", 0.0, False), 500, 12)
    ours, sdk = rows[0], next(r for r in rows if r.policy == bench.SDK)
    assert ours.mean < sdk.mean and ours.p95 < 1.1 * sdk.p95
    assert ours.requests < 1.2 * sdk.requests

"""When to poll next: adaptive pacing, error backoff, Retry-After.  Pure.

The gateway does not know a task's state the moment it changes: it refreshes every
unfinished task from upstream on a fixed cadence (about every 15 s in new-api) and the
feed shows the state as of the last refresh.  So a finish becomes *visible* only at a
refresh tick.  A poller that knows when the ticks fall can poll just after each one and
see the finish within a fraction of a second, with one request per tick; the Runway SDK,
polling blindly every 6 +- 1.5 s, sees it 3 s late on average with 2.5 requests per tick.

:class:`PacerState` is a small immutable summary of what the watch has seen, updated by
:func:`observe`; :func:`next_delay` turns it into the next delay.  Every change the poller
sees between two polls brackets a tick; intersecting those brackets modulo the period
gives the tick phase.  Brackets that cannot share one phase mean the server is not
ticking (it updates continuously), and pacing falls back to an estimate of the finish
time from reported progress.  Nothing here reads a clock or a random source: ``now`` and
``rand`` are arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional, Tuple

from .snapshot import TaskState

__all__ = [
    "PacingConfig",
    "PacerState",
    "observe",
    "observe_absent",
    "next_delay",
    "backoff_delay",
    "phase_cover",
    "estimate_finish",
]

Signature = Tuple[str, str, Optional[int]]
Interval = Tuple[float, float]

_ABSENT: Signature = ("absent", "", None)
_MAX_BRACKETS = 6  # enough to pin the phase; keeps a watch's memory flat


@dataclass(frozen=True)
class PacingConfig:
    """How a watch paces its polls.

    Parameters
    ----------
    min_interval:
        Floor between two polls of one task (the default allows one request per second).
    max_interval:
        Ceiling between two polls of one task.
    fixed_interval:
        Poll on a fixed clock instead (still no faster than ``min_interval``).
    refresh_period:
        The gateway's refresh cadence to look for; 0 disables tick alignment.
    tick_margin:
        How long after a predicted tick to poll, so the refresh has surely landed.
    jitter:
        Relative spread of free-running delays, so many watches do not poll in step.
    backoff_base, backoff_cap:
        Error backoff: ``base * 2**(n-1)`` seconds after the n-th consecutive error, capped.
    max_retry_after:
        The longest Retry-After that is honoured as given.
    """

    min_interval: float = 1.0
    max_interval: float = 30.0
    fixed_interval: float | None = None
    refresh_period: float = 15.0
    tick_margin: float = 0.4
    jitter: float = 0.1
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if not (0 < self.min_interval <= self.max_interval):
            raise ValueError("need 0 < min_interval <= max_interval")
        if self.fixed_interval is not None and self.fixed_interval <= 0:
            raise ValueError("fixed_interval must be positive")


@dataclass(frozen=True)
class PacerState:
    """What one watch has seen so far, in a few numbers (a value: :func:`observe` returns a new one)."""

    last_at: float | None = None  # midpoint of the last poll: when the server answered it
    signature: Signature | None = None
    absent_count: int = 0
    state_since: float | None = None
    progress_first: tuple[float, float] | None = None  # (progress, when first seen) of the first mark
    progress_mark: tuple[float, float] | None = None  # the same for the latest mark
    brackets: tuple[Interval, ...] = field(default_factory=tuple)
    ticking: bool | None = None  # None: no evidence yet; False: recent brackets disagree

    @property
    def state(self) -> TaskState | None:
        """The last visible state, or None before the task was seen."""
        if self.signature is None or self.signature is _ABSENT or self.signature[0] == "absent":
            return None
        return TaskState(self.signature[0])


def observe_absent(pacer: PacerState, sent: float, received: float) -> PacerState:
    """Record a ``task_not_exist`` answer."""
    return replace(pacer, last_at=(sent + received) / 2, absent_count=pacer.absent_count + 1,
                   signature=pacer.signature or _ABSENT)


def observe(
    pacer: PacerState,
    state: TaskState,
    progress: float | None,
    sent: float,
    received: float,
    refresh_period: float = 15.0,
    status: str = "",
) -> PacerState:
    """Record a visible snapshot polled between ``sent`` and ``received`` (monotonic seconds).

    ``status`` is the raw status word: QUEUED after SUBMITTED is a change worth seeing
    even though both are "waiting".
    """
    # The server read the task somewhere between our send and our receipt; the midpoint
    # is off by at most half a round trip (milliseconds to ~100 ms).
    at = (sent + received) / 2
    percent = None if progress is None else int(round(progress * 100))
    sig: Signature = (state.value, status, percent)
    old = pacer.signature
    updates: dict = {"last_at": at, "signature": sig}
    if old is None or old[0] != sig[0]:
        updates["state_since"] = at
    if percent is not None and 0 < percent < 100 and state is TaskState.RUNNING and (old is None or old[2] != percent):
        updates["progress_mark"] = (progress, at)
        if pacer.progress_first is None:
            updates["progress_first"] = (progress, at)
    changed = old is not None and old[0] != "absent" and old != sig and pacer.last_at is not None
    if changed and refresh_period > 0:
        # The change landed between the server answering the previous poll and this one:
        # (previous, this] holds a refresh tick.
        bracket = (pacer.last_at, at)  # type: ignore[assignment]
        if bracket[1] - bracket[0] < refresh_period:
            # Only recent brackets count: a gateway whose loop sleeps 15 s *after* its work
            # drifts slowly, and a phase pinned long ago would then reject it wrongly.
            brackets = (pacer.brackets + (bracket,))[-_MAX_BRACKETS:]
            updates["brackets"] = brackets
            if phase_cover(brackets, refresh_period) is None:
                updates["ticking"] = False
            elif brackets[-1][0] - brackets[0][1] >= refresh_period / 2:
                # One bracket proves nothing: only changes that recur about a period
                # apart on one phase are evidence of a ticking gateway.
                updates["ticking"] = True
            else:
                updates["ticking"] = None
    return replace(pacer, **updates)


def _arcs(bracket: Interval, period: float) -> list[Interval]:
    """A time bracket as one or two intervals of phase in [0, period)."""
    lo = bracket[0] % period
    hi = lo + (bracket[1] - bracket[0])
    return [(lo, period), (0.0, hi - period)] if hi > period else [(lo, hi)]


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    out = []
    for lo1, hi1 in a:
        for lo2, hi2 in b:
            lo, hi = max(lo1, lo2), min(hi1, hi2)
            # Strict: brackets that only touch share no tick, and two changes seen in
            # back-to-back brackets need two ticks (a continuous server shows exactly that).
            if lo < hi:
                out.append((lo, hi))
    return sorted(out)


def phase_cover(brackets: tuple[Interval, ...], period: float) -> tuple[float, float] | None:
    """The smallest arc ``(start, width)`` of tick phases consistent with every bracket.

    Returns None when no single phase fits them all (the server is not ticking with this
    period), and ``(0, period)`` when there is nothing to go on.
    """
    feasible: list[Interval] = [(0.0, period)]
    for bracket in brackets:
        if bracket[1] - bracket[0] >= period:
            continue
        feasible = _intersect(feasible, _arcs(bracket, period))
        if not feasible:
            return None
    # The cover is the circle minus its largest gap between feasible pieces.
    best_gap, best_end = -1.0, feasible[0][0]
    for i, (lo, _hi) in enumerate(feasible):
        prev_hi = feasible[i - 1][1] - (period if i == 0 else 0.0)
        if lo - prev_hi > best_gap:
            best_gap, best_end = lo - prev_hi, lo
    width = max(0.0, period - best_gap)
    return best_end, min(width, period)


def _clamp(delay: float, config: PacingConfig) -> float:
    return min(config.max_interval, max(config.min_interval, delay))


def _spread(delay: float, config: PacingConfig, rand: float) -> float:
    return delay * (1.0 + config.jitter * (2.0 * rand - 1.0))


def estimate_finish(pacer: PacerState) -> float | None:
    """Predicted finish (monotonic seconds) from the progress rate, or None.

    Needs two distinct progress marks: one mark says nothing about speed, and the run
    start is known only as coarsely as the queue-to-run change was seen.
    """
    if pacer.progress_first is None or pacer.progress_mark is None:
        return None
    (p1, t1), (p2, t2) = pacer.progress_first, pacer.progress_mark
    if p2 <= p1 or t2 <= t1:
        return None
    return t2 + (1.0 - p2) * (t2 - t1) / (p2 - p1)


def _tick_delay(pacer: PacerState, config: PacingConfig, now: float) -> float | None:
    """Delay to the next useful poll around a predicted tick, or None if the phase is unknown."""
    period = config.refresh_period
    cover = phase_cover(pacer.brackets, period) if pacer.brackets else None
    if cover is None or cover[1] >= period * 0.8:
        return None
    start, width = cover
    if width > 2.0:
        # Wide window: poll its middle as well as just after it, halving it every tick.
        offsets = [width / 2, width + config.tick_margin]
    else:
        # Narrow window: one poll just after it, plus a probe just before it.  A change
        # seen by the probe cannot come from a tick, which unmasks a server that updates
        # continuously (its every poll shows a change and would otherwise look ticked).
        offsets = [-1.5, width + config.tick_margin]
    earliest = now + config.min_interval
    base = start + math.floor((earliest - start) / period) * period - period
    for k in range(4):
        for offset in offsets:
            target = base + k * period + offset
            if target >= earliest:
                return target - now
    return None  # pragma: no cover - four periods always contain a target


def next_delay(pacer: PacerState, config: PacingConfig, now: float, rand: float) -> float:
    """Seconds until the next poll of a task that answered normally.

    Parameters
    ----------
    pacer:
        The watch's summary after its latest observation.
    config:
        The pacing settings.
    now:
        Monotonic seconds (the same clock as the observations).
    rand:
        A uniform number in [0, 1) for jitter.
    """
    if config.fixed_interval is not None:
        return max(config.min_interval, config.fixed_interval)
    state = pacer.state
    if state is None:
        # Not visible yet: CometAPI says wait a few seconds and poll again.
        return _clamp(_spread(min(1.0 + 0.5 * pacer.absent_count, 5.0), config, rand), config)
    if config.refresh_period > 0 and pacer.ticking:
        tick = _tick_delay(pacer, config, now)
        if tick is not None:
            # Positive-only jitter: never poll before the tick has surely landed.
            return min(config.max_interval, tick + 0.05 * rand * config.refresh_period / 15.0)
    in_state = now - (pacer.state_since if pacer.state_since is not None else now)
    if state is TaskState.RUNNING:
        eta = estimate_finish(pacer)
        if eta is not None:
            remaining = eta - now
            # Approach the predicted finish geometrically, then hold near the floor; if
            # the prediction was wrong, back off slowly rather than hammering.
            delay = remaining * 0.4 if remaining > 0 else 1.0 + 0.25 * -remaining
            return _clamp(_spread(min(delay, 5.0), config, rand), config)
        return _clamp(_spread(min(2.0 + 0.05 * in_state, 5.0), config, rand), config)
    # Waiting or unknown: start brisk (the first refresh tick is informative), then ease off.
    return _clamp(_spread(min(2.0 + 0.1 * in_state, 6.0), config, rand), config)


def backoff_delay(config: PacingConfig, consecutive_errors: int, retry_after: float | None, rand: float) -> float:
    """Delay after the n-th transient error in a row, honouring Retry-After (capped).

    Full jitter on the upper half keeps a crowd of watches from retrying in step.
    """
    n = max(1, consecutive_errors)
    backoff = min(config.backoff_cap, config.backoff_base * 2 ** min(n - 1, 16))
    backoff = backoff * (0.5 + 0.5 * rand)
    if retry_after is not None and math.isfinite(retry_after):
        backoff = max(backoff, min(retry_after, config.max_retry_after))
    return max(config.min_interval, backoff)

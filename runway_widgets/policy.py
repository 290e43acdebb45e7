"""When to poll next: adaptive pacing, error backoff, Retry-After.  Pure.

The gateway does not know a task's state the moment it changes: it refreshes unfinished
tasks from upstream on a cadence (new-api sleeps 15 s between passes, so the period is
15 s plus however long a pass takes) and the feed shows the state as of the last refresh.
A finish becomes *visible* only at a refresh tick.  A poller that knows when the ticks
fall can poll just after each one and see the finish within a second, with about one
request per tick; the Runway SDK, polling blindly every 6 +- 1.5 s, sees it 3 s late on
average with 2.5 requests per tick.

:func:`observe` folds each answer into a :class:`PacerState`; :func:`next_delay` turns
that into the next delay.  A change seen between two polls brackets a tick; brackets
intersected modulo the period give the tick phase.  Evidence is weighed, not assumed:

* ticks are a period apart, so two changes that need ticks closer than that mean the
  server updates continuously: pacing then follows the finish estimated from progress;
* a change outside the predicted window, or a task that moves every tick showing no
  change after it, means the phase moved (the loop drifts, the gateway restarted): it is
  learnt again from the next change;
* a probe just before a predicted tick unmasks a server that changes between ticks.

Nothing here reads a clock or a random source: ``now`` and ``rand`` are arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional, Tuple

from .snapshot import TaskState

__all__ = ["PacingConfig", "PacerState", "observe", "observe_absent", "next_delay", "backoff_delay",
           "phase_cover", "estimate_finish"]

Signature = Tuple[str, str, Optional[int]]
Interval = Tuple[float, float]

_ABSENT: Signature = ("absent", "", None)
_MAX_BRACKETS = 6  # enough to pin the phase; keeps a watch's memory flat
_CLOSE = 0.9  # ticks are at least this many periods apart (slack for round trips)
_SHARP = 0.3  # share of a period: a bracket this narrow is evidence, and worth aiming at
_NARROW = 0.5  # share of a period: a proven phase known no better is not worth aiming at
_PROBE = 0.3  # s before a predicted tick: a change seen there did not come from the tick
_BISECT = 0.5  # s: wider windows are halved while the task changes every tick
_FOLLOW_UPS = 3  # quick polls, a floor apart, after a tick that should have shown
_MISS_AFTER = 3.3  # s past a predicted window: the follow-ups are done, the tick missed
_BACKUP = 2.0  # s after a tick: a second look for a task that changes only when it ends,
_DRIFT = 0.5  # ... and later by this much per period since the phase was last seen
_QUIET = 2  # quiet polls between ticks that settle it: changes wait for ticks
_LATE = 0.05  # s: the most (positive-only) jitter on a tick-aligned poll


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
    brackets: tuple[Interval, ...] = field(default_factory=tuple)  # sharp, on one phase
    last_change: Interval | None = None  # (poll before, poll that saw it) of the latest change
    tick_floor: float | None = None  # the next tick cannot come before this
    ticking: bool | None = None  # None: unproven; False: not ticking at this period
    quiet: int = 0  # polls well between ticks that saw a moving task unchanged

    @property
    def state(self) -> TaskState | None:
        """The last visible state, or None before the task was seen."""
        if self.signature is None or self.signature[0] == "absent":
            return None
        return TaskState(self.signature[0])


def observe_absent(pacer: PacerState, sent: float, received: float) -> PacerState:
    """Record a ``task_not_exist`` answer."""
    return replace(pacer, last_at=(sent + received) / 2, absent_count=pacer.absent_count + 1,
                   signature=pacer.signature or _ABSENT)


def observe(pacer: PacerState, state: TaskState, progress: float | None, sent: float, received: float,
            refresh_period: float = 15.0, status: str = "") -> PacerState:
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
    if old is not None and old[0] != "absent" and old != sig and pacer.last_at is not None:
        # The change landed between the server answering the previous poll and this one,
        # and (if the server ticks) no sooner than a period after the previous tick.
        updates["last_change"] = (pacer.last_at, at)
        if refresh_period > 0:
            floor = pacer.tick_floor if pacer.tick_floor is not None else -math.inf
            updates.update(_learn(pacer, max(pacer.last_at, floor), at, refresh_period))
    elif refresh_period > 0 and pacer.ticking is not False and _moving(pacer, refresh_period):
        if _missed(pacer, at, refresh_period):
            # A task that changes every tick did not change at the predicted tick nor in
            # the seconds after it: the tick came late or the period is not what we think.
            updates.update(brackets=(), ticking=None)
        elif pacer.last_change is not None and at - pacer.last_change[1] >= refresh_period / 2:
            # Unchanged half a period after its last change: this server holds changes
            # back until a tick (a continuous one would have shown the progress moving).
            updates["quiet"] = pacer.quiet + 1
    return replace(pacer, **updates)


def _learn(pacer: PacerState, lo: float, hi: float, period: float) -> dict:
    """What a change whose tick fell in ``(lo, hi]`` says about the server's ticks."""
    if lo >= hi:
        # Its tick would have to come less than a period after the previous one: this
        # server updates continuously (or faster than we look for).  Stop aiming at ticks.
        return {"ticking": False, "brackets": ()}
    out: dict = {}
    old = phase_cover(pacer.brackets, period) if pacer.brackets else None
    sharp = hi - lo < _SHARP * period
    # Once shown not to tick at this period, a chance alignment must not convince us
    # otherwise; and a bracket a period wide surely holds a tick, saying nothing.
    if pacer.ticking is not False and hi - lo < period:
        if old is not None and phase_cover(pacer.brackets + ((lo, hi),), period) is None:
            # Outside the predicted window.  Just before it, from a task that moves every
            # tick, it means changes are not held back until ticks.  Otherwise the tick
            # came late (new-api's loop sleeps 15 s *after* its work, so it drifts; a
            # restart shifts it): learn the phase again from this change.
            start, width = old
            if (start - hi) % period < (lo - start - width) % period and _moving(pacer, period):
                return {"ticking": False, "brackets": ()}
            out = {"brackets": ((lo, hi),) if sharp else (), "ticking": None}
        elif sharp and not (pacer.ticking and phase_cover(pacer.brackets + ((lo, hi),), period) == old):
            # (Once proven, a bracket that narrows nothing would only push sharper ones out.)
            brackets = (pacer.brackets + ((lo, hi),))[-_MAX_BRACKETS:]
            cover = phase_cover(brackets, period)
            # One bracket proves nothing: sharp changes that recur on one narrow phase,
            # about a period or more apart, are evidence of a ticking gateway.
            proven = (len(brackets) >= 2 and brackets[-1][0] - brackets[0][1] >= period / 2
                      and cover is not None and cover[1] < _NARROW * period)
            out = {"brackets": brackets, "ticking": True if proven else pacer.ticking}
    # Where in the predicted window this tick fell bounds where the next one can fall.
    cover = phase_cover(out.get("brackets", pacer.brackets), period)
    if cover is not None and cover[1] < _NARROW * period:
        first = cover[0] + (math.floor((lo - cover[0] - cover[1]) / period) + 1) * period
        lo = max(lo, first) if first <= hi else lo
    return {**out, "tick_floor": lo + _CLOSE * period}


def _missed(pacer: PacerState, at: float, period: float) -> bool:
    """Has the first tick predicted after the last change passed unseen by ``at``?"""
    cover = phase_cover(pacer.brackets, period) if pacer.brackets else None
    if cover is None or cover[1] >= _NARROW * period or pacer.last_change is None:
        return False
    start, width = cover
    # The next tick's window ends at least half a period after the change seen last.
    k = math.ceil((pacer.last_change[1] + period / 2 - start - width) / period)
    return at > start + k * period + width + _MISS_AFTER


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


def _moving(pacer: PacerState, period: float, now: float | None = None) -> bool:
    """Does this running task change at every tick (progress >= 2 % a tick)?

    With ``now``: and did the last tick bring a change (else it stalled, or is too slow)?
    """
    if pacer.state is not TaskState.RUNNING or pacer.progress_first is None or pacer.progress_mark is None:
        return False
    if now is not None and (pacer.last_change is None or now - pacer.last_change[1] > 1.6 * period):
        return False
    (p1, t1), (p2, t2) = pacer.progress_first, pacer.progress_mark
    return t2 > t1 and (p2 - p1) / (t2 - t1) * period >= 0.02


def _tick_delay(pacer: PacerState, config: PacingConfig, now: float) -> float | None:
    """Delay to the next useful poll around a predicted tick, or None if the phase is unknown."""
    period = config.refresh_period
    cover = phase_cover(pacer.brackets, period) if pacer.brackets else None
    if cover is None or cover[1] >= (_NARROW if pacer.ticking else _SHARP) * period:
        return None
    start, width = cover
    after = width + config.tick_margin  # just after the window: sees the tick
    moving = _moving(pacer, period, now)
    if pacer.state is not TaskState.RUNNING:
        # Waiting: one look per tick, with a probe just before it so that the start of
        # the run lands in a sharp bracket.  For the first two periods also looks between
        # ticks: on a server that does not tick, a short queue's end shows there (off the
        # predicted tick) a third to half a period late, and a demo's card does not sit frozen.
        waited = now - (pacer.state_since if pacer.state_since is not None else now)
        between = [-2 * period / 3, -period / 3] if waited < period else [-period / 2] if waited < 2 * period else []
        plan = between + [-_PROBE, after]
    elif moving:
        # Every tick brings a change: halve a wide window with a poll in its middle; if
        # the change does not show just after the window, the tick is late: look again
        # every second for a few seconds.
        follow = [after + _LATE + i * config.min_interval for i in range(1, _FOLLOW_UPS + 1)]
        plan = ([width / 2] if width > _BISECT else []) + [after] + follow
    else:
        # Only the finish will change it: a second look some seconds on catches a late
        # tick (a drifting loop) at a fraction of a blind poller's cost.  Drift adds up
        # while nothing changes, so the older the evidence, the later the second look.
        age = (now - pacer.brackets[-1][1]) / period
        plan = [after, after + min(period / 2, _BACKUP + _DRIFT * age)]
    seen = pacer.last_change[1] if pacer.last_change is not None else -math.inf
    earliest = now + config.min_interval
    first = math.floor((now - start) / period) - 1
    for k in range(first, first + 4):
        tick = start + k * period
        if seen >= tick:
            continue  # this tick's change has been seen: nothing more to learn from it
        # Every other tick until the server has shown it holds changes back, a probe
        # just before the tick: a change seen there did not come from a tick.
        probe = moving and pacer.quiet < _QUIET and k % 2 == 0
        for offset in [-_PROBE] + plan if probe else plan:
            if tick + offset >= earliest:
                return tick + offset - now
    return None  # pragma: no cover - four periods always contain a target


def next_delay(pacer: PacerState, config: PacingConfig, now: float, rand: float) -> float:
    """Seconds until the next poll of a task that answered normally.

    ``now`` is monotonic seconds (the clock of the observations); ``rand`` a uniform
    number in [0, 1) for jitter.
    """
    if config.fixed_interval is not None:
        return max(config.min_interval, config.fixed_interval)
    state = pacer.state
    if state is None:
        # Not visible yet: CometAPI says wait a few seconds and poll again.
        return _clamp(_spread(min(1.0 + 0.5 * pacer.absent_count, 5.0), config, rand), config)
    # Aim at ticks once they are proven.  A single sharp bracket is worth a try while the
    # task waits (nothing can finish then) or moves every tick (a miss shows at once); a
    # running task that may change only when it ends gets no such gamble.
    tentative = state is not TaskState.RUNNING or _moving(pacer, config.refresh_period, now)
    if config.refresh_period > 0 and (pacer.ticking or (pacer.ticking is None and tentative)):
        tick = _tick_delay(pacer, config, now)
        if tick is not None:
            # Positive-only jitter: never poll before the tick has surely landed.  (Watches
            # of one gateway share its ticks; the scheduler's request budget spreads a crowd.)
            return min(config.max_interval, tick + _LATE * rand)
    in_state = now - (pacer.state_since if pacer.state_since is not None else now)
    if state is TaskState.RUNNING:
        eta = estimate_finish(pacer)
        if eta is not None:
            # Approach the predicted finish geometrically; once it is overdue, back off
            # slowly rather than hammering a wrong prediction.
            remaining = eta - now
            delay = remaining * 0.5 if remaining > 0 else 1.0 + 0.3 * -remaining
            return _clamp(_spread(min(max(delay, 1.5), 8.0), config, rand), config)
        # Progress tells nothing: a finish grows likelier the longer it has run.
        return _clamp(_spread(min(2.5 + 0.07 * in_state, 7.0), config, rand), config)
    # Waiting or unknown: start brisk (the first refresh tick is informative), ease off.
    return _clamp(_spread(min(2.0 + 0.15 * in_state, 8.0), config, rand), config)


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

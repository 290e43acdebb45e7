"""When to poll next: pacing aimed at the gateway's ticks, error backoff, Retry-After.  Pure.

The gateway shows a task as of its last refresh pass, and the passes come on a cadence
(:mod:`.cadence` learns it from the changes every watch of the gateway sees).  A finish
becomes *visible* only at a tick, so the useful poll is the one just after the tick that
shows it; the Runway SDK, polling blindly every 6 +- 1.5 s, sees it 3 s late on average
and spends several requests per tick.  This module decides, for one task:

* **Ticks unknown** (nothing learnt yet): explore no faster than the SDK polls; a lone
  watch skips the looks no tick can answer (its task's first refresh bounds the period
  from below), saves looks while its task waits and while the predicted finish is far,
  and spends them where a finish may show, staying within the SDK's count (:mod:`.lone`).
* **Ticks known**: poll just after a tick, and only after the ticks that can show
  something that matters: while the progress slope says the finish is far, skip ticks
  (one look half-way refreshes the slope); from the predicted finish on, every tick.
  A task that changes every tick but did not at the predicted one gets a few quick
  follow-ups (the tick came late: the follow-up's bracket re-pins the phase).
  A crowd's routine looks at waiting tasks come no more often than its share of the
  request budget allows, just after a tick (the tick may show a finish); a running task
  nothing predicts looks after every tick, and when tokens run short the scheduler serves
  the polls that may see a finish first (:mod:`.triage`).  A large crowd's looks inside a
  wide tick window fall at points of each watch's own, so that together they sweep it.
* **Continuous server** (no ticks): approach the finish predicted from progress
  geometrically, then look every second.

Nothing here reads a clock or a random source: ``now`` and ``rand`` are arguments.
"""

from __future__ import annotations

import math
from dataclasses import replace

from .cadence import Cadence
from .lone import OVERDUE, closing, exploring, quiet_until
from .pacer import (
    PacerState,
    PacingConfig,
    StateSignature,
    estimate_finish,
    finish_window,
    observe,
    observe_absent,
    period_bound,
)
from .snapshot import TaskState

__all__ = ["PacingConfig", "PacerState", "StateSignature", "observe", "observe_absent", "next_delay",
           "backoff_delay", "estimate_finish", "finish_window", "period_bound"]

_EVERY_TICK = 0.011  # progress per tick above which a running task changes at every tick
_FOLLOW_UPS = 3.2  # s after an aimed poll that saw no expected change: look every second
_MID_TICKS = 3  # ticks to a predicted finish beyond which one look half-way refreshes the slope
_BURST = 10.0  # the base budget's burst: crowds over twice this share the tokens at a tick (see _seek)
_PROBE = 0.3  # s before a predicted tick window: a probe that sees a change there found the ticks moved
_BISECT = 0.5  # s: a wider tick window is halved by probes inside it
_STALE = 4.0  # periods since the phase was last pinned sharply before probes check it
_PROBERS = 4.0  # watches of a crowd that probe (on average)
_EXPLORERS = 12.0  # watches of a crowd that keep the SDK's pace while the ticks are unknown
_WAIT_PACE = 1.2  # the pace of a waiting task while the ticks are unknown, in SDK intervals: it cannot finish yet
_FREE_WAIT_PACE = 1.4  # the same on a continuous server, where no tick needs finding either
_SEEK = 3  # looks at most per tick window when it may show a finish (inside a wide window, then after it)
_ROUTINE_SHARE = 0.6  # of the request budget: what routine looks of a crowd may take
_LOCK = 0.4  # share of a period: a tick window wider than this is not worth aiming at


def _clamp(delay: float, config: PacingConfig) -> float:
    return min(config.max_interval, max(config.min_interval, delay))


def _explore(config: PacingConfig, rand: float, crowd: int = 1, pace: float = 1.0) -> float:
    """The routine pace: the SDK's times ``pace`` (a little slower while a task waits on a
    server whose finish only progress predicts), slower still when a crowd would exceed
    its share of the request budget."""
    base = config.explore_interval * pace
    if rand * crowd >= _EXPLORERS:
        # Most of a crowd goes slower; a dozen looks at the SDK's pace (a different few
        # each time) still give the shared cadence the narrow brackets it learns from.
        base = max(base, crowd / config.crowd_rate)
    return base + config.explore_spread * (2.0 * ((rand * 7919.0) % 1.0) - 1.0)


def _every_tick(pacer: PacerState, cadence: Cadence) -> bool:
    """Does this running task change at every tick (its progress moves a percent a tick)?"""
    if pacer.state is not TaskState.RUNNING or pacer.progress_first is None or pacer.progress_mark is None:
        return False
    (p1, t1), (p2, t2) = pacer.progress_first, pacer.progress_mark
    return t2 > t1 and cadence.period is not None and (p2 - p1) / (t2 - t1) * cadence.period >= _EVERY_TICK


def _free(pacer: PacerState, config: PacingConfig, now: float, rand: float, window: tuple[float, float] | None,
          crowd: int) -> float:
    """Continuous server (or alignment off): follow the predicted finish, else the SDK's pace."""
    if window is None:
        if pacer.state is not TaskState.RUNNING:
            # Waiting: nothing can finish, and on this server no tick needs finding.
            return _FREE_WAIT_PACE * _explore(config, rand, crowd)
        # Running, no slope yet: a task that has shown progress gives one at its next look,
        # so it keeps the SDK's pace whatever the crowd.  One that reports none is slowed
        # with the crowd like a routine look: on a server without ticks, polling it at the
        # SDK's pace would spend most of a crowd's budget to see its finish ~3 s late
        # instead of ~5, and starve the looks that see predicted finishes at once.
        return _explore(config, rand, 1 if pacer.progress_first is not None else crowd)
    early, late = window
    if now < early:
        gap = early - now
        # Halve the distance while it is long: the slope sharpens as the finish nears.
        return gap if gap <= 2.0 * config.min_interval else max(config.min_interval, 0.65 * gap)
    if now < late:
        return config.min_interval
    return min(_explore(config, rand), config.min_interval + 0.3 * (now - late))  # overdue: ease off


def _exploring(pacer: PacerState, config: PacingConfig, now: float, rand: float, window: tuple[float, float] | None,
               crowd: int, upper: float = math.inf) -> float:
    """Ticks not known yet: the SDK's pace, but no later than the earliest predicted finish
    (a lone watch: :mod:`.lone`, which also skips the quiet after a change where its
    first refresh says no tick can come)."""
    delay = _unlocked(pacer, config, now, rand, window, crowd)
    quiet = quiet_until(pacer, upper) if crowd <= 1 else None
    if quiet is not None and now + delay < quiet:
        return quiet - now + config.tick_margin
    return delay


def _unlocked(pacer: PacerState, config: PacingConfig, now: float, rand: float, window: tuple[float, float] | None,
              crowd: int) -> float:
    """The delay before the quiet is taken into account (see :func:`_exploring`)."""
    if window is not None and crowd <= 1 and pacer.state is TaskState.RUNNING and now < window[1] + OVERDUE:
        return closing(pacer, config, now, _explore(config, rand), window)
    if crowd <= 1 and (window is None or pacer.state is not TaskState.RUNNING):
        return exploring(pacer, config, now, lambda factor: factor * _explore(config, rand))
    seeking = window is not None and now + _explore(config, 0.5) >= window[0]
    if pacer.progress_first is not None and pacer.state is TaskState.RUNNING:
        # A task whose progress moves changes at (nearly) every tick: its brackets are the
        # ones the cadence learns from (and its streaks tell a continuous server), so it
        # keeps the SDK's pace whatever the crowd until the ticks are known; when tokens run
        # short its looks yield to those that may see a finish (see triage).
        crowd = 1
    # Near the finish: the SDK's pace; a task that waits cannot finish yet: a little slower.
    delay = _explore(config, rand, 1 if seeking else crowd, _WAIT_PACE if pacer.state is not TaskState.RUNNING else 1.0)
    if window is not None and now + config.min_interval < window[0] < now + delay:
        return window[0] - now + config.tick_margin
    return delay


def _aimed(pacer: PacerState, cadence: Cadence, config: PacingConfig, now: float, rand: float,
           window: tuple[float, float] | None, crowd: int) -> float:
    """Ticks known: the delay to a poll just after the next tick worth seeing."""
    period = cadence.period
    assert period is not None

    def after(k: int) -> float:  # just after tick window k: sees the tick
        return cadence.window(k)[1] + config.tick_margin

    earliest = now + config.min_interval
    first = cadence.index_after(earliest - config.tick_margin) - 1
    while after(first) < earliest and not _pending(pacer, cadence, config, first):
        first += 1  # the first tick we can still look after (or the one the last look was inside of)
    last_at = pacer.last_at if pacer.last_at is not None else now
    last_k = first
    while after(last_k) > last_at + 1e-6:
        last_k -= 1  # the last tick the previous poll looked after
    width = cadence.window(first)[1] - cadence.window(first)[0]
    seen = pacer.change[1] if pacer.change is not None else -math.inf
    moving = _every_tick(pacer, cadence)
    expect_finish = window is not None and cadence.window(last_k)[1] >= window[0]
    if (not pacer.changed and seen < cadence.window(last_k)[0]
            and 0 <= now - after(last_k) < _FOLLOW_UPS and (moving or expect_finish)):
        return config.min_interval  # the tick should have shown and did not: it is late
    if moving:
        # Probes keep the shared phase sharp: a task that changes at every tick looks
        # once inside (wide window) or just before (stale phase) the next window,
        # right after it saw a tick.  A change there means the ticks moved.  A few
        # watches of a crowd do it, not all.
        nxt = cadence.window(last_k + 1)
        if nxt[0] - _PROBE - 0.01 <= last_at < nxt[1] and not pacer.changed:
            look = after(last_k + 1)  # the probe's tick: look after it
            if window is not None and nxt[1] >= window[0]:
                # It may show the finish: _seek's next look inside the window comes first
                # (straight after the window, a finish at a tick 0.02 s after the look was seen 2.5 s late).
                look = min(look, _seek(pacer, cadence, config, earliest, last_k + 1, crowd, rand))
            return max(config.min_interval, look - now)
        stale = now - cadence.sharp_at > _STALE * period
        if ((width > _BISECT or stale) and rand < _PROBERS / crowd and pacer.changed
                and abs(last_at - after(last_k)) < 0.5):
            probe = nxt[0] + ((nxt[1] - nxt[0]) / 2 if width > _BISECT else -_PROBE)
            if probe >= earliest:
                return probe - now
    reach = first
    while after(reach + 1) <= now + config.max_interval:
        reach += 1  # the last tick in reach
    if window is not None and now < window[1] + 2 * period:
        # The first tick that may show the finish (a tick early: the slope may be off).
        finish_k = max(first, cadence.index_after(window[0] - period))
        if finish_k - first > _MID_TICKS:
            return after(min(first + (finish_k - first) // 2, reach)) - now  # half-way: refresh the slope
        return _seek(pacer, cadence, config, earliest, min(finish_k, reach), crowd, rand) - now
    if pacer.state is TaskState.RUNNING and pacer.progress_first is not None and pacer.progress_mark == pacer.progress_first:
        return _seek(pacer, cadence, config, earliest, first, crowd, rand) - now  # one mark: the next tick gives the slope
    running = pacer.state is TaskState.RUNNING
    # Routine looks (waiting, or no progress to go by): at the SDK's pace or slower, and
    # slower still when the crowd would exceed its share of the request budget.  A running
    # task with no slope may finish at any tick: it keeps the SDK's pace whatever the
    # crowd, right after the tick; when tokens run short the scheduler serves the polls
    # that may see a predicted finish first and these next, before looks at waiting tasks
    # (:mod:`.triage`).
    gap = config.explore_interval if running else max(10.0, crowd / config.crowd_rate)
    target = max(first, min(last_k + max(1, math.ceil(gap / period - 0.05)), reach))
    # A waiting task of a large crowd looks just after the window, never inside it: the
    # tick may show its finish (behind a 60 s loop a short task goes from queued to done
    # at one tick), and a look spread over the period saw it 5 s late.  Its inside looks
    # would take the tokens the looks after the tick need (the scheduler serves those
    # that may see a predicted finish first: :mod:`.triage`).
    inside = running or crowd <= 2 * _BURST
    return _seek(pacer, cadence, config, earliest, target, crowd, rand, inside) - now


def _seek(pacer: PacerState, cadence: Cadence, config: PacingConfig, earliest: float, k: int, crowd: int = 1,
          rand: float = 0.0, inside: bool = True) -> float:
    """When to look for tick k (or a later one) when it may show the finish: inside a wide
    window too (unless ``inside`` is False), so that a tick early in it is seen early (and
    the window narrows).  ``rand`` places a crowd's inside looks."""
    while True:
        lo, hi = cadence.window(k)
        n = min(_SEEK, max(1, math.ceil((hi - lo) / _BISECT))) if inside else 1
        if crowd <= 1:
            # A lone watch pays for every look itself: only as many inside as leave
            # min_interval before the next (an inside look that saw nothing is followed by
            # the look after the window; closer looks were 1.06x the SDK's requests on
            # short tasks).  In a crowd the looks inside narrow the shared window for all.
            n = max(1, min(n, math.floor((hi + config.tick_margin - lo) / config.min_interval)))
        if crowd <= 2 * _BURST:
            looks = [lo + (hi - lo) * i / n for i in range(1, n)]
        else:
            # Each watch of a large crowd looks at points of its own: looks at the same few
            # points bring the shared window the same brackets, staggered ones sweep it (a
            # window 2 s wide behind a 60 s loop stayed 2 s wide while 100 watches looked at
            # its thirds).  A dozen watches do better at the thirds (0.08-0.14x the SDK's lag
            # behind a 60 s loop, 0.15-0.17x staggered).
            u = (rand * 7907.0) % 1.0
            looks = [lo + (hi - lo) * (i - 1 + u) / (n - 1) for i in range(1, n)]
        looks.append(hi + config.tick_margin)
        last = pacer.last_at if pacer.last_at is not None else -math.inf
        seen = lo <= last and _saw_tick(pacer, cadence, k)  # a look inside saw it already
        for t in looks:
            if t >= earliest and not seen:
                return t
        if _pending(pacer, cadence, config, k):
            # The look after the window is closer than min_interval to the last look,
            # inside it: take it a little late rather than a period late.
            return earliest
        k += 1


def _pending(pacer: PacerState, cadence: Cadence, config: PacingConfig, k: int) -> bool:
    """Did the last look fall inside tick window k (before the look after it) without
    seeing its tick?  Then the tick may still come, and window k still needs that look."""
    lo, hi = cadence.window(k)
    last = pacer.last_at
    return last is not None and lo <= last < hi + config.tick_margin and not _saw_tick(pacer, cadence, k)


def _saw_tick(pacer: PacerState, cadence: Cadence, k: int) -> bool:
    """Did the last look see tick k?  A change whose bracket opened after the window before
    can only be this tick's."""
    return pacer.changed and pacer.change is not None and pacer.change[0] >= cadence.window(k - 1)[1]


def next_delay(pacer: PacerState, config: PacingConfig, now: float, rand: float,
               cadence: Cadence | None = None, crowd: int = 1, budget_rate: float | None = None) -> float:
    """Seconds until the next poll of a task that answered normally.

    ``now`` is monotonic seconds (the clock of the observations); ``rand`` a uniform
    number in [0, 1); ``cadence`` what is known of the gateway's ticks; ``crowd`` how
    many watches of this gateway are polling in this process; ``budget_rate`` the
    process's request budget (requests/s): routine looks of a crowd then take 60 % of it
    instead of ``config.crowd_rate``.
    """
    if config.fixed_interval is not None:
        return max(config.min_interval, config.fixed_interval)
    if budget_rate is not None and budget_rate > 0:
        config = replace(config, crowd_rate=_ROUTINE_SHARE * budget_rate)
    if pacer.state is None:
        return _clamp(_explore(config, rand, max(1, crowd)), config)  # not visible yet
    cadence = cadence or Cadence()
    window = finish_window(pacer, cadence)
    if config.refresh_period <= 0 or cadence.fast:
        return _clamp(_free(pacer, config, now, rand, window, max(1, crowd)), config)
    if cadence.locked and cadence.window(cadence.index_after(now))[1] - cadence.window(cadence.index_after(now))[0] <= _LOCK * (cadence.period or 0.0):
        return _clamp(_aimed(pacer, cadence, config, now, rand, window, max(1, crowd)), config)
    return _clamp(_exploring(pacer, config, now, rand, window, max(1, crowd), cadence.upper), config)


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

"""A lone watch before the ticks are known: how it saves looks and where it spends them.  Pure.

A watch alone in its process rarely sees enough changes to learn the gateway's ticks
before a short task ends, so it cannot aim at them (:mod:`.policy` does that once they
are known).  What it can do is move looks from where they see nothing to where they
may see the finish:

* **The first refresh sets a floor.**  A new-api gateway shows a task as SUBMITTED (or
  NOT_START) until its refresh loop first reaches it; the time the watch saw that word
  unchanged is a lower bound on the loop's period (:attr:`.PacerState.period_floor`).
  After any change, no tick can come before the floor has passed again: the watch does
  not look then (:func:`quiet_until`).
* **Waiting** tasks are looked at :data:`WAIT_PACE` SDK intervals apart (a crowd: 1.2):
  the finish rarely shows before the run starts.  Behind a loop that took at least
  :data:`SLOW_FLOOR` s to refresh the task, a tick can move it from queued to done at
  once (a 10-60 s task behind a 60 s loop does so about half the time), and what the
  quiet saved pays for the SDK's pace instead.
* **Running** tasks that nothing predicts yet are looked at a little faster than the
  SDK's pace (twice as fast behind a slow loop, where the next tick often shows the
  finish); while the finish predicted from progress is far, looks come up to
  :data:`_FAR` SDK intervals apart (one half-way refreshes the slope); around it every
  :data:`CLOSE` s (a finish shows ~1 s after its tick instead of the SDK's ~3 s).

Every look quicker than the SDK's pace is taken only while the watch stays within the
SDK's count (:func:`_caught_up`): the looks it spends are the ones it saved.

Nothing here reads a clock or a random source: ``now`` is an argument, and ``pace`` (an
SDK-like interval, jittered) comes from the caller.
"""

from __future__ import annotations

import math
from typing import Callable

from .pacer import PacerState, PacingConfig
from .snapshot import TaskState

__all__ = ["CLOSE", "OVERDUE", "SLOW_FLOOR", "WAIT_PACE", "closing", "exploring", "quiet_until"]

CLOSE = 2.0  # s between a lone watch's looks around a predicted finish while the ticks are unknown
OVERDUE = 60.0  # s past the latest predicted finish after which close looks stop (the slope was wrong)
# A lone watch's waiting task: looks this many SDK intervals apart.  At the crowd's 1.2 a
# lone watch's close looks brought it level with the SDK's request count on short tasks
# (continuous server, 10-60 s: 1.00x); the ~1.5 looks saved per task while it waits keep
# it under (0.94x), and are what the close looks spend.
WAIT_PACE = 1.4
SLOW_FLOOR = 12.0  # s: a first refresh at least this late marks a slow loop (two SDK intervals)
# Paces in SDK intervals (a running task nothing predicts; behind a slow loop, a waiting
# and a running one), chosen on the benchmark's fresh single-watch cells over six seeds:
# docs/pacing.md has the figures.
_RUN_PACE = 0.85
_SLOW_WAIT = 1.0
_SLOW_RUN = 0.5
# A floor above this is more likely a task the gateway kept as SUBMITTED than a loop
# this slow: the quiet after a change never lasts longer.
_QUIET_MAX = 60.0
_FAR = 2.0  # a lone watch far from the finish looks up to this many SDK intervals apart
_STREAK = 5  # SDK-paced looks at the start of a run before the far looks slow down


def closing(pacer: PacerState, config: PacingConfig, now: float, pace: float, window: tuple[float, float]) -> float:
    """The delay to a lone watch's next look at a running task whose finish is predicted
    (``window``: earliest and latest) while the ticks are unknown; ``pace`` is the SDK's.

    The finish shows at some tick near the predicted finish, and looking every
    :data:`CLOSE` s there sees it ~1 s after the tick.  Far from the finish a look
    half-way refreshes the slope (no more often than the SDK).  A close look is taken
    only if, with it, the watch has sent at most one look more than the SDK would have
    by then (ours looks at creation, the SDK an interval later and once past the finish):
    what it spends there, it saved while the task waited or while the finish was far.
    """
    early = window[0] - config.explore_interval / 2  # a mark shows a tick up to a poll gap before it
    if now + config.explore_interval < early:
        if pacer.state_since is not None and now - pacer.state_since < _STREAK * config.explore_interval:
            return pace  # the first looks of a run keep the SDK's pace: their streak tells a fast loop
        return max(pace, min((early - now) / 2, _FAR * pace))
    if now + config.min_interval < early:
        return early - now
    if now + CLOSE >= _caught_up(pacer, config):
        return CLOSE
    return pace


def _caught_up(pacer: PacerState, config: PacingConfig) -> float:
    """The earliest time the watch may look sooner than the SDK's pace.

    From then on, its look at creation aside, it is at most one look ahead of what the
    SDK (sleeping an interval before every poll) would have sent.  The SDK also looks
    once more after every finish, ~3 s late on average, so a watch that spends this way
    still ends below the SDK's count (0.55-0.98x over the benchmark's fresh single-watch
    cells; one look fewer here left the 30 s / 10-60 s cell at 1.01x lag).
    """
    if pacer.first_at is None:
        return -math.inf  # nothing sent yet
    return pacer.first_at + (pacer.polls - 1) * config.explore_interval


def exploring(pacer: PacerState, config: PacingConfig, now: float, pace: Callable[[float], float]) -> float:
    """The delay to a lone watch's next look at a task whose finish nothing predicts
    (waiting, or running without a progress slope) while the ticks are unknown.

    ``pace(f)`` is the SDK's interval times ``f``, jittered.  The quiet after a change is
    the caller's (:func:`quiet_until`).
    """
    slow = pacer.period_floor >= SLOW_FLOOR
    if pacer.state is TaskState.RUNNING:
        factor = _SLOW_RUN if slow else _RUN_PACE
    else:
        factor = _SLOW_WAIT if slow else WAIT_PACE
    delay = pace(factor)
    caught_up = _caught_up(pacer, config)
    if factor < 1.0 and now + delay < caught_up:
        return max(pace(1.0), caught_up - now)
    return delay


def quiet_until(pacer: PacerState, upper: float) -> float | None:
    """The earliest time the gateway's next tick can come, or None if nothing says.

    The task's latest change came at a tick after the poll before it; the next tick is a
    period later, and the period is at least the task's floor.  ``upper`` is the longest
    period the gateway's changes allow (:attr:`.Cadence.upper`): below the floor, the
    floor was wrong (changes closer than it: no loop that slow) and is ignored.
    """
    floor = min(pacer.period_floor, _QUIET_MAX)
    if floor <= 0 or pacer.change is None or upper < floor:
        return None
    return pacer.change[0] + floor

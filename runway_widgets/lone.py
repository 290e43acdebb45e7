"""A lone watch before the ticks are known: how it saves looks and where it spends them.  Pure.

A watch alone in its process rarely sees enough changes to learn the gateway's ticks
before a short task ends, so it cannot aim at them (:mod:`.policy` does that once they
are known).  What it can do is move looks from where they see nothing to where they
see the finish:

* it looks at a waiting task :data:`WAIT_PACE` SDK intervals apart (a crowd: 1.2): no
  finish shows before the run starts, and the looks saved there pay for close looks;
* while the finish predicted from progress is far, looks come up to :data:`_FAR` SDK
  intervals apart (one half-way refreshes the slope);
* around the predicted finish it looks every :data:`CLOSE` s (a finish shows ~1 s after
  its tick instead of the SDK's ~3 s), as long as it has sent no more than the SDK would
  have by then; else at the SDK's pace.

Nothing here reads a clock or a random source: ``now`` is an argument, and ``pace`` (an
SDK-like interval, jittered) comes from the caller.
"""

from __future__ import annotations

from .pacer import PacerState, PacingConfig

__all__ = ["CLOSE", "OVERDUE", "WAIT_PACE", "closing"]

CLOSE = 2.0  # s between a lone watch's looks around a predicted finish while the ticks are unknown
OVERDUE = 60.0  # s past the latest predicted finish after which close looks stop (the slope was wrong)
# A lone watch's waiting task: looks this many SDK intervals apart.  At the crowd's 1.2 a
# lone watch's close looks brought it level with the SDK's request count on short tasks
# (continuous server, 10-60 s: 1.00x); the ~1.5 looks saved per task while it waits keep
# it under (0.94x), and are what the close looks spend.
WAIT_PACE = 1.4
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
    first = pacer.first_at if pacer.first_at is not None else now
    if pacer.polls <= (now + CLOSE - first) / config.explore_interval:
        return CLOSE
    return pace

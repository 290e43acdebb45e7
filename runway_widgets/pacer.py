"""What one watch knows of its task, for pacing: the config, the state, and how answers update it.  Pure.

:func:`observe` folds each answer into a :class:`PacerState` (a value); a change since the
previous poll is kept as a bracket for the gateway's :mod:`.cadence` to learn from, and
progress marks give the finish the slope predicts (:func:`finish_window`).
:mod:`.policy` turns all this into the next delay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple, Optional, Protocol, Tuple

from .cadence import Bracket, Cadence
from .snapshot import TaskState

__all__ = ["PacingConfig", "PacerState", "StateSignature", "Observed", "observe", "observe_absent",
           "period_bound", "finish_window", "estimate_finish"]

Mark = Tuple[float, float]  # (progress 0..1, when it was first seen)

# The words a new-api gateway gives a task it has not refreshed from upstream yet: the
# first refresh replaces them (QUEUED, IN_PROGRESS, ...), and nothing else does.
_UNREFRESHED = frozenset({"NOT_START", "SUBMITTED"})
_QUANTUM = 0.01  # progress is reported in whole percents: each mark is this uncertain


class StateSignature(NamedTuple):
    """What a poll saw, reduced to what can change at a tick."""

    state: str  # TaskState value, or "absent"
    status: str  # the raw status word: QUEUED after SUBMITTED is a change even though both wait
    percent: Optional[int]


class Observed(Protocol):
    """What :func:`observe` reads of a snapshot (a :class:`~.snapshot.TaskSnapshot`)."""

    # Read-only properties: a frozen snapshot satisfies them.
    @property
    def state(self) -> TaskState: ...

    @property
    def progress(self) -> Optional[float]: ...

    @property
    def status(self) -> str: ...


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
        The gateway refresh period to believe on thin evidence (a prior: the real one is
        learnt from the changes polls see); 0 turns tick alignment off.
    tick_margin:
        How long after a tick to poll, so the refresh has surely landed.
    explore_interval, explore_spread:
        Pace before anything is learnt: the Runway SDK's 6 +- 1.5 s.
    crowd_rate:
        Requests per second the routine looks of all watches of one gateway aim to stay
        under (the default request budget is 10/s).
    jitter:
        Relative spread of free-running delays, so many watches do not poll in step.
    backoff_base, backoff_cap:
        Error backoff: ``base * 2**(n-1)`` seconds after the n-th consecutive error, capped.
    max_retry_after:
        The longest Retry-After that is honoured as given.
    """

    min_interval: float = 1.0
    max_interval: float = 60.0
    fixed_interval: float | None = None
    refresh_period: float = 15.0
    tick_margin: float = 0.25
    explore_interval: float = 6.0
    explore_spread: float = 1.5
    crowd_rate: float = 6.0
    jitter: float = 0.1
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if not (0 < self.min_interval <= self.max_interval):
            raise ValueError("need 0 < min_interval <= max_interval")
        if self.fixed_interval is not None and self.fixed_interval <= 0:
            raise ValueError("fixed_interval must be positive")
        if self.refresh_period < 0 or self.crowd_rate <= 0:
            raise ValueError("need refresh_period >= 0 and crowd_rate > 0")
        if not (0 <= self.explore_spread < self.explore_interval):
            raise ValueError("need 0 <= explore_spread < explore_interval")


@dataclass(frozen=True)
class PacerState:
    """What one watch has seen so far, in a few numbers (a value: :func:`observe` returns a new one)."""

    last_at: float | None = None  # midpoint of the last poll: when the server answered it
    signature: StateSignature | None = None
    absent_count: int = 0
    state_since: float | None = None
    progress_first: Mark | None = None  # the first progress mark of the run
    progress_mark: Mark | None = None  # the latest one
    change: Bracket | None = None  # (poll before, poll that saw it) of the latest change
    previous_change: Bracket | None = None  # the same for the change before it
    changed: bool = False  # the latest poll saw a change (``change`` is new)
    streak: tuple[float, int] | None = None  # (start, count) of changes seen at consecutive polls
    polls: int = 0  # answers so far (task_not_exist included): what the watch has spent
    first_at: float | None = None  # when the first one came
    period_floor: float = 0.0  # the ticks are at least this far apart (0: nothing known; see observe)

    @property
    def state(self) -> TaskState | None:
        """The last visible state, or None before the task was seen."""
        if self.signature is None or self.signature.state == "absent":
            return None
        return TaskState(self.signature.state)


def observe_absent(pacer: PacerState, sent: float, received: float) -> PacerState:
    """Record a ``task_not_exist`` answer."""
    at = (sent + received) / 2
    return replace(pacer, last_at=at, absent_count=pacer.absent_count + 1, changed=False,
                   signature=pacer.signature or StateSignature("absent", "", None), polls=pacer.polls + 1,
                   first_at=at if pacer.first_at is None else pacer.first_at)


def observe(pacer: PacerState, snapshot: Observed, config: PacingConfig, sent: float, received: float) -> PacerState:
    """Record a visible snapshot polled between ``sent`` and ``received`` (monotonic seconds).

    A change since the previous poll is kept as a bracket (``change``) for the gateway's
    :class:`~.cadence.Cadence` to learn from (when ``config.refresh_period`` is not 0).
    """
    # The server read the task somewhere between our send and our receipt; the midpoint
    # is off by at most half a round trip (milliseconds to ~100 ms).
    at = (sent + received) / 2
    progress = snapshot.progress
    percent = None if progress is None else int(round(progress * 100))
    sig = StateSignature(snapshot.state.value, snapshot.status, percent)
    old = pacer.signature
    updates: dict = {"last_at": at, "signature": sig, "changed": False, "polls": pacer.polls + 1,
                     "first_at": at if pacer.first_at is None else pacer.first_at}
    if old is None or old.state != sig.state:
        updates["state_since"] = at
    if (progress is not None and 0 < percent < 100 and snapshot.state is TaskState.RUNNING  # type: ignore[operator]
            and (old is None or old.percent != percent)):
        updates["progress_mark"] = (progress, at)
        if pacer.progress_first is None:
            updates["progress_first"] = (progress, at)
    if old is not None and old.state != "absent" and old != sig and pacer.last_at is not None:
        streak = (pacer.streak[0], pacer.streak[1] + 1) if pacer.changed and pacer.streak else (pacer.last_at, 1)
        updates.update(change=(pacer.last_at, at), previous_change=pacer.change, changed=True, streak=streak)
        if (pacer.change is None and pacer.state_since is not None and old.status.upper() in _UNREFRESHED
                and sig.status.upper() not in _UNREFRESHED):
            # The gateway's first refresh of the task (SUBMITTED -> QUEUED or IN_PROGRESS):
            # no refresh came while the task showed the word it was created with, so the
            # gateway's ticks are at least that long apart.
            updates["period_floor"] = pacer.last_at - pacer.state_since
    return replace(pacer, **updates)


def period_bound(pacer: PacerState) -> float:
    """The longest tick period this task's changes allow (inf: no bound).

    Distinct changes need distinct ticks, a period apart: two changes bound the period
    by the time from the poll before the first to the poll that saw the second, and n
    changes at consecutive polls by that span over n - 1.
    """
    bound = math.inf
    if pacer.change is not None and pacer.previous_change is not None:
        bound = pacer.change[1] - pacer.previous_change[0]
    if pacer.change is not None and pacer.streak is not None and pacer.streak[1] >= 2:
        bound = min(bound, (pacer.change[1] - pacer.streak[0]) / (pacer.streak[1] - 1))
    return bound


def finish_window(pacer: PacerState, cadence: Cadence | None = None) -> tuple[float, float] | None:
    """Earliest and latest finish (monotonic s) the progress slope allows, or None.

    Needs two distinct progress marks.  With the ticks known, a mark's time is the tick
    whose state the poll showed, not the poll itself.
    """
    if pacer.progress_first is None or pacer.progress_mark is None:
        return None
    (p1, t1), (p2, t2) = pacer.progress_first, pacer.progress_mark
    if cadence is not None and cadence.locked:
        t1, t2 = cadence.last_tick(t1), cadence.last_tick(t2)
    if p2 <= p1 or t2 <= t1:
        return None
    fast, slow = (p2 - p1 + _QUANTUM) / (t2 - t1), (p2 - p1 - _QUANTUM) / (t2 - t1)
    early = t2 + max(0.0, 1.0 - p2 - _QUANTUM) / fast
    return early, (t2 + (1.0 - p2) / slow if slow > 0 else math.inf)


def estimate_finish(pacer: PacerState, cadence: Cadence | None = None) -> float | None:
    """Predicted finish (monotonic seconds) from the progress rate, or None."""
    window = finish_window(pacer, cadence)
    if window is None:
        return None
    (p1, t1), (p2, t2) = pacer.progress_first, pacer.progress_mark  # type: ignore[misc]
    return t2 + (1.0 - p2) * (t2 - t1) / (p2 - p1)

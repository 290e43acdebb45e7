"""Which due poll goes first when request tokens are scarce.  Pure.

With a few watches the request budget never binds and order does not matter.  With a
crowd (200 watches behind a 60 s loop, at the SDK's 33 requests/s) it binds right after every tick, and
first-due-first-served spends the tokens on whoever happened to be due earliest: routine
looks at queued tasks take the tokens that a poll of a task finishing at this tick needed,
and that finish is seen a tick or more late.  So every due poll carries an *urgency*:

* :data:`FINISH` -- the progress slope says the finish may be visible by then;
* :data:`OPEN` -- a running task nothing predicts (no progress to go by), a first look,
  or a watch due at its deadline;
* :data:`ROUTINE` -- a task that waits, or whose finish is still far.

:class:`DueQueue` serves the due polls in order of ``due - urgency * AGE``: a more urgent
poll overtakes less urgent ones that became due up to ``AGE`` seconds (per level) before
it, and no further, so a routine look waits at most ``2 * AGE`` behind urgent ones and
nobody starves.  The key never changes while a poll waits, so two heaps do it in
O(log n).  The scheduler and the pacing benchmark both use this class, so the benchmark
drives the policy exactly as the scheduler does.

Nothing here reads a clock: ``now`` is an argument.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Generic, Iterator, List, Optional, Tuple, TypeVar

from .cadence import Cadence
from .pacer import PacerState, finish_window
from .snapshot import TaskState

__all__ = ["ROUTINE", "OPEN", "FINISH", "AGE", "urgency", "DueQueue"]

ROUTINE, OPEN, FINISH = 0, 1, 2
AGE = 10.0  # s a poll one urgency level higher may overtake (below a tick period: a late look still comes)

T = TypeVar("T")


def urgency(pacer: PacerState, cadence: Optional[Cadence], due: float) -> int:
    """How much a poll of this task at ``due`` matters (:data:`FINISH` highest).

    A poll may see a finish when the finish window the progress slope gives has begun by
    ``due`` (with the ticks known, by the last tick before ``due``: that is what the poll
    shows).  Failures and tasks that report no progress cannot be predicted: a running
    task without a slope is :data:`OPEN`, as is a task not seen yet.
    """
    if pacer.state is None:
        return OPEN
    if pacer.state is not TaskState.RUNNING:
        return ROUTINE  # waiting: nothing can finish, and the start shows up at the next look anyway
    window = finish_window(pacer, cadence)
    if window is None:
        return OPEN
    shown = cadence.last_tick(due) if cadence is not None and cadence.locked else due
    return FINISH if shown >= window[0] else ROUTINE


class DueQueue(Generic[T]):
    """Polls waiting for their due time, then for a token, most urgent first (not thread-safe)."""

    def __init__(self) -> None:
        self._seq = itertools.count()
        self._timeline: List[Tuple[float, int, int, T]] = []  # (due, seq, urgency, item): not due yet
        self._ready: List[Tuple[float, int, float, T]] = []  # (due - urgency * AGE, seq, due, item): due

    def __len__(self) -> int:
        return len(self._timeline) + len(self._ready)

    def items(self) -> Iterator[T]:
        """Every item waiting, in no particular order."""
        for entry in self._timeline:
            yield entry[3]
        for ready in self._ready:
            yield ready[3]

    def push(self, due: float, item: T, level: int = OPEN) -> None:
        """Queue ``item`` for ``due`` with urgency ``level``."""
        heapq.heappush(self._timeline, (due, next(self._seq), level, item))

    def remove(self, item: T) -> bool:
        """Forget ``item`` (every entry of it); True if it was there."""
        before = len(self)
        self._timeline = [e for e in self._timeline if e[3] is not item]
        self._ready = [e for e in self._ready if e[3] is not item]
        heapq.heapify(self._timeline)
        heapq.heapify(self._ready)
        return len(self) != before

    def clear(self) -> None:
        self._timeline.clear()
        self._ready.clear()

    def _promote(self, now: float) -> None:
        while self._timeline and self._timeline[0][0] <= now:
            due, seq, level, item = heapq.heappop(self._timeline)
            heapq.heappush(self._ready, (due - level * AGE, seq, due, item))

    def peek(self, now: float) -> Optional[Tuple[float, T]]:
        """The poll that goes next if a token is free at ``now``, as ``(due, item)``, or None
        when nothing is due."""
        self._promote(now)
        if not self._ready:
            return None
        _key, _seq, due, item = self._ready[0]
        return due, item

    def pop(self, now: float) -> Optional[Tuple[float, T]]:
        """Take the poll :meth:`peek` shows."""
        self._promote(now)
        if not self._ready:
            return None
        _key, _seq, due, item = heapq.heappop(self._ready)
        return due, item

    def next_due(self) -> float:
        """When the next poll is due (-inf: one is due already; inf: none is queued)."""
        if self._ready:
            return float("-inf")
        return self._timeline[0][0] if self._timeline else float("inf")

"""What a watch reports: its :class:`Outcome`, its limits, and the :class:`WatchUpdate` views read.

Plain values, no behaviour: the views, the CLI and user callbacks depend on this module
alone, not on how a watch polls.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from .errors import RunwayWidgetsError
from .policy import PacingConfig
from .snapshot import TaskSnapshot

__all__ = ["Outcome", "WatchSettings", "WatchUpdate", "PollResult", "Completion", "short_id"]


class Outcome(str, enum.Enum):
    """How a watch stands: still watching, or how it ended."""

    WATCHING = "watching"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed out"
    NOT_FOUND = "not found"
    GAVE_UP = "gave up"
    ERROR = "error"
    STOPPED = "stopped"


@dataclass(frozen=True)
class WatchSettings:
    """Per-watch limits (float seconds)."""

    timeout: float = 1800.0
    not_found_grace: float = 30.0
    give_up_after: float = 120.0
    pacing: PacingConfig = PacingConfig()
    #: Seconds of failed connections to a host that has never answered in this process
    #: before the watch gives up (at most ``give_up_after``).
    unreached_give_up: float = 15.0


@dataclass(frozen=True)
class WatchUpdate:
    """What subscribers see after each poll: everything a view needs, nothing secret."""

    task_id: str
    outcome: Outcome
    snapshot: TaskSnapshot | None
    elapsed: float
    polls: int
    note: str = ""
    error: RunwayWidgetsError | None = None
    eta: float | None = None
    retry_in: float | None = None
    saved_path: str | None = None
    #: For a task that failed or was cancelled: the progress it had before (the gateway
    #: reports 100 % on every finished task).  None: the snapshot's progress stands.
    held_progress: float | None = None

    @property
    def progress(self) -> float | None:
        """The progress a bar shows (0..1, None before the task reported any)."""
        if self.held_progress is not None:
            return self.held_progress
        return self.snapshot.progress if self.snapshot is not None else None

    @property
    def percent(self) -> int | None:
        """:attr:`progress` in whole percent."""
        progress = self.progress
        return None if progress is None else int(round(progress * 100))

    @property
    def done(self) -> bool:
        """True once the watch has ended, for whatever reason."""
        return self.outcome is not Outcome.WATCHING


def short_id(task_id: str) -> str:
    """The first 8 characters of a long id (enough to tell tasks apart on screen)."""
    return task_id if len(task_id) <= 12 else task_id[:8] + "…"


@dataclass(frozen=True)
class PollResult:
    """What one poll tells the scheduler: when to poll next, and how the request went."""

    next_in: float | None  # seconds until the next poll; None: the watch has ended
    error: RunwayWidgetsError | None = None  # the request's error (a 429 pauses every watch)


class Completion(Protocol):
    """How a finisher reports that it is done with a success (call it once, from any thread)."""

    def __call__(self, error: RunwayWidgetsError | None = None, snapshot: TaskSnapshot | None = None,
                 saved_path: str | None = None) -> None: ...

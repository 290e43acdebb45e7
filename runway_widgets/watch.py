"""The :class:`Watch` handle: one task being followed, its state, and what a poll result means.

A watch never sleeps and owns no thread: the shared scheduler calls :meth:`Watch._poll`
on a worker thread when it is due, and the watch answers with the delay until its next
poll (or None when it has finished).  Subscribers get a :class:`WatchUpdate` after every
poll, on that worker thread; a subscriber that raises is logged and detached.

Every watch ends: whatever one of its background jobs raises (a poll, the finisher that
saves the video, a bug), the watch reaches a final outcome with a one-sentence error (its
wording lives in :mod:`.endings`), and while a finisher runs the watch stays in the
scheduler until its deadline, so a finisher that never reports still ends at the timeout.
:meth:`Watch.wait` checks the deadline too.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from .endings import Ending, gave_up, not_found, terminal_ending, timed_out
from .errors import DownloadError, ProtocolError, RunwayWidgetsError, TaskNotFoundError, WatchStoppedError
from .gateways import Gateway
from .policy import PacerState, backoff_delay, estimate_finish, next_delay, observe, observe_absent, period_bound
from .snapshot import TaskSnapshot
from .triage import OPEN, urgency
from .updates import Completion, Outcome, PollResult, WatchSettings, WatchUpdate, short_id

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Outcome", "WatchUpdate", "Watch", "WatchSettings", "PollResult", "Finisher", "Completion"]

log = logging.getLogger("runway_widgets")
_DEADLINE_GRACE = 2.0  # s past the deadline before wait() expires a watch the scheduler did not


#: Takes over a task that succeeded (e.g. downloads the video): ``finisher(watch, snapshot, done)``.
#: It must call ``done(...)`` when finished; the watch ends then, or at its deadline.
Finisher = Callable[["Watch", TaskSnapshot, Completion], None]


class Watch:
    """A handle on one watched task.  Create it with :func:`runway_widgets.watch`.

    ``finisher`` takes over a success (the video download); ``on_end`` is called once as
    the watch ends, before its subscribers see the final update (the registry and the
    scheduler forget it there).
    """

    def __init__(
        self,
        task_id: str,
        client: Client,
        settings: WatchSettings,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] | None = None,
        *,
        finisher: Finisher | None = None,
        on_end: Callable[[Watch], None] | None = None,
        gateway: Gateway | None = None,
    ) -> None:
        import random

        self.task_id = task_id
        self.client = client
        self.settings = settings
        self._clock = clock
        self._rand = rand or random.random
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._subscribers: list[Callable[[WatchUpdate], Any]] = []
        self.started = clock()
        self.deadline = self.started + settings.timeout
        self._pacer = PacerState()
        # What is learnt of the gateway's ticks, shared with every watch of its base URL.
        self.gateway = gateway if gateway is not None else Gateway(client.base_url)
        self._snapshot: TaskSnapshot | None = None
        self._last_progress: float | None = None  # the last progress of an unfinished task
        self._outcome = Outcome.WATCHING
        self._error: RunwayWidgetsError | None = None
        self._note = ""
        self._retry_in: float | None = None
        self._polls = 0
        self._errors_since: float | None = None
        self._consecutive_errors = 0
        self._saved_path: str | None = None
        self._finisher = finisher
        self._on_end = on_end
        self.budget_rate: Callable[[], float] | None = None  # the poller's request rate (set by it)
        self.urgency = OPEN  # how much the next poll matters when tokens are scarce (see triage)
        self._ended_at: float | None = None
        self._finishing = False  # the task succeeded; the finisher has it

    # -- reading ----------------------------------------------------------------------------

    @property
    def snapshot(self) -> TaskSnapshot | None:
        """The latest snapshot (None until the task has been seen)."""
        return self._snapshot

    @property
    def outcome(self) -> Outcome:
        return self._outcome

    @property
    def error(self) -> RunwayWidgetsError | None:
        """Why the watch ended badly (None while running or after a success)."""
        return self._error

    @property
    def result_url(self) -> str | None:
        """The video URL once the task has succeeded."""
        snap = self._snapshot
        return snap.result_url if snap is not None else None

    @property
    def saved_path(self) -> str | None:
        """Where the video was saved (None unless the watch saved it)."""
        return self._saved_path

    def done(self) -> bool:
        """True once the watch has ended and its subscribers have seen the final update."""
        return self._done.is_set()

    def update(self) -> WatchUpdate:
        """The current state as subscribers would see it."""
        with self._lock:
            return self._make_update()

    def __repr__(self) -> str:
        snap = self._snapshot
        short = short_id(self.task_id)
        status = snap.status if snap is not None else "not seen yet"
        pct = f" {snap.percent}%" if snap is not None and snap.percent is not None else ""
        return f"<Watch {short} {self._outcome.value}: {status}{pct}>"

    # -- acting -----------------------------------------------------------------------------

    def on_update(self, callback: Callable[[WatchUpdate], Any]) -> Callable[[WatchUpdate], Any]:
        """Call ``callback(update)`` after every poll (on a background thread); returns it.

        If the watch has already ended, the callback is called once, right away.
        """
        with self._lock:
            ended = self._outcome is not Outcome.WATCHING
            update = self._make_update() if ended else None
            if not ended:
                self._subscribers.append(callback)
        if update is not None:
            self._deliver(callback, update)
        return callback

    def wait(self, timeout: float | None = None) -> TaskSnapshot:
        """Block until the watch ends; return the final snapshot or raise why it failed.

        Raises
        ------
        TaskFailedError, WatchTimeoutError, TaskNotFoundError, GaveUpError,
        AuthenticationError, WatchStoppedError, DownloadError, ...
            The error that ended the watch.
        TimeoutError
            ``timeout`` passed first; the watch goes on.
        """
        limit = None if timeout is None else time.monotonic() + timeout
        # Short slices keep Ctrl-C responsive everywhere (some platforms block signals in
        # a long Event.wait).
        while not self._done.wait(0.2 if limit is None else max(0.0, min(0.2, limit - time.monotonic()))):
            if limit is not None and time.monotonic() >= limit:
                raise TimeoutError(f"Task {self.task_id} is still running after waiting {timeout:g} s.")
            if self._clock() >= self.deadline + _DEADLINE_GRACE:
                self._expire()  # a backstop: the scheduler expires watches at the deadline itself
        if self._error is not None:
            raise self._error
        assert self._snapshot is not None
        return self._snapshot

    def stop(self, reason: str = "Stopped watching.") -> None:
        """Stop polling now (no request starts after this returns); the task itself goes on."""
        self._finish(Outcome.STOPPED, WatchStoppedError(reason), note=reason)

    # -- driven by the scheduler --------------------------------------------------------------

    def _poll(self) -> PollResult:
        """Poll once; say when to poll next (None when the watch has ended) and how it went."""
        if self._done.is_set():
            return PollResult(None)
        if self._finishing:  # never polled again; the scheduler expires it at the deadline
            return PollResult(max(0.0, self.deadline - self._clock()))
        sent = self._clock()
        snapshot: TaskSnapshot | None = None
        error: RunwayWidgetsError | None = None
        try:
            snapshot = self.client.fetch(self.task_id)
        except RunwayWidgetsError as exc:
            error = exc
        except Exception as exc:  # a bug or a library surprise must not kill the watch silently
            log.exception("runway_widgets: unexpected error polling %s", self.task_id)
            error = ProtocolError(f"Unexpected {type(exc).__name__} while polling.")
        try:
            return PollResult(self._absorb(snapshot, error, sent, self._clock()), error)
        except Exception as exc:
            self._crash(exc, "reading a poll's answer")
            return PollResult(None, error)

    def _absorb(self, snapshot: TaskSnapshot | None, error: RunwayWidgetsError | None, sent: float, now: float) -> float | None:
        settings = self.settings
        finish: Ending | None = None
        with self._lock:
            if self._outcome is not Outcome.WATCHING:
                return None
            self._polls += 1
            self._retry_in = None
            delay: float | None = None
            if snapshot is not None:
                self._errors_since, self._consecutive_errors, self._note = None, 0, ""
                self._snapshot = snapshot
                if not snapshot.is_terminal and snapshot.progress is not None:
                    self._last_progress = snapshot.progress
                self._pacer = observe(self._pacer, snapshot, settings.pacing, sent, now)
                if snapshot.is_terminal:
                    finish = terminal_ending(self.task_id, snapshot)
                else:
                    delay = self._next_delay(now)
            elif isinstance(error, TaskNotFoundError) and self._snapshot is None:
                if now - self.started >= settings.not_found_grace:
                    finish = (Outcome.NOT_FOUND, not_found(self.task_id, settings.not_found_grace, error), "")
                else:
                    self._pacer = observe_absent(self._pacer, sent, now)
                    delay = self._next_delay(now)
                    self._note = "waiting for the task to appear"
            elif error is not None and error.transient:
                self._consecutive_errors += 1
                self._errors_since = self._errors_since if self._errors_since is not None else sent
                unreached = getattr(error, "unreached", False)
                limit = min(settings.give_up_after, settings.unreached_give_up) if unreached else settings.give_up_after
                if now - self._errors_since >= limit:
                    finish = (Outcome.GAVE_UP, gave_up(error, now - self._errors_since, self._consecutive_errors, unreached), "")
                else:
                    delay = backoff_delay(settings.pacing, self._consecutive_errors,
                                          getattr(error, "retry_after", None), self._rand())
                    if unreached:  # the last try lands at the limit, not a backoff step past it
                        delay = min(delay, max(settings.pacing.min_interval, self._errors_since + limit - now))
                    self._retry_in = delay
                    self._note = f"retrying in {delay:.0f} s: {error}"
            elif error is not None:
                finish = (Outcome.ERROR, error, "")
            update = self._make_update() if finish is None else None
        if finish is not None:
            if finish[0] is Outcome.SUCCEEDED and self._finisher is not None and snapshot is not None:
                return self._hand_over(self._finisher, snapshot)
            self._finish(*finish)
            return None
        assert update is not None
        self._publish(update)
        return delay

    def _hand_over(self, finisher: Finisher, snapshot: TaskSnapshot) -> float | None:
        """Give the success to the finisher; return the time left until the deadline.

        The scheduler keeps the watch until then, so a finisher that hangs or never reports
        still ends the watch at its timeout (see :meth:`_expire`).
        """
        with self._lock:
            self._finishing = True
        try:
            finisher(self, snapshot, self._complete_success)  # it reports when done (often from another thread)
        except Exception as exc:
            self._crash(exc, "starting to save the video")
            return None
        return None if self._done.is_set() else max(0.0, self.deadline - self._clock())

    def _crash(self, exc: BaseException, doing: str) -> None:
        """End the watch after an exception nobody expected in one of its jobs (a bug, a library surprise)."""
        log.error("runway_widgets: unexpected error %s for task %s", doing, self.task_id, exc_info=exc)
        if self._finishing:
            self._complete_success(DownloadError(f"Saving the video failed: unexpected {type(exc).__name__} "
                                                  f"while {doing}."))
        else:
            self._finish(Outcome.ERROR, RunwayWidgetsError(
                f"Watching task {self.task_id} stopped: unexpected {type(exc).__name__} while {doing} "
                "(the task goes on on the server)."))

    def _next_delay(self, now: float) -> float:
        """The pacing delay after a normal answer, learning from it first (under the lock)."""
        pacer, pacing = self._pacer, self.settings.pacing
        if pacer.changed and pacer.change is not None and pacing.refresh_period > 0:
            cadence = self.gateway.record(pacer.change, period_bound(pacer), pacing.refresh_period)
        else:
            cadence = self.gateway.cadence
        crowd = self.gateway.touch(id(self), now)
        rate = self.budget_rate() if self.budget_rate is not None else None
        delay = next_delay(pacer, pacing, now, self._rand(), cadence, crowd, rate)
        self.urgency = urgency(pacer, cadence, now + delay)
        return delay

    def _expire(self) -> None:
        if self._finishing:  # the task succeeded; only the save ran out of time
            self._complete_success(DownloadError(
                f"Saving the video did not finish within the watch's {self.settings.timeout:g} s timeout."))
            return
        self._finish(Outcome.TIMED_OUT, timed_out(self.task_id, self.settings.timeout, self._snapshot))

    def _finish(self, outcome: Outcome, error: RunwayWidgetsError | None, note: str = "") -> None:
        with self._lock:
            if self._outcome is not Outcome.WATCHING:
                return
            self._outcome, self._error, self._note, self._retry_in = outcome, error, note, None
            self._ended_at = self._clock()
        try:
            with self._lock:
                update = self._make_update()
            if self._on_end is not None:
                try:
                    self._on_end(self)
                except Exception:
                    log.exception("runway_widgets: the end hook of task %s failed", self.task_id)
            # Subscribers see the final update *before* wait() returns: a notebook that ends
            # with wait() must not close while the card's last message is still unsent.
            self._publish(update)
        finally:
            self._done.set()  # whatever a hook or a subscriber did, wait() returns

    def _complete_success(self, error: RunwayWidgetsError | None = None, snapshot: TaskSnapshot | None = None,
                          saved_path: str | None = None) -> None:
        """The finisher's :class:`Completion`: the success is fully handled (or could not be)."""
        with self._lock:
            if snapshot is not None:
                self._snapshot = snapshot
            if saved_path is not None:
                self._saved_path = saved_path
        self._finish(Outcome.SUCCEEDED, error, "" if error is None else f"could not save: {error}")

    def accept_fresh_result(self, snapshot: TaskSnapshot) -> bool:
        """Take a newer snapshot of a task that has succeeded (a fresh signed URL, for one
        that expired); anything else leaves the watch as it ended.  Returns True if taken."""
        with self._lock:
            if self._outcome is not Outcome.SUCCEEDED or not (snapshot.succeeded and snapshot.result_url):
                return False
            self._snapshot = snapshot
            return True

    def _make_update(self) -> WatchUpdate:
        now = self._clock() if self._ended_at is None else self._ended_at
        eta = estimate_finish(self._pacer, self.gateway.cadence)
        snap = self._snapshot
        # A failed task reads 100 %: its bar keeps what it had reached.
        held = (self._last_progress or 0.0) if snap is not None and snap.is_terminal and not snap.succeeded else None
        return WatchUpdate(
            task_id=self.task_id,
            outcome=self._outcome,
            snapshot=self._snapshot,
            elapsed=now - self.started,
            polls=self._polls,
            note=self._note,
            error=self._error,
            eta=None if eta is None or self._outcome is not Outcome.WATCHING else max(0.0, eta - now),
            retry_in=self._retry_in,
            saved_path=self._saved_path,
            held_progress=held,
        )

    def _publish(self, update: WatchUpdate) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            if not self._deliver(callback, update):
                with self._lock:
                    if callback in self._subscribers:
                        self._subscribers.remove(callback)

    @staticmethod
    def _deliver(callback: Callable[[WatchUpdate], Any], update: WatchUpdate) -> bool:
        try:
            callback(update)
            return True
        except (Exception, SystemExit):  # sys.exit() in a callback on a worker thread would end only that thread
            log.exception("runway_widgets: a subscriber of task %s raised; it was detached", update.task_id)
            return False


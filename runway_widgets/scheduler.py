"""The shared poller: one thread per process decides who polls when; a small pool does the I/O.

Every watch in the process waits in one :class:`~.triage.DueQueue` for its next due time.
The scheduler thread takes due watches, reserves one token of the process-wide :class:`RequestBudget` for
each, and hands the poll to a bounded :class:`WorkerPool`; the worker takes the token the
moment it sends.  (Spending at hand-off instead let a poll that waited a few ms for a
worker -- thread wake-up, the GIL -- leave together with the next ones: under load a
server saw more requests in a second than the bucket allows.)  When tokens run short, the
most urgent due poll goes first (one that may see a finish before routine looks at queued
tasks), and among equals the one that has waited longest; a routine look is overtaken for
a bounded time only (:mod:`.triage`), so no task starves.  The thread
waits only on ``Event.wait(timeout)``, so adding or stopping a watch takes effect at once,
and it exits after a second with nothing to do.

Requests outside any watch's schedule (a fresh URL for an expired one) go through
:meth:`Scheduler.fetch_now`, which waits its turn for a token of the same budget.

For tests, :meth:`Scheduler.step` does one round of work synchronously; with an injected
clock and an :class:`InlineExecutor` no thread and no real sleep is involved.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import TYPE_CHECKING, Callable, Protocol

from .budget import DEFAULT_BURST, DEFAULT_RATE, SDK_PER_WATCH, RequestBudget
from .errors import RateLimitedError, RunwayWidgetsError
from .policy import PacingConfig, backoff_delay
from .triage import FINISH, DueQueue
from .updates import PollResult
from .watch import Outcome, Watch
from .workers import WorkerPool

if TYPE_CHECKING:
    from .client import Client
    from .snapshot import TaskSnapshot

__all__ = ["Scheduler", "get_scheduler", "set_request_budget", "shutdown_scheduler", "THREAD_NAME"]

log = logging.getLogger("runway_widgets")
THREAD_NAME = "runway-widgets-poller"


class Executor(Protocol):
    max_workers: int

    def submit(self, job: Callable[[], None]) -> None: ...

    def shutdown(self, timeout: float = ...) -> None: ...


class Scheduler:
    """Owns every watch's next due time and the request budget.

    Parameters
    ----------
    budget:
        The shared token bucket (default: 10 requests/s, bursts of 10, growing with the
        watches to the Runway SDK's rate: see :mod:`.budget`).
    executor:
        Where polls run (default: a pool of ``max_workers`` daemon threads).
    clock:
        Monotonic seconds; injectable for tests.
    threaded:
        Run the scheduling loop on its own daemon thread.  Tests pass False and call
        :meth:`step` themselves.
    idle_linger:
        Seconds the thread stays alive with no watches before it exits.
    """

    def __init__(
        self,
        budget: RequestBudget | None = None,
        executor: Executor | None = None,
        *,
        max_workers: int = 4,
        clock: Callable[[], float] = time.monotonic,
        threaded: bool = True,
        idle_linger: float = 1.0,
    ) -> None:
        self.budget = budget or RequestBudget(per_watch=SDK_PER_WATCH)
        self._executor: Executor = executor or WorkerPool(max_workers=max_workers)
        self.clock = clock
        self._threaded = threaded
        self._idle_linger = idle_linger
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._queue: DueQueue[Watch] = DueQueue()
        self._in_flight = 0
        self._reserved = 0  # tokens promised to polls handed to a worker that has not sent yet
        self._thread: threading.Thread | None = None
        self._closed = False
        self.rate_limited = 0

    # -- watches ------------------------------------------------------------------------------

    def add(self, watch: Watch, delay: float = 0.0) -> None:
        """Schedule ``watch``'s first poll after ``delay`` seconds (default: at once)."""
        watch.budget_rate = self._budget_rate  # pacing shares the budget out among a crowd
        with self._lock:
            if self._closed:
                raise RuntimeError("the scheduler is shut down")
            self._push(self.clock() + delay, watch)
            self._fit_budget()
            if self._threaded and self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=THREAD_NAME, daemon=True)
                self._thread.start()
        self._wake.set()

    def _budget_rate(self) -> float:
        return self.budget.configured_rate

    def _fit_budget(self) -> None:
        """Let a budget that scales with the watches see how many there are (under the lock)."""
        self.budget.fit_watches(len(self._queue) + self._in_flight)

    def _push(self, when: float, watch: Watch) -> None:
        """Queue ``watch`` for ``when`` (under the lock); a poll at the deadline goes first."""
        when = min(when, watch.deadline)
        self._queue.push(when, watch, FINISH if when >= watch.deadline else watch.urgency)

    def remove(self, watch: Watch) -> None:
        """Forget ``watch`` (called when it stops, so an idle process frees its thread)."""
        with self._lock:
            self._queue.remove(watch)
            self._fit_budget()
        self._wake.set()

    def pending(self) -> int:
        """Watches scheduled or polling right now."""
        with self._lock:
            return len(self._queue) + self._in_flight

    # -- one round ------------------------------------------------------------------------------

    def step(self) -> float:
        """Start every poll that is due and allowed; return seconds until the next wake-up."""
        due: list[Watch] = []
        expired: list[Watch] = []
        with self._lock:
            now = self.clock()
            wait = float("inf")
            while self._queue and self._in_flight < self._executor.max_workers:
                head = self._queue.peek(now)
                if head is None:
                    wait = self._queue.next_due() - now
                    break
                watch = head[1]
                if watch.done():
                    self._queue.pop(now)
                    continue
                if now >= watch.deadline:
                    self._queue.pop(now)
                    expired.append(watch)
                    continue
                budget_wait = self.budget.wait_time(now, self._reserved)
                if budget_wait > 0:
                    wait = budget_wait
                    break
                self._queue.pop(now)
                self._reserved += 1  # spent by the worker as it sends (see _run)
                self._in_flight += 1
                due.append(watch)
        for watch in expired:
            try:
                watch._expire()  # it ends whatever its subscribers do; the others must expire too
            except Exception:
                log.exception("runway_widgets: expiring the watch of %s failed", watch.task_id)
        for watch in due:
            try:
                self._executor.submit(functools.partial(self._run, watch))
            except Exception:  # no thread could be started (or the pool is closed): try again soon
                log.exception("runway_widgets: could not hand a poll of %s to a worker", watch.task_id)
                with self._lock:
                    self._reserved -= 1
                    self._in_flight -= 1
                    self._push(self.clock() + 1.0, watch)
        if due or expired:
            # Inline executors have already rescheduled; threaded ones will wake us.
            with self._lock:
                if self._queue and self._in_flight < self._executor.max_workers:
                    now = self.clock()
                    wait = max(0.0, self._queue.next_due() - now, self.budget.wait_time(now, self._reserved))
                elif not self._queue:
                    wait = float("inf")
        return wait

    def _run(self, watch: Watch) -> None:
        """Poll on a worker thread, then put the watch back in the queue."""
        result: PollResult | None = None
        sent = False
        try:
            with self._lock:
                # The token goes now, as the request leaves, not when the poll was handed
                # over.  It was reserved then, so only a 429 pause since can refuse it.
                self._reserved -= 1
                sent = self.budget.try_spend(self.clock())
            if sent:
                result = watch._poll()
        except Exception as exc:  # _poll guards itself; this is the last line of defence
            watch._crash(exc, "polling")
        finally:
            with self._lock:
                self._in_flight -= 1
                now = self.clock()
                # The outcome, not done(): it is set before the finish hooks take the watch
                # out of the queue (under this lock), done() only after; a watch that ended
                # in between must not be put back.
                going = watch.outcome is Outcome.WATCHING
                if sent:
                    if result is not None:
                        self._feed_budget(result.error, watch.settings.pacing, now)
                    if result is not None and result.next_in is not None and going:
                        self._push(now + result.next_in, watch)
                elif going:
                    # Paused (a 429) between hand-off and send: back in line, due now.
                    self._push(now, watch)
                orphaned = self._closed and going  # shut down while this poll ran
            if orphaned:
                watch.stop("The poller was shut down.")
            self._wake.set()

    def _feed_budget(self, last: RunwayWidgetsError | None, pacing: PacingConfig, now: float) -> None:
        """Feed how a request went to the shared budget (called under the lock)."""
        if isinstance(last, RateLimitedError):
            # A 429 is about all of our traffic: pause everyone, not just this task.
            self.rate_limited += 1
            pause = last.retry_after
            if pause is None:
                pause = backoff_delay(pacing, 1, None, 0.5)
            self.budget.penalize(now, min(pause, pacing.max_retry_after))
        elif last is None:
            self.budget.reward()

    # -- one-off requests ------------------------------------------------------------------------

    def fetch_now(self, client: Client, task_id: str, *, max_wait: float = 30.0) -> TaskSnapshot:
        """Fetch ``task_id`` once, outside any watch's schedule, paid from the shared budget.

        For requests no watch schedules: a fresh result URL after the signed one expired.
        Blocks (on the calling thread) until a token is free -- first in line before any
        poll not yet handed out, after a 429 pause -- but at most ``max_wait`` seconds.
        A 429 answer pauses every watch, as a poll's would.

        Raises
        ------
        RateLimitedError
            No token within ``max_wait`` seconds (nothing was sent).
        RunwayWidgetsError
            Whatever :meth:`Client.fetch` raises.
        """
        give_up = time.monotonic() + max(0.0, max_wait)
        with self._lock:
            self._reserved += 1  # in line now: step() hands out no token this one needs
        try:
            while True:
                with self._lock:
                    now = self.clock()
                    if self.budget.try_spend(now):
                        break
                    wait = self.budget.wait_time(now)
                if time.monotonic() + min(wait, 0.25) > give_up:
                    raise RateLimitedError(f"No request slot was free within {max_wait:g} s "
                                           "(the shared request budget is in use).", status_code=0)
                time.sleep(min(wait, 0.25))  # short slices: the clock may be a test's
        finally:
            with self._lock:
                self._reserved -= 1
            self._wake.set()
        error: RunwayWidgetsError | None = None
        try:
            return client.fetch(task_id)
        except RunwayWidgetsError as exc:
            error = exc
            raise
        finally:
            with self._lock:
                self._feed_budget(error, PacingConfig(), self.clock())

    # -- the thread -------------------------------------------------------------------------------

    def _loop(self) -> None:
        idle_since: float | None = None
        while True:
            self._wake.clear()
            try:
                wait = self.step()
            except BaseException:  # keep polling other watches whatever one of them did: this thread must not die
                log.exception("runway_widgets: scheduler step failed")
                wait = 0.5
            with self._lock:
                if self._closed:
                    self._thread = None
                    return
                if not self._queue and self._in_flight == 0:
                    now = time.monotonic()
                    idle_since = idle_since if idle_since is not None else now
                    if now - idle_since >= self._idle_linger:
                        self._thread = None
                        return
                    wait = min(wait, self._idle_linger)
                else:
                    idle_since = None
            self._wake.wait(min(wait, 60.0))

    def shutdown(self, timeout: float = 2.0) -> None:
        """Stop every scheduled watch, end the thread and the workers (bounded by ``timeout``)."""
        with self._lock:
            self._closed = True
            watches = list(self._queue.items())
            self._queue.clear()
            thread = self._thread
        for watch in watches:
            watch.stop("The poller was shut down.")
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._executor.shutdown(timeout)


_default: Scheduler | None = None
_default_lock = threading.Lock()
_default_budget: tuple[float, float] | None = None  # (rate, burst) set by set_request_budget


def get_scheduler() -> Scheduler:
    """The process-wide scheduler, created on first use."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            budget = RequestBudget(*_default_budget) if _default_budget else RequestBudget(per_watch=SDK_PER_WATCH)
            # Workers start as polls overlap and end after 2 s idle: 16 lets a budget
            # scaled to hundreds of watches go out at round trips of a second.
            _default = Scheduler(budget=budget, max_workers=16)
        return _default


def set_request_budget(rate: float | None, burst: float | None = None) -> None:
    """Set the process-wide request budget: ``rate`` requests/s, bursts of ``burst`` (default: rate).

    Every watch in the process shares it.  The default (``rate=None`` goes back to it) is
    10/s, bursts of 10, or, with more than 60 watches, one request per 6 s for each (what
    the Runway SDK would send), bursts of 4 s of that; a rate set here is a fixed cap.
    Takes effect at once for the running poller, and for any poller started later.  A 429
    pause that is running goes on, and a rate that 429s reduced stays reduced in proportion.
    """
    global _default_budget
    fixed = None if rate is None else (  # RequestBudget checks the values
        RequestBudget(rate=float(rate), burst=float(burst if burst is not None else max(1.0, rate))))
    with _default_lock:
        _default_budget = None if fixed is None else (fixed.rate, fixed.burst)
        scheduler = _default
    if scheduler is not None:
        with scheduler._lock:
            if fixed is None:
                scheduler.budget.rescale(SDK_PER_WATCH, DEFAULT_RATE, DEFAULT_BURST)
                scheduler._fit_budget()
            else:
                scheduler.budget.reconfigure(fixed.rate, fixed.burst)
        scheduler._wake.set()


def shutdown_scheduler(timeout: float = 2.0) -> None:
    """Stop the process-wide scheduler and every watch it serves (``%unload_ext`` does this)."""
    global _default
    with _default_lock:
        scheduler, _default = _default, None
    if scheduler is not None:
        scheduler.shutdown(timeout)

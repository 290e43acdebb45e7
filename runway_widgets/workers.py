"""A small bounded pool of daemon worker threads that go away when idle.

Why not ``concurrent.futures.ThreadPoolExecutor``: its threads are joined at interpreter
exit, so a worker stuck in a slow HTTP read would hold up closing a kernel or the CLI for
the whole read timeout.  These threads are daemons, and they exit after ``idle_timeout``
seconds without work, so a notebook that is not watching anything has no threads of ours.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Callable

__all__ = ["WorkerPool", "InlineExecutor"]

log = logging.getLogger("runway_widgets")


class WorkerPool:
    """Run callables on at most ``max_workers`` daemon threads named ``{name}-{n}``."""

    def __init__(self, max_workers: int = 4, name: str = "runway-widgets-http", idle_timeout: float = 2.0) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self.name = name
        self.idle_timeout = idle_timeout
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._serial = 0
        self._closed = False

    def submit(self, job: Callable[[], None]) -> None:
        """Queue ``job``; start a thread for it if none is idle and the cap allows.

        Raises ``RuntimeError`` when the pool is shut down, or when no thread could be
        started and none is alive to take the job: then the job was *not* queued, and the
        caller still owns it (so nothing waits for a job that will never run).
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is shut down")
            if self._idle > 0 or len(self._threads) >= self.max_workers:
                self._idle = max(0, self._idle - 1)
                self._queue.put(job)
                return
            self._serial += 1
            thread = threading.Thread(target=self._run, name=f"{self.name}-{self._serial}", daemon=True)
            self._threads.add(thread)
        try:
            thread.start()
        except RuntimeError:  # "can't start new thread": out of threads or memory
            with self._lock:
                self._threads.discard(thread)
                if not self._threads or self._closed:
                    raise
                self._queue.put(job)  # a live thread takes it (it cannot retire: the queue is not empty)
            return
        with self._lock:
            if self._closed:  # shut down meanwhile: its stop markers are queued ahead of this job
                raise RuntimeError("the worker pool is shut down")
            self._queue.put(job)

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            try:
                job = self._queue.get(timeout=self.idle_timeout)
            except queue.Empty:
                with self._lock:
                    # Re-check under the lock: a submit may have counted on us being idle.
                    if self._queue.empty():
                        self._idle = max(0, self._idle - 1)
                        self._threads.discard(me)
                        return
                continue
            if job is None:
                with self._lock:
                    self._threads.discard(me)
                return
            try:
                job()
            except BaseException:  # a job must never kill the pool's thread silently
                log.exception("runway_widgets: a background job failed")
            with self._lock:
                self._idle += 1

    def shutdown(self, timeout: float = 2.0) -> None:
        """Stop accepting work, let running jobs finish (bounded by ``timeout``), end threads."""
        with self._lock:  # markers queued under the lock: a job is either ahead of them or refused
            self._closed = True
            threads = list(self._threads)
            for _ in threads:
                self._queue.put(None)
        for thread in threads:
            thread.join(timeout / max(1, len(threads)))


class InlineExecutor:
    """Runs each job at once on the caller's thread: lets tests drive the scheduler with a fake clock."""

    max_workers = 1_000_000

    def submit(self, job: Callable[[], None]) -> None:
        job()

    def shutdown(self, timeout: float = 0.0) -> None:
        return None

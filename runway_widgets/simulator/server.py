"""The :class:`Simulator`: a fake CometAPI gateway on a loopback port.

This module owns the simulator's state (tasks, faults, request log), guarded by
one lock, and its life cycle (a daemon thread running ``serve_forever``). HTTP
plumbing lives in :mod:`.handler`, request routing in :mod:`.routes`.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from types import TracebackType
from typing import Any

from .faults import Fault, FaultQueue
from .handler import SimServer
from .media import MediaSigner
from .timeline import Timeline, task_view

__all__ = ["Simulator", "RequestRecord"]

#: The request log keeps this many records: a ``--demo`` server may run for days.
LOG_LIMIT = 100_000


@dataclass(frozen=True)
class RequestRecord:
    """One request the simulator answered (or dropped).

    Attributes
    ----------
    time : float
        ``time.monotonic()`` when the request arrived.
    method, path : str
        HTTP method and path without the query string.
    task_id : str or None
        The task concerned, when the request names or creates one.
    status : int
        HTTP status served; 0 when the connection was dropped or reset.
    key_ok : bool
        The request carried an API key the simulator accepts (the key itself is never kept).
    auth_sent : bool
        The request carried an Authorization header at all (e.g. leaked to a media URL).
    """

    time: float
    method: str
    path: str
    task_id: str | None
    status: int
    key_ok: bool
    auth_sent: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-friendly dict."""
        return asdict(self)


@dataclass
class _Task:
    task_id: str
    owner: str  # sha256 of the key: scoping needs identity, not the secret
    action: str
    timeline: Timeline
    created_mono: float
    created_unix: float
    polls: int = 0
    terminal_polls: int = 0


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


class Simulator:
    """A fake CometAPI server speaking the Runway-compatible protocol.

    Parameters
    ----------
    host : str
        Interface to bind ("127.0.0.1"; "::1" for IPv6).
    port : int
        Port to bind; 0 picks a free one (read it back from :attr:`port`).
    keys : iterable of str or None
        Accepted API keys; None accepts any non-empty Bearer key.
    default_timeline : Timeline or None
        Script of tasks created over HTTP when no queued timeline is left.
    runway_keys : iterable of str or None
        Keys accepted on Runway's own API (``/v1/...``); None accepts any non-empty key.
        Tasks belong to the key that created them, whichever API created them.
    refresh_period : float or None
        Act as a gateway whose one refresh loop ticks every ``refresh_period`` seconds
        (0: continuously) for every task, whatever its timeline says.  None: each
        timeline's own ``refresh_period``, counted from its task's creation.
    refresh_phase : float or None
        Where in the period the loop's ticks fall, seconds after the simulator was
        created (None: random).

    Examples
    --------
    >>> with Simulator(default_timeline=Timeline.fast()) as sim:  # doctest: +SKIP
    ...     task_id = sim.add_task("sk-test")
    ...     print(sim.base_url)
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, keys: Iterable[str] | None = None,
                 default_timeline: Timeline | None = None, refresh_period: float | None = None,
                 refresh_phase: float | None = None, runway_keys: Iterable[str] | None = None) -> None:
        if refresh_period is not None and not (refresh_period >= 0 and math.isfinite(refresh_period)):
            raise ValueError(f"refresh_period must be a number >= 0, got {refresh_period!r}")
        self.host = host
        self.refresh_period = refresh_period
        period = refresh_period or 0.0
        self.refresh_phase = (refresh_phase if refresh_phase is not None else random.uniform(0.0, period)) % period if period else 0.0
        self._epoch = time.monotonic()
        self._requested_port = port
        if isinstance(keys, str):  # a lone key, not an iterable of its characters
            keys = [keys]
        self._keys: frozenset[str] | None = None if keys is None else frozenset(keys)
        if isinstance(runway_keys, str):
            runway_keys = [runway_keys]
        self._runway_keys: frozenset[str] | None = None if runway_keys is None else frozenset(runway_keys)
        self._bodies: deque[tuple[str, str, dict[str, Any]]] = deque(maxlen=1000)
        self._default_timeline = default_timeline
        self._lock = threading.Lock()
        self._tasks: dict[str, _Task] = {}
        self._faults = FaultQueue()
        self._log: deque[RequestRecord] = deque(maxlen=LOG_LIMIT)
        self._next_timelines: deque[Timeline] = deque()
        self._signer = MediaSigner()
        self._stop_event = threading.Event()
        self._server: SimServer | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    # ----------------------------------------------------------------- life cycle
    def start(self) -> Simulator:
        """Bind the port and serve in a daemon thread; return ``self``."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("a stopped Simulator cannot be restarted; create a new one")
            if self._server is not None:
                return self
            self._server = SimServer((self.host, self._requested_port), self)
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"runway-simulator-{self._server.server_port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every socket; idempotent and bounded in time."""
        with self._lock:
            server, thread = self._server, self._thread
            already, self._stopped = self._stopped, True
        if already or server is None:
            return
        # Wake handlers stalled by a "slow" fault before waiting on anything.
        self._stop_event.set()
        server.shutdown()
        server.server_close()
        # Idle keep-alive connections would otherwise keep being served by their
        # handler threads after stop(): cut them.
        server.close_all_connections()
        if thread is not None:
            thread.join(timeout=5.0)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the requested one until :meth:`start`)."""
        server = self._server
        return server.server_port if server is not None else self._requested_port

    @property
    def base_url(self) -> str:
        """Root URL clients use, e.g. ``"http://127.0.0.1:8765"``."""
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    # ------------------------------------------------------------------ scripting
    def add_task(self, key: str, timeline: Timeline | None = None, task_id: str | None = None,
                 action: str = "TEXT_TO_VIDEO") -> str:
        """Create a task owned by ``key`` without HTTP; its clock starts now.

        Returns
        -------
        str
            The task id (a uuid4 string unless ``task_id`` is given).
        """
        if not isinstance(key, str) or not key:
            raise ValueError("key must be a non-empty str")
        if task_id is not None and (not isinstance(task_id, str) or not task_id):
            raise ValueError("task_id must be None or a non-empty str")
        with self._lock:
            if task_id is not None and task_id in self._tasks:
                raise ValueError(f"task {task_id!r} already exists")
            chosen = timeline if timeline is not None else self._default_timeline or Timeline()
            return self._insert(key, chosen, task_id, action)

    def inject(self, fault: Fault) -> None:
        """Queue ``fault`` for the next matching requests."""
        if not isinstance(fault, Fault):
            raise TypeError("inject() takes a Fault")
        with self._lock:
            self._faults.push(fault)

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> list[tuple[Fault, int]]:
        """Return (fault, remaining uses) pairs, oldest first."""
        with self._lock:
            return self._faults.pending()

    def set_default_timeline(self, timeline: Timeline) -> None:
        """Script tasks created over HTTP once the queued timelines are used up."""
        with self._lock:
            self._default_timeline = timeline

    def next_timelines(self, *timelines: Timeline) -> None:
        """Queue timelines for the next tasks created over HTTP, in order."""
        with self._lock:
            self._next_timelines.extend(timelines)

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first (control requests excluded)."""
        with self._lock:
            return list(self._log)

    def requests_for(self, task_id: str) -> list[RequestRecord]:
        """The logged requests concerning ``task_id``."""
        with self._lock:
            return [r for r in self._log if r.task_id == task_id]

    @property
    def created_bodies(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(path, task id, JSON body) of the last 1000 tasks created over HTTP, oldest first."""
        with self._lock:
            return list(self._bodies)

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self._lock:
            self._log.clear()

    # ------------------------------------------------- internals for the handler
    def _insert(self, key: str, timeline: Timeline, task_id: str | None, action: str) -> str:
        # Caller holds the lock.
        new_id = task_id or str(uuid.uuid4())
        now = time.monotonic()
        if self.refresh_period is not None:
            # One loop for all tasks: ticks at epoch + refresh_phase + k * period.
            phase = (now - self._epoch - self.refresh_phase) % self.refresh_period if self.refresh_period else 0.0
            timeline = replace(timeline, refresh_period=self.refresh_period, refresh_phase=phase)
        self._tasks[new_id] = _Task(new_id, _digest(key), action, timeline, now, time.time())
        return new_id

    def _key_accepted(self, key: str | None) -> bool:
        if not key:
            return False
        return self._keys is None or key in self._keys

    def _runway_key_accepted(self, key: str | None) -> bool:
        if not key:
            return False
        return self._runway_keys is None or key in self._runway_keys

    def _remember_body(self, path: str, task_id: str, body: dict[str, Any]) -> None:
        with self._lock:
            self._bodies.append((path, task_id, body))

    def _create_http(self, key: str, action: str) -> str:
        with self._lock:
            if self._next_timelines:
                timeline = self._next_timelines.popleft()
            else:
                timeline = self._default_timeline if self._default_timeline is not None else Timeline()
            return self._insert(key, timeline, None, action)

    def _poll(self, task_id: str, key: str) -> tuple[_Task, dict[str, Any], str | None] | None:
        """Look up a task for its owner and compute the view a poll sees now.

        Returns None when the task is unknown, owned by another key or invisible.
        The result URL is minted per poll, so a poll after expiry gets a fresh one.
        """
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or task.owner != _digest(key):
                return None
            view = task_view(task.timeline, time.monotonic() - task.created_mono, task.polls, task.terminal_polls)
            if not view["visible"]:
                return None
            task.polls += 1
            if view["phase"] == "terminal":
                task.terminal_polls += 1
        url: str | None = None
        if view["succeeded"]:
            url = task.timeline.result_url_override
            if url is None:
                url = self._signer.mint(self.base_url, task.task_id, task.timeline.url_ttl)
        return task, view, url

    def _media_timeline(self, task_id: str) -> Timeline | None:
        with self._lock:
            task = self._tasks.get(task_id)
            return None if task is None else task.timeline

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            return self._faults.take(path)

    def _record(self, started: float, method: str, path: str, task_id: str | None, status: int,
                key_ok: bool, auth_sent: bool) -> None:
        record = RequestRecord(started, method, path, task_id, status, key_ok, auth_sent)
        with self._lock:
            self._log.append(record)

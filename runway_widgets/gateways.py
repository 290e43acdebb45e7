"""What the watches of a process learn about each gateway, shared by base URL.

A gateway refreshes every task in one loop, so its cadence is a property of the gateway,
not of a task: every watch of one base URL feeds the changes it sees into one
:class:`Gateway`, and a new watch starts with what the others have learnt (phase-locked
from its first poll).  The learning itself is pure (:mod:`.cadence`); this module only
holds the current value under a lock.

The process registry (:func:`get_gateways`) also starts each gateway from what earlier
processes learnt of its base URL and lets it save what it learns (:mod:`.cadence_store`);
a bare :class:`Gateway` touches no file.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

from .cadence import Bracket, Cadence, learn
from .cadence_store import CadenceMemory, at_exit
from .config import remember_cadence

__all__ = ["Gateway", "GatewayRegistry", "get_gateways"]

_ACTIVE = 90.0  # s: a watch that polled this recently counts in the crowd


class Gateway:
    """The shared cadence of one base URL, and how many watches poll it (thread-safe).

    ``cadence`` and ``prior`` are where it starts (a remembered cadence, and a remembered
    period to believe on thin evidence instead of the watch's own prior); ``on_learn`` is
    called with every cadence learnt (outside the lock), e.g. :meth:`CadenceMemory.note`.
    """

    def __init__(self, base_url: str, cadence: Optional[Cadence] = None, prior: float = 0.0,
                 on_learn: Optional[Callable[[Cadence], None]] = None) -> None:
        self.base_url = base_url
        self._lock = threading.Lock()
        self._cadence = cadence if cadence is not None else Cadence()
        self.prior = prior
        self._on_learn = on_learn
        self._active: dict[int, float] = {}  # watch key -> when it last polled

    @property
    def cadence(self) -> Cadence:
        return self._cadence

    def record(self, bracket: Bracket, bound: float, prior: float) -> Cadence:
        """Learn from one change a watch saw (``bound``: the longest period its task's
        changes allow); return the cadence as it now stands."""
        with self._lock:
            self._cadence = cadence = learn(self._cadence, bracket, bound, self.prior or prior)
        if self._on_learn is not None:
            self._on_learn(cadence)
        return cadence

    def touch(self, key: int, now: float) -> int:
        """Note that watch ``key`` polled at ``now``; return how many watches poll this gateway."""
        with self._lock:
            self._active[key] = now
            if len(self._active) > 64 and len(self._active) % 64 == 0:
                self._active = {k: t for k, t in self._active.items() if now - t <= _ACTIVE}
            return sum(1 for t in self._active.values() if now - t <= _ACTIVE)

    def leave(self, key: int) -> None:
        """Watch ``key`` stopped polling."""
        with self._lock:
            self._active.pop(key, None)


class GatewayRegistry:
    """One :class:`Gateway` per base URL.

    With ``remember`` (the process registry), a new gateway starts from the cadence earlier
    processes learnt of its base URL and saves what it learns, unless
    :func:`~.config.remember_cadence` says no when it is created.
    """

    def __init__(self, remember: bool = False) -> None:
        self._lock = threading.Lock()
        self._gateways: dict[str, Gateway] = {}
        self.remember = remember

    def get(self, base_url: str) -> Gateway:
        with self._lock:
            gateway = self._gateways.get(base_url)
            if gateway is None:
                gateway = self._gateways[base_url] = self._new(base_url)
            return gateway

    def _new(self, base_url: str) -> Gateway:
        if not (self.remember and remember_cadence()):
            return Gateway(base_url)
        memory = at_exit(CadenceMemory(base_url))
        recall = memory.recall()  # a small file, read once per base URL and process
        if recall is None:
            return Gateway(base_url, on_learn=memory.note)
        return Gateway(base_url, recall.cadence, recall.prior, on_learn=memory.note)


_registry = GatewayRegistry(remember=True)


def get_gateways() -> GatewayRegistry:
    """The process-wide registry every :func:`runway_widgets.watch` uses."""
    return _registry

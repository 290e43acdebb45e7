"""What the watches of a process learn about each gateway, shared by base URL.

A gateway refreshes every task in one loop, so its cadence is a property of the gateway,
not of a task: every watch of one base URL feeds the changes it sees into one
:class:`Gateway`, and a new watch starts with what the others have learnt (phase-locked
from its first poll).  The learning itself is pure (:mod:`.cadence`); this module only
holds the current value under a lock.
"""

from __future__ import annotations

import threading

from .cadence import Bracket, Cadence, learn

__all__ = ["Gateway", "GatewayRegistry", "get_gateways"]

_ACTIVE = 90.0  # s: a watch that polled this recently counts in the crowd


class Gateway:
    """The shared cadence of one base URL, and how many watches poll it (thread-safe)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._lock = threading.Lock()
        self._cadence = Cadence()
        self._active: dict[int, float] = {}  # watch key -> when it last polled

    @property
    def cadence(self) -> Cadence:
        return self._cadence

    def record(self, bracket: Bracket, bound: float, prior: float) -> Cadence:
        """Learn from one change a watch saw (``bound``: the longest period its task's
        changes allow); return the cadence as it now stands."""
        with self._lock:
            self._cadence = learn(self._cadence, bracket, bound, prior)
            return self._cadence

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
    """One :class:`Gateway` per base URL."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gateways: dict[str, Gateway] = {}

    def get(self, base_url: str) -> Gateway:
        with self._lock:
            gateway = self._gateways.get(base_url)
            if gateway is None:
                gateway = self._gateways[base_url] = Gateway(base_url)
            return gateway


_registry = GatewayRegistry()


def get_gateways() -> GatewayRegistry:
    """The process-wide registry every :func:`runway_widgets.watch` uses."""
    return _registry

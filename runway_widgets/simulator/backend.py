"""What the request handler and the routes need of the simulator, as a protocol.

:class:`~runway_widgets.simulator.server.Simulator` owns the handler's server, so the
handler and the routes describe the simulator by this protocol instead of importing it:
the imports run one way, server -> handler -> routes -> backend.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from email.message import Message
from typing import Any, Protocol

from .faults import Fault
from .media import MediaSigner
from .timeline import Timeline

__all__ = ["ApiRequest", "Backend"]


@dataclass(frozen=True)
class ApiRequest:
    """What routing needs to know about a request."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    key: str | None
    key_ok: bool


class Backend(Protocol):
    """The simulator as its handler and routes see it (task state, faults, the request log)."""

    _signer: MediaSigner
    _stop_event: threading.Event

    @property
    def port(self) -> int: ...

    @property
    def requests(self) -> list[Any]: ...  # RequestRecord, each with to_dict()

    def add_task(self, key: str, timeline: Timeline | None = None, task_id: str | None = None,
                 action: str = "TEXT_TO_VIDEO") -> str: ...

    def inject(self, fault: Fault) -> None: ...

    def clear_faults(self) -> None: ...

    def pending_faults(self) -> list[tuple[Fault, int]]: ...

    def set_default_timeline(self, timeline: Timeline) -> None: ...

    def next_timelines(self, *timelines: Timeline) -> None: ...

    def clear_requests(self) -> None: ...

    def _key_accepted(self, key: str | None) -> bool: ...

    def _create_http(self, key: str, action: str) -> str: ...

    def _runway_key_accepted(self, key: str | None) -> bool: ...

    def _remember_body(self, path: str, task_id: str, body: dict[str, Any]) -> None: ...

    def _poll(self, task_id: str, key: str) -> tuple[Any, dict[str, Any], str | None] | None: ...

    def _media_timeline(self, task_id: str) -> Timeline | None: ...

    def _take_fault(self, path: str) -> Fault | None: ...

    def _record(self, started: float, method: str, path: str, task_id: str | None, status: int,
                key_ok: bool, auth_sent: bool) -> None: ...

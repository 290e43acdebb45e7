"""Injected faults: misbehaviours the next matching requests will suffer.

Faults are consumed in injection order; each applies to ``count`` requests whose
path starts with ``path`` and is then dropped. Connection-level kinds ("slow",
"drop", "reset") are carried out by the request handler; every other kind is a
canned :class:`~runway_widgets.simulator.responses.Response` built here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .responses import (
    JSON_TYPE,
    Response,
    gateway_error,
    json_response,
    login_page_html,
    nginx_error_html,
)

__all__ = ["FAULT_KINDS", "Fault", "FaultQueue", "fault_response", "HUGE_SIZE"]

FAULT_KINDS = (
    "rate_limit", "server_error_json", "server_error_html", "slow", "drop", "reset",
    "malformed", "wrong_type", "huge", "empty", "html200", "echo_auth", "redirect", "custom",
)

#: Size of the "huge" fault's body: large enough that a client without a cap
#: on response size would visibly stall or balloon.
HUGE_SIZE = 10 * 1024 * 1024


@dataclass(frozen=True)
class Fault:
    """A misbehaviour applied to the next ``count`` requests matching ``path``.

    Attributes
    ----------
    kind : str
        One of :data:`FAULT_KINDS`.
    count : int
        How many matching requests suffer it.
    path : str
        Path prefix to match ("" matches every API and media request).
    retry_after : str or None
        Retry-After header value for "rate_limit" (seconds or an HTTP date).
    delay : float
        Seconds to stall for "slow".
    status : int or None
        Status override (errors) or the status of "custom".
    body : bytes or None
        Body of "custom" and "wrong_type".
    """

    kind: str
    count: int = 1
    path: str = "/runway/feed"
    retry_after: str | None = None
    delay: float = 0.0
    status: int | None = None
    body: bytes | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"Fault.kind must be one of {FAULT_KINDS}, got {self.kind!r}")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError("Fault.count must be an int >= 1")
        if not isinstance(self.path, str):
            raise ValueError("Fault.path must be a str")
        if self.retry_after is not None and not isinstance(self.retry_after, str):
            raise ValueError("Fault.retry_after must be None or a str")
        if isinstance(self.delay, bool) or not isinstance(self.delay, (int, float)) or not self.delay >= 0:
            raise ValueError("Fault.delay must be a number >= 0")
        status = self.status
        if status is not None and (isinstance(status, bool) or not isinstance(status, int)
                                   or not 100 <= status <= 599):
            raise ValueError("Fault.status must be None or an int in 100..599")
        if self.body is not None and not isinstance(self.body, bytes):
            raise ValueError("Fault.body must be None or bytes")

    def matches(self, path: str) -> bool:
        """Return whether this fault applies to a request for ``path``."""
        return path.startswith(self.path)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-friendly dict (``body`` decoded as UTF-8)."""
        out = dataclasses.asdict(self)
        if self.body is not None:
            out["body"] = self.body.decode("utf-8", errors="replace")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        """Build a fault from a dict; ``body`` may be a str, ``retry_after`` a number.

        Raises
        ------
        ValueError
            On unknown fields or invalid values.
        """
        if not isinstance(data, dict):
            raise ValueError("a fault must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown Fault fields: {', '.join(map(str, unknown))}")
        if "kind" not in data:
            raise ValueError("a fault needs a kind")
        values = dict(data)
        if isinstance(values.get("body"), str):
            values["body"] = values["body"].encode("utf-8")
        retry = values.get("retry_after")
        if isinstance(retry, (int, float)) and not isinstance(retry, bool):
            values["retry_after"] = str(retry)
        return cls(**values)


class FaultQueue:
    """Pending faults in injection order with their remaining counts.

    Not thread-safe by itself: the simulator calls it under its own lock, the one
    that also guards the task table and the request log.
    """

    def __init__(self) -> None:
        self._items: list[list[Any]] = []  # [Fault, remaining uses]

    def push(self, fault: Fault) -> None:
        """Queue ``fault`` behind the ones already pending."""
        self._items.append([fault, fault.count])

    def clear(self) -> None:
        """Forget every pending fault."""
        self._items.clear()

    def take(self, path: str) -> Fault | None:
        """Use up one application of the oldest fault matching ``path``, if any."""
        for index, item in enumerate(self._items):
            fault: Fault = item[0]
            if fault.matches(path):
                item[1] -= 1
                if item[1] <= 0:
                    del self._items[index]
                return fault
        return None

    def pending(self) -> list[tuple[Fault, int]]:
        """Return (fault, remaining uses) pairs, oldest first."""
        return [(item[0], item[1]) for item in self._items]

    def __len__(self) -> int:
        return len(self._items)


def _huge_chunks() -> Iterator[bytes]:
    """Yield HUGE_SIZE bytes that start like a feed answer and never become valid JSON."""
    head = b'{"code":"success","message":"","data":{"task_id":"x","junk":['
    unit = b'{"a":"' + b"\xef\xbf\xbd" * 10 + b'","b":[1,2,3,{"c":null}]},'  # 53 bytes of noise
    chunk = (unit * (65536 // len(unit) + 1))[:65536]
    yield head
    remaining = HUGE_SIZE - len(head)
    while remaining > 0:
        piece = chunk[:remaining]
        remaining -= len(piece)
        yield piece


def fault_response(fault: Fault, authorization: str | None, port: int) -> Response:
    """Build the canned answer of a response-level fault.

    Parameters
    ----------
    fault : Fault
        A fault whose kind is not "slow", "drop" or "reset".
    authorization : str or None
        The request's Authorization header, echoed verbatim by "echo_auth".
    port : int
        The simulator's port, for the "redirect" Location.
    """
    kind = fault.kind
    if kind == "rate_limit":
        headers = [("Retry-After", fault.retry_after)] if fault.retry_after is not None else []
        return gateway_error(fault.status or 429, "当前分组上游负载已饱和，请稍后再试",
                             headers=headers)
    if kind == "server_error_json":
        return gateway_error(fault.status or 503, "no available channel for group default and model runway",
                             code="model_not_found")
    if kind == "server_error_html":
        return nginx_error_html(fault.status or 502)
    if kind == "malformed":
        return Response(fault.status or 200, b'{"code":"success","data":{"task_id":', JSON_TYPE)
    if kind == "wrong_type":
        return Response(fault.status or 200, fault.body if fault.body is not None else b"[1, 2, 3]", JSON_TYPE)
    if kind == "huge":
        return Response(fault.status or 200, content_type=JSON_TYPE, stream=_huge_chunks, length=HUGE_SIZE)
    if kind == "empty":
        return Response(fault.status or 200, b"", JSON_TYPE)
    if kind == "html200":
        response = login_page_html()
        response.status = fault.status or 200
        return response
    if kind == "echo_auth":
        # A hostile or buggy server reflecting the credential: clients must redact it.
        payload = {"error": {"code": "", "message": f"invalid token: {authorization or ''}",
                             "type": "comet_api_error"}}
        return json_response(fault.status or 401, payload)
    if kind == "redirect":
        return Response(fault.status or 302, b"", None,
                        [("Location", f"http://127.0.0.2:{port}/runway/feed")])
    if kind == "custom":
        return Response(fault.status or 200, fault.body or b"", JSON_TYPE)
    raise ValueError(f"fault kind {kind!r} is handled by the connection, not a response")

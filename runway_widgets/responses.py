"""Turn one HTTP answer into a snapshot, a task id, or a typed error.

Pure: the client hands over status, headers and body bytes; nothing here does I/O or
reads a clock (``now`` is passed in for HTTP-date Retry-After values).  Errors are decided
on the body's ``code`` first (``task_not_exist`` arrives as HTTP 400 or as 200), then on
the HTTP status.
"""

from __future__ import annotations

import email.utils
import json
import re
from typing import Any, Mapping

from .errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    TaskNotFoundError,
)
from .snapshot import TaskSnapshot, parse_task

__all__ = ["Answer", "interpret_task", "interpret_create", "parse_retry_after", "server_message"]


class Answer:
    """What came back over the wire, already size-capped and scrubbed of the key."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body

    def __repr__(self) -> str:
        return f"<Answer HTTP {self.status}, {len(self.body)} bytes>"


_NOT_JSON = object()
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _decode(body: bytes) -> Any:
    """JSON value of the body, or the sentinel ``_NOT_JSON``."""
    if not body.strip():
        return _NOT_JSON
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _NOT_JSON


def _clean(text: str, limit: int = 200) -> str:
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe_body(answer: Answer, value: Any) -> str:
    """A few words naming what the body was, for error sentences."""
    if value is _NOT_JSON:
        if not answer.body.strip():
            return "an empty body"
        if b"<html" in answer.body[:2000].lower() or "html" in answer.headers.get("content-type", ""):
            return "an HTML page"
        return "a body that is not JSON"
    kind = {list: "a JSON list", str: "a JSON string", bool: "a JSON boolean", type(None): "JSON null"}
    return kind.get(type(value), "a JSON number" if isinstance(value, (int, float)) else "a JSON object")


def server_message(answer: Answer, value: Any = None) -> str:
    """The server's own words about an error, cleaned and bounded ('' if none)."""
    if value is None:
        value = _decode(answer.body)
    if isinstance(value, Mapping):
        error = value.get("error")
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return _clean(error["message"])
        if isinstance(error, str):
            return _clean(error)
        for key in ("message", "msg", "code"):
            if isinstance(value.get(key), str) and value[key].strip():
                return _clean(value[key])
    if value is _NOT_JSON:
        match = _TITLE.search(answer.body[:20000])
        if match:
            return _clean(match.group(1).decode("utf-8", "replace"))
    return ""


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Retry-After as seconds from ``now``: delta-seconds or an HTTP date; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _is_not_exist(value: Any) -> bool:
    return isinstance(value, Mapping) and "task_not_exist" in (str(value.get("code")), str(value.get("message")))


def _error_for(answer: Answer, value: Any, now: float) -> ApiError:
    """The typed error for a non-2xx answer (or a 2xx that is an error envelope)."""
    status = answer.status
    said = server_message(answer, value)
    detail = f": {said}" if said else ""
    if 300 <= status < 400:
        where = answer.headers.get("location", "elsewhere")
        return BadRequestError(
            f"The server answered HTTP {status}, a redirect to {_clean(where, 120)}; check the base URL.", status
        )
    if status in (401, 403):
        verb = "rejected the API key" if status == 401 else "refused access"
        return AuthenticationError(f"The server {verb} (HTTP {status}){detail}; check COMETAPI_KEY.", status)
    if status == 429:
        retry = parse_retry_after(answer.headers.get("retry-after"), now)
        return RateLimitedError(f"The gateway is rate limiting requests (HTTP 429){detail}.", status, retry)
    if status >= 500:
        return ServerError(f"The server had an error (HTTP {status}, {_describe_body(answer, value)}){detail}.", status)
    if status == 404 and value is _NOT_JSON:
        return BadRequestError(f"The server has no such endpoint (HTTP 404, {_describe_body(answer, value)}); check the base URL.", status)
    return BadRequestError(f"The server refused the request (HTTP {status}){detail}.", status)


def interpret_task(answer: Answer, task_id: str, now: float) -> TaskSnapshot:
    """Interpret a feed or task-object answer.

    Raises
    ------
    TaskNotFoundError, AuthenticationError, RateLimitedError, ServerError,
    BadRequestError, ProtocolError
    """
    value = _decode(answer.body)
    if _is_not_exist(value) or (answer.status == 404 and isinstance(value, Mapping)):
        # Runway's own API answers an unknown (or not yet visible) id with a JSON 404.
        raise TaskNotFoundError(f"Task {task_id} does not exist (yet) for this API key.", answer.status)
    if not 200 <= answer.status < 300:
        raise _error_for(answer, value, now)
    if value is _NOT_JSON or not isinstance(value, Mapping):
        raise ProtocolError(f"The server answered with {_describe_body(answer, value)} instead of a task.", answer.status)
    snapshot = parse_task(value, task_id)
    if snapshot is None:
        said = server_message(answer, value)
        raise ProtocolError(
            "The server's answer holds no task" + (f" ({said})." if said else "."), answer.status
        )
    return snapshot


def interpret_create(answer: Answer, now: float) -> str:
    """Interpret a create answer: a task id iff HTTP 2xx and ``data.task_id`` (CometAPI's
    wrapper) or ``id`` (Runway's format, also CometAPI's ``/runwayml/v1/`` mirror) is a
    non-empty string."""
    value = _decode(answer.body)
    if isinstance(value, Mapping) and str(value.get("code")) == "callback_url_empty":
        raise BadRequestError("CometAPI requires a callback_url for create calls; pass callback_url=...", answer.status)
    if not 200 <= answer.status < 300:
        raise _error_for(answer, value, now)
    data = value.get("data") if isinstance(value, Mapping) else None
    task_id = data.get("task_id") if isinstance(data, Mapping) else None
    if not (isinstance(task_id, str) and task_id.strip()) and isinstance(value, Mapping):
        task_id = value.get("id")
    if isinstance(task_id, str) and task_id.strip():
        return task_id.strip()
    said = server_message(answer, value) if isinstance(value, Mapping) else ""
    raise ProtocolError(
        f"The create call answered with {_describe_body(answer, value)} but no task id"
        + (f" ({said})." if said else "."),
        answer.status,
    )

"""The task model: every feed form in docs/protocol.md normalised into one immutable snapshot.

Pure: no I/O, no clock, no threads.  This module is the only place that looks at raw
status strings, raw progress values and the places a video URL may hide; everything else
asks a :class:`TaskSnapshot`.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

__all__ = [
    "TaskState",
    "TaskSnapshot",
    "parse_task",
    "state_from_status",
    "is_terminal",
    "parse_progress",
    "safe_url",
]


class TaskState(str, enum.Enum):
    """What a task is doing, whatever words the server used for it."""

    WAITING = "waiting"  # NOT_START, SUBMITTED, QUEUED, PENDING, THROTTLED
    RUNNING = "running"  # IN_PROGRESS, RUNNING
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # a word we do not know: non-terminal, bounded by the watch timeout

    @property
    def is_terminal(self) -> bool:
        """True for the three states a task never leaves."""
        return self in _TERMINAL


_TERMINAL = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED})

# new-api statuses, Runway's own, and the reseller digits "0".."3" seen in inner payloads.
# THROTTLED is Runway waiting for a concurrency slot: queued, not failed.
_STATUS_WORDS: dict[str, TaskState] = {
    "NOT_START": TaskState.WAITING,
    "SUBMITTED": TaskState.WAITING,
    "QUEUED": TaskState.WAITING,
    "PENDING": TaskState.WAITING,
    "THROTTLED": TaskState.WAITING,
    "0": TaskState.WAITING,
    "IN_PROGRESS": TaskState.RUNNING,
    "RUNNING": TaskState.RUNNING,
    "PROCESSING": TaskState.RUNNING,
    "1": TaskState.RUNNING,
    "SUCCESS": TaskState.SUCCEEDED,
    "SUCCEEDED": TaskState.SUCCEEDED,
    "2": TaskState.SUCCEEDED,
    "FAILURE": TaskState.FAILED,
    "FAILED": TaskState.FAILED,
    "3": TaskState.FAILED,
    "CANCELLED": TaskState.CANCELLED,
    "CANCELED": TaskState.CANCELLED,
}


def state_from_status(status: object) -> TaskState:
    """Map a raw status value to a :class:`TaskState`; anything unrecognised is UNKNOWN."""
    if isinstance(status, bool) or not isinstance(status, (str, int)):
        return TaskState.UNKNOWN
    return _STATUS_WORDS.get(str(status).strip().upper(), TaskState.UNKNOWN)


def is_terminal(status: object) -> bool:
    """The one answer to "has this task finished?" for a raw status value."""
    return state_from_status(status).is_terminal


_PERCENT = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*%\s*$")


def parse_progress(value: object) -> float | None:
    """Turn any progress value into a fraction in [0, 1], or None when it says nothing.

    ``"45%"`` and ``45`` are percentages; ``0.45`` (a float at most 1) and ``"0.45"`` are
    fractions, as in Runway's own API.  An int is always a percentage so that ``1`` means 1 %.
    Garbage (``"abc"``, NaN, lists, booleans) gives None; out-of-range values are clamped.
    """
    if value is None or isinstance(value, bool):
        return None
    number: float
    if isinstance(value, int):
        number = value / 100.0
    elif isinstance(value, float):
        number = value if value <= 1.0 else value / 100.0
    elif isinstance(value, str):
        text = value.strip()
        match = _PERCENT.match(text)
        try:
            if match:
                number = float(match.group(1)) / 100.0
            else:
                number = float(text)
                number = number if number <= 1.0 and "." in text else number / 100.0
        except ValueError:
            return None
    else:
        return None
    if math.isnan(number):
        return None
    return min(1.0, max(0.0, number))


# Characters that would let a URL break out of an HTML attribute or smuggle whitespace.
_URL_FORBIDDEN = re.compile(r"[\s\"'<>`\\\x00-\x1f\x7f]")


def safe_url(value: object) -> str | None:
    """Return ``value`` if it is a plain absolute http(s) URL safe to render, else None."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    lowered = url.lower()
    if not (lowered.startswith("https://") or lowered.startswith("http://")):
        return None
    if len(url) > 8192 or _URL_FORBIDDEN.search(url) or len(url.split("://", 1)[1]) == 0:
        return None
    return url


def _text(value: object, limit: int = 2000) -> str:
    """Server text as a bounded string ('' for None); non-strings are shown, not trusted."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _seconds(value: object) -> float | None:
    """Unix seconds, with 0 / garbage meaning "not set yet"."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    # Some forks send milliseconds; anything past the year 5000 in seconds is surely ms.
    return number / 1000.0 if number > 1e11 else number


def _dig(obj: object, *path: object) -> object:
    """Follow keys and list indices, returning None at the first missing step."""
    for step in path:
        if isinstance(step, int) and isinstance(obj, list) and -len(obj) <= step < len(obj):
            obj = obj[step]
        elif isinstance(step, str) and isinstance(obj, Mapping):
            obj = obj.get(step)
        else:
            return None
    return obj


@dataclass(frozen=True)
class TaskSnapshot:
    """One observation of a task, normalised.

    Attributes
    ----------
    task_id, state, status:
        The id, the normalised state and the raw status word as the server sent it.
    progress:
        Fraction in [0, 1], or None when the server said nothing useful.  Terminal
        successes always read 1.0.
    action:
        Free text such as ``IMAGE_TO_VIDEO``; displayed, never branched on.
    result_url:
        The video URL when the task succeeded and the URL is plain http(s).
    rejected_url:
        True when the server offered a result URL that is unsafe to render or fetch.
    fail_reason, fail_code:
        Why it failed (server text; escape it before showing it as HTML).
    submit_time, start_time, finish_time:
        Unix seconds, None until set.
    raw:
        The payload as received, read-only, for debugging (excluded from repr).
    """

    task_id: str
    state: TaskState
    status: str
    progress: float | None = None
    action: str = ""
    result_url: str | None = None
    rejected_url: bool = False
    fail_reason: str = ""
    fail_code: str = ""
    submit_time: float | None = None
    start_time: float | None = None
    finish_time: float | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_terminal(self) -> bool:
        """True once the task can no longer change."""
        return self.state.is_terminal

    @property
    def succeeded(self) -> bool:
        """True when the task finished successfully."""
        return self.state is TaskState.SUCCEEDED

    @property
    def percent(self) -> int | None:
        """Progress as a whole percentage, or None."""
        return None if self.progress is None else int(round(self.progress * 100))

    def as_dict(self) -> dict[str, Any]:
        """The JSON-friendly summary printed by ``runway-watch --json``."""
        return {
            "task_id": self.task_id,
            "status": self.status,
            "state": self.state.value,
            "progress": self.progress,
            "action": self.action,
            "result_url": self.result_url,
            "fail_reason": self.fail_reason,
            "fail_code": self.fail_code,
        }


def _task_object(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Find the task inside the success envelope, or accept the bare task object."""
    inner = payload.get("data")
    if "code" in payload and isinstance(inner, Mapping):
        return inner
    if any(key in payload for key in ("status", "task_id", "id")):
        return payload
    return None


def _result_candidates(task: Mapping[str, Any]) -> list[object]:
    """Every place docs/protocol.md lists for the video URL, in order of preference."""
    fail_reason = task.get("fail_reason")
    inner = task.get("data")
    return [
        task.get("result_url"),
        fail_reason if isinstance(fail_reason, str) and fail_reason.strip().lower().startswith("http") else None,
        _dig(task, "output", 0),  # Runway's own task object, served bare
        _dig(inner, "output", 0),
        _dig(inner, "video_url"),
        _dig(inner, "task_result", "videos", 0, "url"),
        task.get("video_url"),
    ]


def parse_task(payload: object, task_id: str = "") -> TaskSnapshot | None:
    """Normalise a feed or task payload into a :class:`TaskSnapshot`.

    Parameters
    ----------
    payload:
        Decoded JSON: the ``{"code": "success", "data": {...}}`` envelope, the bare task
        object, or Runway's own task object.
    task_id:
        The id that was asked for; used when the payload does not repeat it.

    Returns
    -------
    TaskSnapshot or None
        None when the payload holds no task at all (the caller decides what error that is).
        Never raises on odd field values.
    """
    if not isinstance(payload, Mapping):
        return None
    task = _task_object(payload)
    if task is None:
        return None
    raw_inner = task.get("data")
    inner: Mapping[str, Any] = raw_inner if isinstance(raw_inner, Mapping) else {}
    raw_status = task.get("status")
    if raw_status in (None, ""):
        raw_status = inner.get("status")
    state = state_from_status(raw_status)
    status_text = _text(raw_status, 64) if raw_status not in (None, "") else "UNKNOWN"

    progress = parse_progress(task.get("progress"))
    if progress is None:
        progress = parse_progress(inner.get("progress"))
    if state.is_terminal:
        progress = 1.0 if state is TaskState.SUCCEEDED else progress

    result_url: str | None = None
    rejected = False
    if state is TaskState.SUCCEEDED:
        for candidate in _result_candidates(task):
            if candidate in (None, ""):
                continue
            result_url = safe_url(candidate)
            rejected = result_url is None
            break

    fail_reason = ""
    fail_code = ""
    if state in (TaskState.FAILED, TaskState.CANCELLED):
        fail_reason = _text(task.get("fail_reason")) or _text(inner.get("failure")) or _text(task.get("failure"))
        fail_code = _text(inner.get("failureCode") or task.get("failureCode"), 200)

    return TaskSnapshot(
        task_id=_text(task.get("task_id") or task.get("id") or task_id, 200),
        state=state,
        status=status_text,
        progress=progress,
        action=_text(task.get("action"), 200),
        result_url=result_url,
        rejected_url=rejected,
        fail_reason=fail_reason,
        fail_code=fail_code,
        submit_time=_seconds(task.get("submit_time")),
        start_time=_seconds(task.get("start_time")),
        finish_time=_seconds(task.get("finish_time")),
        raw=MappingProxyType(dict(payload)),
    )

"""What the task journal says about one task, read back: :class:`TaskRecord`, and URL expiry.

Pure: no I/O, no clock unless one is passed in.  The journal stores plain JSON (see
``journal.py``); this module turns a merged record into a typed, read-only value and answers
"is this task unfinished?" and "has its result URL expired?".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from .expiry import parse_time, url_expiry
from .snapshot import TaskState

__all__ = ["TaskRecord", "url_expiry", "iso_time", "parse_time", "SCHEMA"]

SCHEMA = 1

#: Tasks created but never watched, and watches that ended while the task may still be running.
_UNFINISHED_OUTCOMES = frozenset({"created", "watching", "stopped", "timed out", "gave up"})


def iso_time(seconds: float) -> str:
    """Unix seconds as ISO 8601 UTC with milliseconds: ``2026-12-03T09:33:42.123Z``."""
    stamp = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class TaskRecord:
    """One task as the journal last knew it (across every kernel and CLI that touched it).

    Times are unix seconds (the file holds them as ISO 8601 UTC).  ``outcome`` is how the last
    watch ended (``"watching"`` while one runs, or ran until its process died); ``status``
    the server's last word; ``save`` the destination that watch was asked to save to.
    """

    task_id: str
    base_url: str
    outcome: str = ""
    status: str | None = None
    state: str | None = None
    progress: int | None = None
    origin: str | None = None
    pid: int | None = None
    hostname: str | None = None
    proc_start: str | None = None
    created_at: float | None = None
    watched_at: float | None = None
    updated_at: float | None = None
    ended_at: float | None = None
    kind: str | None = None
    prompt: str | None = None
    parameters: Mapping[str, Any] | None = None
    result_url: str | None = None
    result_expires_at: float | None = None
    saved_path: str | None = None
    save: str | None = None
    fail_reason: str | None = None
    fail_code: str | None = None
    error: str | None = None
    feed: str | None = None
    demo: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskRecord:
        """Build from a merged journal record; wrong-typed fields become None, never an error."""

        def text(name: str) -> str | None:
            value = data.get(name)
            return value if isinstance(value, str) else None

        progress = data.get("progress")
        pid = data.get("pid")
        params = data.get("parameters")
        return cls(
            task_id=str(data["task_id"]), base_url=str(data["base_url"]), outcome=text("outcome") or "",
            status=text("status"), state=text("state"),
            progress=progress if isinstance(progress, int) and not isinstance(progress, bool) else None,
            origin=text("origin"), pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            hostname=text("hostname"), proc_start=text("proc_start"),
            created_at=parse_time(data.get("created_at")), watched_at=parse_time(data.get("watched_at")),
            updated_at=parse_time(data.get("updated_at")), ended_at=parse_time(data.get("ended_at")),
            kind=text("kind"), prompt=text("prompt"), parameters=params if isinstance(params, dict) else None,
            result_url=text("result_url"), result_expires_at=parse_time(data.get("result_expires_at")),
            saved_path=text("saved_path"), save=text("save"), fail_reason=text("fail_reason"),
            fail_code=text("fail_code"), error=text("error"), feed=text("feed"), demo=data.get("demo") is True,
            raw=dict(data),
        )

    @property
    def finished(self) -> bool:
        """The task itself has ended on the server (success, failure, cancelled)."""
        try:
            return TaskState(self.state).is_terminal
        except ValueError:
            return False

    @property
    def unfinished(self) -> bool:
        """Worth resuming: the task may still run, or it succeeded but the save it asked for never happened."""
        if self.finished:
            return (self.outcome == "watching" and self.state == TaskState.SUCCEEDED.value
                    and self.save is not None and self.saved_path is None)
        return self.outcome in _UNFINISHED_OUTCOMES

    def url_state(self, now: float | None = None) -> str:
        """``"fresh"``, ``"expired"``, ``"unknown"`` (a URL that does not say), or ``"none"``."""
        if not self.result_url:
            return "none"
        if self.result_expires_at is None:
            return "unknown"
        return "expired" if (time.time() if now is None else now) >= self.result_expires_at else "fresh"

    @property
    def when(self) -> float:
        """The record's last change (for newest-first ordering)."""
        return self.updated_at or self.watched_at or self.created_at or 0.0

    def as_dict(self) -> dict[str, Any]:
        """The merged JSON record, as stored."""
        return dict(self.raw)

    def __repr__(self) -> str:
        pct = f" {self.progress}%" if self.progress is not None and not self.finished else ""
        return f"<TaskRecord {self.task_id} {self.outcome or '?'}: {self.status or 'not seen'}{pct}>"

"""The task history as a table: HTML for a notebook, plain lines for a terminal or a saved file.

Server text is HTML-escaped, result URLs are linked only when they are plain http(s) URLs,
and each says whether it is still fresh, expired, or does not say.
"""

from __future__ import annotations

import html
import time
from datetime import datetime
from typing import Iterable

from ..records import TaskRecord
from ..snapshot import safe_url
from .text import format_duration

__all__ = ["history_bundle", "history_lines", "url_note"]

_LEFT = ' style="text-align:left"'


def url_note(record: TaskRecord, now: float) -> str:
    """``fresh, expires in 23h05m`` / ``expired 2h00m ago`` / ``expiry unknown`` / ``""``."""
    state = record.url_state(now)
    if state == "fresh":
        return f"fresh, expires in {format_duration(record.result_expires_at - now)}"  # type: ignore[operator]
    if state == "expired":
        return f"expired {format_duration(now - record.result_expires_at)} ago"  # type: ignore[operator]
    return "expiry unknown" if state == "unknown" else ""


def _when(record: TaskRecord) -> str:
    return datetime.fromtimestamp(record.when).strftime("%Y-%m-%d %H:%M") if record.when else "?"


def _status(record: TaskRecord) -> str:
    status = record.status or "not seen"
    if record.progress is not None and not record.finished:
        status += f" {record.progress}%"
    if record.fail_reason:
        status += f": {record.fail_reason}"
    if record.fail_code:
        status += f" [{record.fail_code}]"
    if record.error and record.outcome not in ("succeeded", "failed", "cancelled"):
        status += f" ({record.error})"
    return status


def history_lines(records: Iterable[TaskRecord], now: float | None = None) -> list[str]:
    """One plain line per task: id, when, outcome, status, result (and its freshness), saved path."""
    now = time.time() if now is None else now
    lines = []
    for record in records:
        line = f"{record.task_id}  {_when(record)}  {record.outcome or '?'}  {_status(record)}"
        if record.result_url:
            line += f"  {record.result_url} ({url_note(record, now)})"
        if record.saved_path:
            line += f"  saved to {record.saved_path}"
        if record.origin:
            line += f"  [{record.origin}]"
        lines.append(line)
    return lines


def history_bundle(records: list[TaskRecord], now: float | None = None) -> dict[str, str]:
    """A ``text/html`` table and its ``text/plain`` twin, for ``display(..., raw=True)``."""
    now = time.time() if now is None else now
    head = "".join(f"<th{_LEFT}>{name}</th>" for name in ("task", "when", "from", "watch", "status", "result", "saved"))
    rows = []
    for record in records:
        url = safe_url(record.result_url) if record.result_url else None
        note = html.escape(url_note(record, now))
        result = (f'<a href="{html.escape(url)}" target="_blank" rel="noopener noreferrer">video</a> ({note})'
                  if url else "")
        cells = (f"<code>{html.escape(record.task_id)}</code>", html.escape(_when(record)),
                 html.escape(record.origin or ""), html.escape(record.outcome or "?"),
                 html.escape(_status(record)), result, html.escape(record.saved_path or ""))
        rows.append("<tr>" + "".join(f"<td{_LEFT}>{cell}</td>" for cell in cells) + "</tr>")
    table = f"<table><tr>{head}</tr>{''.join(rows)}</table>"
    return {"text/html": table, "text/plain": "\n".join(history_lines(records, now))}

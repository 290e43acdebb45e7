"""Words shared by every view: short ids, durations, and the one-line status phrase."""

from __future__ import annotations

from ..updates import Outcome, WatchUpdate, short_id

__all__ = ["short_id", "format_duration", "status_phrase", "summary_line"]


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``: compact, for status lines."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


_ENDINGS = {
    Outcome.TIMED_OUT: "timed out",
    Outcome.NOT_FOUND: "task not found",
    Outcome.GAVE_UP: "gave up",
    Outcome.STOPPED: "stopped watching",
    Outcome.ERROR: "error",
}


def status_phrase(update: WatchUpdate) -> str:
    """What the task is doing, in a few words (server text is *not* escaped here)."""
    snap = update.snapshot
    if update.outcome is Outcome.SUCCEEDED:
        return f"{snap.status if snap else 'SUCCESS'}: done in {format_duration(update.elapsed)}"
    if update.outcome in (Outcome.FAILED, Outcome.CANCELLED):
        status = snap.status if snap else update.outcome.value.upper()
        reason = f": {snap.fail_reason}" if snap and snap.fail_reason else ""
        code = f" [{snap.fail_code}]" if snap and snap.fail_code else ""
        return f"{status}{reason}{code}"
    if update.outcome is not Outcome.WATCHING:
        detail = str(update.error) if update.error is not None else update.note
        return f"{_ENDINGS[update.outcome]}: {detail}" if detail else _ENDINGS[update.outcome]
    if snap is None:
        # Before the first answer, or while the only answers were errors (a 429, a 502, no
        # connection: then a retry is pending), nothing says the task is missing yet.
        return "waiting for the task to appear" if update.polls and update.retry_in is None else "connecting"
    return snap.status


def summary_line(update: WatchUpdate) -> str:
    """One plain-text line: the ``text/plain`` fallback of a finished card, and ``%runway_tasks``."""
    snap = update.snapshot
    pct = f" {snap.percent}%" if snap and snap.percent is not None and update.outcome is Outcome.WATCHING else ""
    head = f"{update.task_id}: {status_phrase(update)}{pct}"
    if update.outcome is Outcome.SUCCEEDED and snap and snap.result_url:
        head += f" -> {update.saved_path or snap.result_url}"
    return head

"""The terminal view: one progress line per task.

On a TTY the lines are redrawn in place; otherwise a line is printed only when what it
says changes (status, whole percent, note), so logs stay short.  Server text is stripped
of control characters first: a failure reason must not be able to move the cursor or
recolour the terminal.
"""

from __future__ import annotations

import re
import sys
import threading
from typing import TextIO

from ..updates import Outcome, WatchUpdate
from .text import format_duration, short_id, status_phrase

__all__ = ["TerminalBoard", "plain"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BAR = 24


def plain(text: str) -> str:
    """Server text made safe for a terminal: no escapes, no newlines."""
    return _CONTROL.sub(" ", text)


class TerminalBoard:
    """Renders :class:`WatchUpdate` s for several tasks to a text stream; thread-safe.

    Parameters
    ----------
    task_ids:
        The rows, in display order.
    stream:
        Where to write (default: stdout).
    live:
        Redraw in place (default: when the stream is a TTY).
    """

    def __init__(self, task_ids: list[str], stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self._order = list(task_ids)
        self._rows: dict[str, str] = {t: f"{short_id(t)}  waiting for the first answer" for t in task_ids}
        self._printed: dict[str, str] = {}
        self._drawn = 0
        self._lock = threading.Lock()
        encoding = getattr(self.stream, "encoding", None) or "ascii"
        try:
            "█░✓✗…".encode(encoding)
            self._glyphs = ("█", "░", "✓", "✗")
        except (UnicodeEncodeError, LookupError):
            self._glyphs = ("#", "-", "+", "x")

    def __call__(self, update: WatchUpdate) -> None:
        """Subscriber entry point: ``watch.on_update(board)``."""
        self.render(update)

    def render(self, update: WatchUpdate) -> None:
        """Show ``update`` on its task's row."""
        line = self._line(update)
        with self._lock:
            self._rows[update.task_id] = line
            if self.live:
                self._redraw()
            elif self._printed.get(update.task_id) != self._key(update):
                self._printed[update.task_id] = self._key(update)
                self.stream.write(line + "\n")
                self.stream.flush()

    @staticmethod
    def _key(update: WatchUpdate) -> str:
        # What counts as a change for non-TTY output: not the ticking clock.
        snap = update.snapshot
        status = snap.status if snap else ""
        percent = update.percent
        return f"{update.outcome.value}|{status}|{percent}|{update.note.split(':')[0]}"

    def _redraw(self) -> None:
        out = []
        if self._drawn:
            out.append(f"\x1b[{self._drawn}F")  # back to the first row we drew
        for task_id in self._order:
            out.append("\x1b[2K" + self._rows[task_id] + "\n")
        self._drawn = len(self._order)
        self.stream.write("".join(out))
        self.stream.flush()

    def _line(self, update: WatchUpdate) -> str:
        snap = update.snapshot
        full, empty, ok, bad = self._glyphs
        fraction = update.progress if update.progress is not None else 0.0
        filled = int(round(fraction * _BAR))
        bar = full * filled + empty * (_BAR - filled)
        percent = f"{update.percent:3d}%" if update.percent is not None else "  -%"
        head = f"{short_id(update.task_id)} [{bar}] {percent}"
        if update.outcome is Outcome.SUCCEEDED:
            where = f" saved to {update.saved_path}" if update.saved_path else ""
            url = snap.result_url if snap and snap.result_url else "(no video URL)"
            tail = f"{ok} {plain(snap.status) if snap else 'SUCCESS'} {format_duration(update.elapsed)}  {url}{where}"
            if update.error is not None:  # only saving can fail after a success
                tail += f"  ({bad} {plain(update.note or str(update.error))})"
            return f"{head} {tail}"
        if update.done:
            return f"{head} {bad} {plain(status_phrase(update))}"
        parts = [plain(status_phrase(update)), format_duration(update.elapsed)]
        if update.eta is not None:
            parts.append(f"ETA {format_duration(update.eta)}")
        if update.note and update.note != parts[0]:
            parts.append(plain(update.note))
        return f"{head} " + "  ".join(parts)

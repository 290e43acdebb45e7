"""The task journal: a durable file, shared by every kernel and CLI of a user, that keeps tasks.

One JSON object per line in ``tasks.jsonl`` inside :func:`journal_home` (``$RUNWAY_WIDGETS_HOME``,
else the platform's per-user data folder).  A line is a task's state as one process knew it at
one moment; a reader merges a task's lines in file order (later keys win), so a create call, a
watch in a kernel and a resumed watch in a CLI each add what they know.  JSON lines rather than
SQLite: ``tail``, ``grep`` and ``jq`` read it, a torn or hand-edited line costs that line only,
and appending one line under a lock is all the concurrency it needs.

Concurrency: every write holds an exclusive lock on ``tasks.lock`` (``fcntl.flock`` on POSIX,
``msvcrt.locking`` on Windows, an ``O_EXCL`` lock file elsewhere), opens the journal anew and
appends the whole line in one ``os.write`` on an ``O_APPEND`` descriptor.  The lock is on a
separate file because compaction replaces the journal by rename: a writer that had opened the
old file before the rename would append to a file nobody reads.

Bounded: when the file passes ``max_bytes`` it is rewritten (temporary file, fsync, rename)
with the merged record of the newest ``max_tasks`` tasks, trimmed further to half of
``max_bytes``; so the file never exceeds ``max_bytes`` plus one record.

Failure is never fatal: any ``OSError`` (read-only home, full disk, a lock that never comes)
is logged once per journal as one warning and the caller's work goes on.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Iterator

from .atomicfile import replace_atomically
from .filelock import acquire

__all__ = ["journal_home", "journal_path", "Journal", "get_journal", "HOME_ENV"]

log = logging.getLogger("runway_widgets")

HOME_ENV = "RUNWAY_WIDGETS_HOME"
FILENAME = "tasks.jsonl"
LOCKNAME = "tasks.lock"
MAX_BYTES = 2 * 1024 * 1024
MAX_TASKS = 1000
LOCK_TIMEOUT = 5.0  # seconds; a write that cannot get the lock is dropped with the warning

_lock = threading.Lock()
_journals: dict[str, Journal] = {}


def journal_home() -> Path:
    """The folder of the journal: ``$RUNWAY_WIDGETS_HOME``, else the per-user data folder.

    Linux and other Unixes: ``$XDG_DATA_HOME/runway_widgets`` (default ``~/.local/share``);
    macOS: ``~/Library/Application Support/runway_widgets``; Windows:
    ``%LOCALAPPDATA%\\runway_widgets``.
    """
    explicit = os.environ.get(HOME_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "runway_widgets"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "runway_widgets"
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    # The XDG spec: a relative value is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "runway_widgets"


def journal_path() -> Path:
    """The journal file now in force (the environment is read on every call)."""
    return journal_home() / FILENAME


def get_journal() -> Journal:
    """The process's :class:`Journal` for :func:`journal_path` (one per path, so one warning each)."""
    path = journal_path()
    with _lock:
        journal = _journals.get(str(path))
        if journal is None:
            journal = _journals[str(path)] = Journal(path)
        return journal


class Journal:
    """Appends records to, and reads merged task records from, one journal file."""

    def __init__(self, path: str | os.PathLike[str], max_bytes: int = MAX_BYTES, max_tasks: int = MAX_TASKS,
                 lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(LOCKNAME)
        self.max_bytes = int(max_bytes)
        self.max_tasks = int(max_tasks)
        self.lock_timeout = float(lock_timeout)
        self._thread_lock = threading.Lock()  # writers of this process queue here, not on the file lock
        self._warn_lock = threading.Lock()  # apart: a warning may be due while _thread_lock is held
        self._warned_write = False
        self._warned_corrupt = False
        self.compactions = 0

    def __repr__(self) -> str:
        return f"<Journal {self.path}>"

    # -- writing ----------------------------------------------------------------------------

    def append(self, record: dict[str, Any], *, sync: bool = False,
               scrub: Callable[[bytes], bytes] | None = None) -> bool:
        """Append one record (a JSON object with ``task_id`` and ``base_url``); True if written.

        ``scrub`` rewrites the encoded line (the client's key scrubber), ``sync`` fsyncs it.
        Never raises for an I/O failure: it warns once and returns False.
        """
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
        if scrub is not None:
            line = scrub(line)
        line += b"\n"
        try:
            with self._locked(exclusive=True):
                size = self._write_line(line, sync)
                if size > self.max_bytes:
                    self._compact_locked()
            return True
        except OSError as exc:
            self._warn_write(exc)
            return False

    def _write_line(self, line: bytes, sync: bool) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
        try:
            start = os.fstat(fd).st_size
            if start and _byte_at(fd, start - 1) != b"\n":
                line = b"\n" + line  # a writer killed mid-line: its fragment stays a line of its own
            view = memoryview(line)
            try:
                while view:  # one write almost always; loop in case the kernel takes less
                    written = os.write(fd, view)
                    view = view[written:]
                if sync:
                    os.fsync(fd)
            except OSError:
                # A full disk mid-line: take the fragment back (we hold the lock, nobody
                # wrote after us), so the next record does not glue onto it.
                try:
                    os.ftruncate(fd, start)
                except OSError:
                    pass
                raise
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    def compact(self) -> bool:
        """Rewrite the file now with one merged record per task (newest ``max_tasks``)."""
        try:
            with self._locked(exclusive=True):
                self._compact_locked()
            return True
        except OSError as exc:
            self._warn_write(exc)
            return False

    def _compact_locked(self) -> None:
        tasks = sorted(merge(self._read_locked()).values(), key=_recency, reverse=True)[: self.max_tasks]
        lines: list[bytes] = []
        budget = self.max_bytes // 2
        for record in tasks:  # newest first, until half the bound is used
            encoded = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
            if budget - len(encoded) - 1 < 0 and lines:
                break
            budget -= len(encoded) + 1
            lines.append(encoded + b"\n")
        lines.reverse()  # file order is oldest first
        replace_atomically(self.path, lines, ".tasks-")
        self.compactions += 1

    def _warn_write(self, exc: OSError) -> None:
        with self._warn_lock:
            if self._warned_write:
                return
            self._warned_write = True
        reason = exc.strerror or type(exc).__name__
        log.warning("runway_widgets: cannot write the task journal %s (%s); watching goes on, but "
                    "these tasks cannot be resumed from it.", self.path, reason)

    # -- reading ----------------------------------------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        """Every whole record in file order; corrupt lines are skipped (one warning per journal)."""
        try:
            with self._locked(exclusive=False):
                return self._read_locked()
        except FileNotFoundError:
            return []
        except OSError:
            # No lock to be had (a read-only home without a lock file): a torn read costs
            # at most a line, which is skipped like any corrupt one.
            try:
                return self._read_locked()
            except OSError:
                return []

    def tasks(self) -> dict[tuple[str, str], dict[str, Any]]:
        """One merged record per ``(base_url, task_id)``, oldest first."""
        return merge(self.records())

    def _read_locked(self) -> list[dict[str, Any]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        records: list[dict[str, Any]] = []
        corrupt: list[int] = []
        lines = data.split(b"\n")
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            if number == len(lines):  # no newline after it: a torn last write
                corrupt.append(number)
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                corrupt.append(number)
                continue
            if not (isinstance(record, dict) and isinstance(record.get("task_id"), str)
                    and isinstance(record.get("base_url"), str)):
                corrupt.append(number)
                continue
            records.append(record)
        if corrupt:
            self._warn_corrupt(corrupt)
        return records

    def _warn_corrupt(self, lines: list[int]) -> None:
        with self._warn_lock:
            if self._warned_corrupt:
                return
            self._warned_corrupt = True
        log.warning("runway_widgets: skipped %d corrupt record%s in the task journal %s (line%s %s).",
                    len(lines), "" if len(lines) == 1 else "s", self.path, "" if len(lines) == 1 else "s",
                    ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else ""))

    # -- locking ----------------------------------------------------------------------------

    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        """The journal's lock, waited for at most ``lock_timeout`` seconds (then OSError)."""
        if exclusive:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._thread_lock if exclusive else nullcontext():
            flags = os.O_RDWR | os.O_CREAT if exclusive else os.O_RDONLY
            try:
                fd = os.open(self.lock_path, flags, 0o600)
            except FileNotFoundError:
                if not exclusive and not self.path.exists():
                    raise
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                release = acquire(fd, exclusive, self.lock_path, self.lock_timeout)
                try:
                    yield
                finally:
                    release()
            finally:
                os.close(fd)


def _byte_at(fd: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, 1, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # Windows; O_APPEND still writes at the end
    return os.read(fd, 1)


def merge(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Fold records into one per ``(base_url, task_id)``: later keys win, first-seen order kept."""
    tasks: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        key = (record["base_url"], record["task_id"])
        if key in tasks:
            tasks[key].update(record)
        else:
            tasks[key] = dict(record)
    return tasks


def _recency(record: dict[str, Any]) -> str:
    value = record.get("updated_at")
    return value if isinstance(value, str) else ""

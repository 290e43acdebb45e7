"""The file of remembered gateway cadences, ``cadence.json`` next to the task journal.

What an entry holds and how it ages is :mod:`.cadence_memory` (pure); this module reads and
writes the file and gives each base URL a :class:`CadenceMemory` that a
:class:`~.gateways.Gateway` starts from and saves through.

Failure is never fatal: any ``OSError`` or a corrupt file is logged once per file as a
warning and the watch goes on with nothing remembered.  Writes are atomic (temporary file,
fsync, rename) under a bounded-wait file lock (:mod:`.filelock`), merge with what other
processes wrote (the newest entry per URL wins) and keep at most :data:`MAX_ENTRIES` URLs.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

from .atomicfile import replace_atomically
from .cadence import MIN_PERIOD, Cadence
from .cadence_memory import Recall, decode, entry_for, finite, memory_key, signature
from .filelock import acquire
from .journal import journal_home

__all__ = ["CadenceMemory", "memory_path", "read_entries", "write_entry", "at_exit",
           "FILENAME", "MAX_ENTRIES", "SAVE_EVERY"]

log = logging.getLogger("runway_widgets")

FILENAME = "cadence.json"
LOCKNAME = "cadence.lock"  # apart from the file: a rename would swap a locked file away under a waiter
VERSION = 1
MAX_ENTRIES = 32  # base URLs kept; the oldest go first
SAVE_EVERY = 30.0  # s: a cadence that only sharpens is written at most this often
LOCK_TIMEOUT = 0.5  # s: a poll never waits longer than this for the file
_PERIOD_CHANGE = 0.01  # a period this much different is a new verdict, saved at once (not a refinement)


def memory_path() -> Path:
    """``cadence.json`` next to the task journal (the environment is read on every call)."""
    return journal_home() / FILENAME


_warn_lock = threading.Lock()
_warned: set[str] = set()


def _warn_once(path: Path, message: str) -> None:
    with _warn_lock:
        if str(path) in _warned:
            return
        _warned.add(str(path))
    log.warning("runway_widgets: %s (%s); watching goes on, paced without it.", message, path)


def read_entries(path: Path) -> dict[str, Any]:
    """The file's ``gateways`` object; {} when absent, unreadable or corrupt (a warning once)."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        _warn_once(path, f"cannot read the remembered gateway cadences: {exc.strerror or type(exc).__name__}")
        return {}
    except ValueError:  # bad JSON or bad UTF-8 (a torn or hand-edited file)
        _warn_once(path, "the file of remembered gateway cadences is not valid JSON and is ignored")
        return {}
    gateways = data.get("gateways") if isinstance(data, dict) and data.get("version") == VERSION else None
    if not isinstance(gateways, dict):
        _warn_once(path, "the file of remembered gateway cadences is not in the expected form and is ignored")
        return {}
    return gateways


def write_entry(path: Path, key: str, entry: dict[str, Any], lock_timeout: float = LOCK_TIMEOUT) -> None:
    """Merge one entry into the file under its lock: read, keep the newer entry per URL, bound,
    write atomically.  Raises OSError (the caller warns)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path.with_name(LOCKNAME), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        release = acquire(fd, True, path.with_name(LOCKNAME), lock_timeout)
        try:
            entries = {k: v for k, v in read_entries(path).items()
                       if isinstance(k, str) and isinstance(v, dict) and finite(v.get("seen")) is not None}
            old = entries.get(key)
            if old is None or finite(old.get("seen")) <= entry["seen"]:  # type: ignore[operator]
                entries[key] = entry
            newest = sorted(entries.items(), key=lambda kv: kv[1]["seen"], reverse=True)[:MAX_ENTRIES]
            text = json.dumps({"version": VERSION, "gateways": dict(sorted(newest))}, indent=1, allow_nan=False)
            replace_atomically(path, [text.encode("utf-8") + b"\n"], ".cadence-")
        finally:
            release()
    finally:
        os.close(fd)


# -- one base URL's memory, as a Gateway uses it ------------------------------------------------


class CadenceMemory:
    """Loads and (throttled) saves the cadence of one base URL; thread-safe, never raises.

    :meth:`note` is called with every cadence the gateway learns: it writes at once when the
    verdict changes (first lock, another period, continuous), at most every
    :data:`SAVE_EVERY` seconds while the cadence only sharpens, and :meth:`flush` (run at
    exit) writes what is left.
    """

    def __init__(self, base_url: str, path: Optional[Path] = None, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.key = memory_key(base_url)
        self.path = Path(path) if path is not None else memory_path()  # fixed: one file per gateway's life
        self._clock, self._wall, self.lock_timeout = clock, wall, lock_timeout
        self._lock = threading.Lock()
        self._signature: Optional[tuple[str, float]] = None  # of the last saved (or loaded) cadence
        self._saved_at = -math.inf
        self._confirmed_at: Optional[float] = None  # monotonic: this process saw a continuous server itself
        self._pending: Optional[Cadence] = None  # learnt here and not written yet (encoded when written)
        self.saves = 0

    def __repr__(self) -> str:
        return f"<CadenceMemory {self.key} in {self.path}>"

    def recall(self) -> Optional[Recall]:
        """What the file remembers of this base URL, aged to now; None when nothing (or unreadable)."""
        try:
            recall = decode(read_entries(self.path).get(self.key), self._clock(), self._wall())
        except Exception as exc:  # a hand-edited value of a type nobody expected: never fatal
            _warn_once(self.path, f"cannot use the remembered cadence of {self.key}: {type(exc).__name__}")
            return None
        if recall is not None:
            with self._lock:
                self._signature = signature(recall.cadence)
        return recall

    def note(self, cadence: Cadence) -> None:
        """The gateway's cadence as it now stands: save it if due (see the class).

        Called at every change a watch sees, on its poll thread: the entry is encoded only
        when it is written.
        """
        now = self._clock()
        with self._lock:
            if cadence.continuous and cadence.upper < MIN_PERIOD and self._confirmed_at is None:
                self._confirmed_at = now  # learnt here, not just loaded
            verdict = signature(cadence)
            changed = (verdict is not None and (self._signature is None or verdict[0] != self._signature[0]
                       or abs(verdict[1] - self._signature[1]) > _PERIOD_CHANGE * self._signature[1]))
            self._pending = cadence
            if not changed and now - self._saved_at < SAVE_EVERY:
                return
            entry = entry_for(cadence, now, self._wall(), self._confirmed_at)
            if entry is None:
                return
            self._signature, self._saved_at = verdict, now
        self._write(entry, cadence)

    def flush(self) -> bool:
        """Write what was learnt and not written yet (at exit); True if something was written."""
        with self._lock:
            cadence, self._pending = self._pending, None
            entry = None if cadence is None else entry_for(cadence, self._clock(), self._wall(), self._confirmed_at)
        return entry is not None and self._write(entry, cadence)

    def _write(self, entry: dict[str, Any], cadence: Cadence) -> bool:
        """Write ``entry`` (encoded from ``cadence``); a later cadence stays pending."""
        try:
            write_entry(self.path, self.key, entry, self.lock_timeout)
        except (OSError, ValueError, TypeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            _warn_once(self.path, f"cannot write the remembered gateway cadences: {reason}")
            return False
        with self._lock:
            if self._pending is cadence:
                self._pending = None
            self.saves += 1
        return True


_live_lock = threading.Lock()
_live: list[CadenceMemory] = []


def _flush_all() -> None:
    with _live_lock:
        memories = list(_live)
    for memory in memories:
        memory.flush()


def at_exit(memory: CadenceMemory) -> CadenceMemory:
    """Have ``memory`` flushed when the process exits (one atexit hook for all)."""
    with _live_lock:
        if not _live:
            atexit.register(_flush_all)
        _live.append(memory)
    return memory

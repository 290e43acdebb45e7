"""A bounded-wait lock on an open file, for the task journal: several processes, one writer at a time.

``fcntl.flock`` on POSIX (shared for readers, exclusive for writers); ``msvcrt.locking`` on
Windows (exclusive only); elsewhere an ``O_CREAT | O_EXCL`` marker file, broken when older than
:data:`STALE_LOCK` seconds (its owner died holding it).  Every wait polls with a non-blocking
call, so it ends after ``timeout`` seconds with :class:`TimeoutError` (an ``OSError``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

__all__ = ["acquire", "STALE_LOCK"]

STALE_LOCK = 30.0


def acquire(fd: int, exclusive: bool, lock_path: Path, timeout: float) -> Callable[[], None]:
    """Take the file lock on ``fd``; return its release.  Polls (non-blocking) so the wait is bounded."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    try:
        import fcntl
    except ImportError:  # Windows, or an exotic platform
        return _acquire_fallback(fd, lock_path, deadline)
    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    while True:
        try:
            fcntl.flock(fd, mode)
            return lambda: fcntl.flock(fd, fcntl.LOCK_UN)
        except BlockingIOError:  # taken; any other OSError (no locks on this file system) goes up
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"the journal lock {lock_path} stayed taken for {timeout:g} s")
        time.sleep(pause)
        pause = min(0.05, pause * 2)


def _acquire_fallback(fd: int, lock_path: Path, deadline: float) -> Callable[[], None]:
    try:
        import msvcrt
    except ImportError:
        msvcrt = None  # type: ignore[assignment]
    pause = 0.001
    if msvcrt is not None:  # shared locks do not exist there: readers lock exclusively too
        def unlock() -> None:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]

        while True:
            try:
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
                return unlock
            except OSError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"the journal lock {lock_path} stayed taken") from None
                time.sleep(pause)
                pause = min(0.05, pause * 2)
    marker = str(lock_path) + ".excl"
    while True:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            return lambda: os.unlink(marker)
        except FileExistsError:
            try:
                if time.time() - os.stat(marker).st_mtime > STALE_LOCK:
                    os.unlink(marker)  # its owner died holding it
                    continue
            except FileNotFoundError:
                continue
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the journal lock {marker} stayed taken") from None
            time.sleep(pause)
            pause = min(0.05, pause * 2)

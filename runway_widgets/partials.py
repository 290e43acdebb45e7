"""Partial downloads never outlive the process: ``.part`` files go on SIGTERM, SIGHUP and exit.

A download writes into ``.<name>.<random>.part`` beside its destination and renames it
into place only when complete (download.py).  Ctrl-C, Stop and ``%unload_ext`` end the
download thread, which removes its own file.  A process that is *terminated* gives that
thread no chance: SIGTERM and SIGHUP kill it by default (a kernel restart or shutdown that
does not end in time gets a SIGTERM), and at interpreter exit daemon threads just stop.
So every partial file is created and registered here, and :func:`remove_partials` deletes
them, from a signal handler and from ``atexit``.

The handlers are installed by :func:`arm`, called when a save is requested -- never at
import -- and only from the main thread (Python allows no other).  Each chains to what
was there before:

* the default disposition: after the clean-up it is restored and the signal raised again,
  so the process still dies of that signal (exit status, parent notification);
* a Python handler: it is called and decides; if the process then exits, ``atexit`` cleans;
* an ignored signal (``nohup``): no handler is installed, the signal stays ignored.

A ``kill -9`` (SIGKILL) cannot be caught: it leaves the partial file.
"""

from __future__ import annotations

import atexit
import os
import secrets
import signal
import threading
from types import FrameType
from typing import Any

from .errors import DownloadError

__all__ = ["arm", "create_partial", "release", "discard", "remove_partials", "pending_partials"]

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)

_lock = threading.Lock()  # held only around creating/forgetting a file: a signal handler may wait for it
_paths: dict[str, None] = {}  # partial files in progress (a dict keeps insertion order)
_closing = False  # set once the process is going away: no new partial file after that
_atexit_armed = False
_installed: dict[int, Any] = {}  # signal -> the handler ours replaced


def arm() -> None:
    """Make sure partial files are removed if the process ends (idempotent, cheap).

    ``atexit`` is registered from any thread; the SIGTERM/SIGHUP handlers only when called
    on the main thread (elsewhere, and for ignored signals, there is no handler).
    """
    global _atexit_armed
    with _lock:
        if not _atexit_armed:
            atexit.register(remove_partials)
            _atexit_armed = True
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in _SIGNALS:
        if signum in _installed:
            continue  # once per process: re-wrapping a handler that chains to ours would loop
        current = signal.getsignal(signum)
        if current is signal.SIG_IGN or current is None:  # ignored, or set outside Python
            continue
        try:
            signal.signal(signum, _on_signal)
        except (ValueError, OSError):  # e.g. an embedding interpreter that forbids it
            continue
        _installed[signum] = current


def create_partial(folder: str | os.PathLike[str], name: str) -> tuple[int, str]:
    """Create ``folder/.name.<random>.part`` (mode 0666 minus the umask), register it, return (fd, path).

    Raises :class:`DownloadError` once the process is exiting, ``OSError`` if the file cannot be created.
    """
    with _lock:  # creating and registering are one step for remove_partials
        if _closing:
            raise DownloadError("The process is exiting; the video was not saved.")
        for _ in range(100):
            path = os.path.join(os.fspath(folder), f".{name}.{secrets.token_hex(4)}.part")
            try:
                fd = os.open(path, _FLAGS, 0o666)
            except FileExistsError:
                continue
            _paths[path] = None
            return fd, path
    raise FileExistsError(f"no free partial file name in {folder}")


def release(path: str) -> None:
    """Forget ``path`` (it was renamed into place, or removed)."""
    with _lock:
        _paths.pop(path, None)


def discard(path: str) -> None:
    """Remove the partial file ``path`` if it is still there, and forget it."""
    release(path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def pending_partials() -> list[str]:
    """Partial files being written right now."""
    with _lock:
        return list(_paths)


def remove_partials() -> int:
    """Delete every registered partial file and refuse new ones; returns how many went.

    Runs in a signal handler (on the main thread, maybe while a download thread holds the
    lock for an instant) and at exit: it waits for the lock a bounded time only.
    """
    global _closing
    got = _lock.acquire(timeout=1.0)
    try:
        _closing = True
        paths = list(_paths)  # one C-level copy: safe even without the lock
        _paths.clear()
    finally:
        if got:
            _lock.release()
    removed = 0
    for path in paths:
        try:
            os.unlink(path)
            removed += 1
        except OSError:
            pass
    return removed


def _on_signal(signum: int, frame: FrameType | None) -> None:
    previous = _installed.get(signum, signal.SIG_DFL)
    if callable(previous):
        # Someone else handles this signal; they decide whether the process ends (if it
        # exits normally, atexit removes the files; if it goes on, so do the downloads).
        previous(signum, frame)
        return
    remove_partials()
    # End the way the default disposition would have: die of this very signal.
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)

"""What goes into the task journal, and when: a record per create call, and per watch as it moves.

:func:`track` writes a watch's first record synchronously (fsynced) before the first poll,
then subscribes to the watch and writes again only when something worth keeping changed
(status, outcome, result URL, saved path, failure, or progress by whole percent at most every
few seconds), fsyncing the final record.  Every line goes through the watch's client's key
scrubber, so the key cannot reach the file even inside a prompt.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol
from urllib.parse import urlsplit

from .journal import get_journal
from .records import SCHEMA, iso_time, url_expiry
from .updates import Outcome, WatchUpdate



class Endpoint(Protocol):
    """What a record needs of a client: where it talks to, and its key scrubber.

    (A protocol, not the Client class: the client journals its create calls through this
    module, so this module must not import it.)"""

    base_url: str
    feed: str

    def _scrub(self, data: bytes) -> bytes: ...


class Watched(Protocol):
    """What the recorder needs of a watch: its task, its client, and its updates."""

    task_id: str

    @property
    def client(self) -> Endpoint: ...

    def on_update(self, callback: Callable[[WatchUpdate], Any]) -> Callable[[WatchUpdate], Any]: ...

__all__ = ["track", "record_created", "set_origin", "process_identity", "origin", "PROGRESS_EVERY"]

log = logging.getLogger("runway_widgets")

PROGRESS_EVERY = 5.0  # seconds: progress alone is written at most this often
_TEXT_LIMIT = 4000  # a prompt or parameter longer than this is cut (the journal stays bounded)
_KINDS = {"/runway/pro/generate": "text_to_video", "/runway/pro/video2video": "video_to_video",
          "/runway/pro/act_one": "act_one"}

_lock = threading.Lock()
_owners: dict[tuple[str, str], int] = {}  # (base_url, task id) -> id() of the watch that writes it
_forced_origin: str | None = None


def set_origin(value: str | None) -> str | None:
    """Say where watches of this process are run from (the CLI says ``"cli"``); returns the old value."""
    global _forced_origin
    old, _forced_origin = _forced_origin, value
    return old


def origin() -> str:
    """Where a watch started now runs: the notebook's path when known, else notebook/ipython/python."""
    if _forced_origin:
        return _forced_origin
    session = os.environ.get("JPY_SESSION_NAME", "")  # set by jupyter_server for a notebook's kernel
    ipython = sys.modules.get("IPython")  # never imported here: only asked if already loaded
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    if shell is not None:
        vscode = getattr(shell, "user_ns", {}).get("__vsc_ipynb_file__")
        if isinstance(vscode, str) and vscode:
            return vscode
        if session:
            return session
        if "google.colab" in sys.modules:
            return "colab"
        return "notebook" if getattr(shell, "kernel", None) is not None else "ipython"
    return session or "python"


def process_identity() -> dict[str, Any]:
    """pid, host name and (Linux) the process's start tick: a reused pid is not mistaken for it."""
    return {"pid": os.getpid(), "hostname": socket.gethostname(), "proc_start": proc_start(os.getpid())}


def proc_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (Linux ``/proc``), else None."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:  # the command name (field 2) may hold spaces and parentheses: split after the last ')'
        return data[data.rindex(")") + 2:].split()[19]
    except (ValueError, IndexError):
        return None


def _is_demo(client: Endpoint) -> bool:
    demo = sys.modules.get("runway_widgets.demo")  # loaded if a demo ran; never imported here
    return demo is not None and bool(demo.is_demo_client(client))


def _clip(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("data:"):
        # An inline image: its bytes are the user's, and megabytes of base64 say nothing.
        return f"{value.split(',', 1)[0]},… ({len(value):,} characters, not kept)"
    if isinstance(value, str):
        return value if len(value) <= _TEXT_LIMIT else value[:_TEXT_LIMIT] + "…"
    if isinstance(value, Mapping):
        return {str(k): _clip(v) for k, v in list(value.items())[:50]}
    if isinstance(value, (list, tuple)):
        return [_clip(v) for v in list(value)[:50]]
    return value


def record_created(client: Endpoint, path: str, body: Mapping[str, Any], task_id: str) -> None:
    """Journal a task the moment a create call returned its id (prompt and parameters included)."""
    try:
        kind = _KINDS.get(path) or path.rstrip("/").rsplit("/", 1)[-1]  # official routes name their kind
        if kind == "text_to_video" and (body.get("image") or body.get("promptImage")):
            kind = "image_to_video"
        prompt = body.get("prompt") if body.get("prompt") is not None else body.get("promptText")
        now = time.time()
        record = {"v": SCHEMA, "task_id": task_id, "base_url": client.base_url, "host": urlsplit(client.base_url).netloc,
                  "feed": client.feed, "kind": kind, "prompt": _clip(prompt),
                  "parameters": _clip({k: v for k, v in body.items() if k not in ("prompt", "promptText")}),
                  "created_at": iso_time(now), "updated_at": iso_time(now), "origin": origin(),
                  "status": None, "outcome": "created"}
        record["created_by"] = process_identity()
        if _is_demo(client):
            record["demo"] = True
        get_journal().append({k: v for k, v in record.items() if v is not None}, sync=True, scrub=client._scrub)
    except Exception:  # the new task's id matters more than its journal entry
        log.exception("runway_widgets: could not journal the new task %s", task_id)


def track(handle: Watched, save: str | os.PathLike[str] | bool | None = None) -> None:
    """Journal ``handle`` now (before its first poll) and as it moves; never raises.

    ``save`` is the destination the watch will save to (recorded as an absolute path, so a
    watch resumed elsewhere saves to the same place).
    """
    try:
        _Recorder(handle, save).start()
    except Exception:
        log.exception("runway_widgets: could not journal the watch of %s", handle.task_id)


def _absolute(save: str | os.PathLike[str] | bool | None) -> str | None:
    if save is None or save is False or save is True:
        return None
    text = os.fspath(save)
    folder = text.endswith(("/", os.sep))
    absolute = os.path.abspath(os.path.expanduser(text))
    return absolute + os.sep if folder and not absolute.endswith(os.sep) else absolute


class _Recorder:
    """Subscribed to one watch; writes its record when what it shows has changed."""

    def __init__(self, handle: Watched, save: str | os.PathLike[str] | bool | None) -> None:
        self.handle = handle
        self.client = handle.client
        self.key = (self.client.base_url, handle.task_id)
        self.save = _absolute(save)
        # What the first record says: a poll that shows nothing more is not written.
        self.last: tuple[Any, ...] = (Outcome.WATCHING, None, None, None, None, None, None)
        self.last_percent: int | None = None
        self.last_write = 0.0
        self._lock = threading.Lock()  # one update at a time, so records reach the file in order

    def start(self) -> None:
        with _lock:
            _owners[self.key] = id(self.handle)  # a superseded watch of the same task stops writing
        now = time.time()
        record = {"v": SCHEMA, "task_id": self.handle.task_id, "base_url": self.client.base_url,
                  "host": urlsplit(self.client.base_url).netloc, "feed": self.client.feed, "origin": origin(),
                  **process_identity(), "watched_at": iso_time(now), "updated_at": iso_time(now),
                  "outcome": Outcome.WATCHING.value, "ended_at": None, "error": None}
        if self.save is not None:
            record["save"] = self.save
        if _is_demo(self.client):
            record["demo"] = True  # its simulator lives and dies with this process
        self._write(record, sync=True)
        self.handle.on_update(self)

    def __call__(self, update: WatchUpdate) -> None:
        with self._lock:
            self._record(update)

    def _record(self, update: WatchUpdate) -> None:
        with _lock:
            if _owners.get(self.key) != id(self.handle):
                return
            if update.done:
                del _owners[self.key]
        snap = update.snapshot
        url = snap.result_url if snap is not None else None
        material = (update.outcome, snap.status if snap else None, url, update.saved_path,
                    snap.fail_reason if snap else None, snap.fail_code if snap else None,
                    str(update.error) if update.error else None)
        percent = snap.percent if snap is not None else None
        now = time.time()
        if material == self.last and (percent == self.last_percent or now - self.last_write < PROGRESS_EVERY):
            return  # an unchanged poll (or progress alone, too soon): nothing new to keep
        self.last, self.last_percent, self.last_write = material, percent, now
        record: dict[str, Any] = {"task_id": self.handle.task_id, "base_url": self.client.base_url,
                                  "updated_at": iso_time(now), "outcome": update.outcome.value}
        if snap is not None:
            record.update(status=snap.status, state=snap.state.value, progress=percent)
            if snap.fail_reason or snap.fail_code:
                record.update(fail_reason=snap.fail_reason, fail_code=snap.fail_code)
            if url:
                expires = url_expiry(url)
                record.update(result_url=url, result_expires_at=iso_time(expires) if expires else None)
        if update.saved_path:
            record["saved_path"] = os.path.abspath(update.saved_path)
        if update.done:
            record["ended_at"] = iso_time(now)
            if update.error is not None:
                record["error"] = str(update.error)
        self._write(record, sync=update.done)

    def _write(self, record: dict[str, Any], sync: bool) -> None:
        get_journal().append(record, sync=sync, scrub=self.client._scrub)

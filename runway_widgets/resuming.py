"""Resume and history: pick up the journal's unfinished tasks, and list past tasks across kernels.

``resume()`` re-attaches a watch to every unfinished task of one gateway that no live process
is watching (each saves where its first watch was asked to); ``history()`` lists tasks of
every kernel and CLI of this user, newest first.  The magic (``%runway_watch --resume``,
``%runway_tasks --history``) and the CLI (``runway-watch --resume``) are thin layers on these.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any, Iterable

from . import api
from .client import Client
from .config import Secret, resolve_base_url
from .journal import get_journal
from .recorder import proc_start
from .records import TaskRecord
from .watch import Watch

__all__ = ["history", "resume", "resumable", "resume_records", "task_records"]


def task_records(base_url: str | None = None) -> list[TaskRecord]:
    """Every task the journal knows (optionally of one gateway), newest first."""
    url = resolve_base_url(base_url) if base_url else None
    records = [TaskRecord.from_dict(data) for data in get_journal().tasks().values()]
    if url is not None:
        records = [r for r in records if r.base_url == url]
    records.sort(key=lambda r: r.when, reverse=True)
    return records


def history(status: str | Iterable[str] | None = None, limit: int | None = 50,
            base_url: str | None = None) -> list[TaskRecord]:
    """Past and present tasks of every kernel and CLI of this user, newest first.

    Parameters
    ----------
    status:
        Keep only tasks matching it (or any of several), case-insensitively: a watch outcome
        (``"succeeded"``, ``"failed"``, ``"watching"``, ``"timed out"``...), a task state
        (``"running"``, ``"waiting"``...), the server's status word (``"SUCCESS"``), or
        ``"unfinished"`` (what :func:`resume` would pick up).
    limit:
        At most this many (None: all the journal holds).
    base_url:
        Only this gateway's tasks (default: every gateway).

    Each :class:`TaskRecord` has ``result_url`` with ``url_state()`` ("fresh" / "expired" /
    "unknown"), ``saved_path``, ``prompt``, failure reason and code, and where it was watched from.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError("limit must be a whole number, 0 or more, or None.")
    records = task_records(base_url)
    if status is not None:
        wanted = {status.strip().lower()} if isinstance(status, str) else {s.strip().lower() for s in status}
        records = [r for r in records if wanted & _labels(r)]
    return records if limit is None else records[:limit]


def _labels(record: TaskRecord) -> set[str]:
    labels = {(record.outcome or "").lower(), (record.state or "").lower(), (record.status or "").lower()}
    if record.unfinished:
        labels.add("unfinished")
    return labels - {""}


def resumable(base_url: str | None = None, include_live: bool = False) -> tuple[list[TaskRecord], list[tuple[TaskRecord, str]]]:
    """The gateway's unfinished tasks to resume (oldest first), and those skipped with why."""
    url = resolve_base_url(base_url)
    chosen: list[TaskRecord] = []
    skipped: list[tuple[TaskRecord, str]] = []
    live_here = {(w.client.base_url, w.task_id) for w in api.live_watches()}
    for record in reversed(task_records(url)):
        if not record.unfinished:
            continue
        reason = _why_not(record, include_live, live_here)
        if reason:
            skipped.append((record, reason))
        else:
            chosen.append(record)
    return chosen, skipped


def _why_not(record: TaskRecord, include_live: bool, live_here: set[tuple[str, str]]) -> str:
    if record.demo:
        demo = _demo_client()
        if demo is None or demo.base_url != record.base_url:
            return "its demo simulator has gone (it lived in the process that ran the demo)"
    if include_live:
        return ""
    if (record.base_url, record.task_id) in live_here:
        return "already watched in this process"
    if record.outcome == "watching" and record.pid is not None and _alive(record):
        return f"watched by a live process (pid {record.pid})"
    return ""


def _demo_client() -> Client | None:
    """This process's running demo client (the demo module is not imported for this)."""
    demo = sys.modules.get("runway_widgets.demo")
    return demo.running_demo_client() if demo is not None else None


def _alive(record: TaskRecord) -> bool:
    """Whether the process that last watched ``record`` still runs (on this host; elsewhere: unknown, so no)."""
    if record.hostname != socket.gethostname() or record.pid is None:
        return False
    if record.pid == os.getpid():
        return False  # this process: api.live_watches() says whether it still watches
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process exists under that pid
    except OSError:
        return False
    now_start = proc_start(record.pid)
    return not (record.proc_start and now_start and now_start != record.proc_start)  # a reused pid is not it


def resume_records(records: Iterable[TaskRecord], *, api_key: str | Secret | None = None,
                   client: Client | None = None, save: str | os.PathLike[str] | bool | None = None,
                   **options: Any) -> list[Watch]:
    """Watch each record's task again; ``save`` overrides the destination each one recorded.

    ``options`` go to :func:`runway_widgets.watch` (``timeout``, ``interval``, ``on_update``...).
    """
    watches = []
    for record in records:
        chosen = client
        if chosen is None and record.demo:
            chosen = _demo_client()
        if chosen is None:
            chosen = api.get_client(api_key, record.base_url, feed=record.feed or "runway")
        destination = save if save is not None else record.save
        watches.append(api.watch(record.task_id, client=chosen, save=destination, **options))
    return watches


def resume(base_url: str | None = None, *, api_key: str | Secret | None = None, client: Client | None = None,
           include_live: bool = False, save: str | os.PathLike[str] | bool | None = None,
           **options: Any) -> list[Watch]:
    """Re-attach to every unfinished task of the gateway that the journal knows; returns the watches.

    Parameters
    ----------
    base_url:
        The gateway (default ``COMETAPI_BASE_URL``, then CometAPI's).
    api_key, client:
        How to reach it (default ``COMETAPI_KEY``).
    include_live:
        Also tasks a live process (another kernel, a running CLI) still watches; by default
        those are skipped, and so are demo tasks whose simulator has gone with its process.
    save:
        Save every result here instead of where each task's first watch was asked to.
    options:
        Passed to :func:`runway_widgets.watch` (``timeout``, ``interval``, ``on_update``...).
    """
    records, _ = resumable(base_url, include_live)
    return resume_records(records, api_key=api_key, client=client, save=save, **options)

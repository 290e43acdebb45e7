"""The public Python API: ``watch()``, the create helpers, and the registry of watches.

Everything the magic and the CLI do goes through here, so anything they can do can be
done from plain Python.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from typing import Any, Callable

from .client import Client
from .config import Secret, resolve_base_url, resolve_key, validate_task_id
from .download import save_video
from .errors import ConfigError, DownloadError, ExpiredUrlError, RunwayWidgetsError
from .gateways import get_gateways
from .policy import PacingConfig
from .scheduler import Scheduler, get_scheduler
from .snapshot import TaskSnapshot
from .watch import Watch, WatchSettings, WatchUpdate
from .workers import WorkerPool

__all__ = [
    "watch",
    "get_client",
    "live_watches",
    "recent_watches",
    "stop_all",
    "wait_all",
    "create_text_to_video",
    "create_image_to_video",
    "create_video_to_video",
    "create_act_one",
]

log = logging.getLogger("runway_widgets")

_lock = threading.Lock()
_clients: dict[tuple[str, int, str], Client] = {}
_live: dict[tuple[str, int, str], Watch] = {}
_recent: OrderedDict[int, Watch] = OrderedDict()  # every watch, newest last, bounded
_RECENT_MAX = 500
DEFAULT_SAVE_DIR = "runway_videos/"
_downloads: WorkerPool | None = None


def get_client(api_key: str | Secret | None = None, base_url: str | None = None, feed: str = "runway") -> Client:
    """A shared :class:`Client` for this key and base URL (one connection pool each)."""
    url = resolve_base_url(base_url)
    key = resolve_key(api_key)
    fingerprint = hash(key) if key is not None else 0
    with _lock:
        client = _clients.get((url, fingerprint, feed))
    if client is None:
        client = Client(key, url, feed=feed)  # raises ConfigError for a missing key
        with _lock:
            client = _clients.setdefault((url, fingerprint, feed), client)
    return client


def watch(
    task_id: str,
    *,
    api_key: str | Secret | None = None,
    base_url: str | None = None,
    client: Client | None = None,
    timeout: float = 1800.0,
    interval: float | None = None,
    pacing: PacingConfig | None = None,
    not_found_grace: float = 30.0,
    give_up_after: float = 120.0,
    save: str | os.PathLike[str] | bool | None = None,
    on_update: Callable[[WatchUpdate], Any] | None = None,
    scheduler: Scheduler | None = None,
) -> Watch:
    """Start watching a task in the background and return its :class:`Watch` handle.

    Parameters
    ----------
    task_id:
        The id a create call returned.
    api_key, base_url, client:
        How to reach the API (default: ``COMETAPI_KEY`` / ``COMETAPI_BASE_URL``).
    timeout:
        Seconds before the watch gives up on a task that has not finished.
    interval:
        Poll on a fixed interval instead of adaptive pacing.
    not_found_grace:
        Seconds a fresh id may read ``task_not_exist`` before the watch ends "not found".
    give_up_after:
        Seconds of uninterrupted transient errors before the watch gives up.
    save:
        A file or folder: the video is downloaded there when the task succeeds.
        ``True`` means the folder ``runway_videos/`` beside the notebook (the working
        directory); a saved card then plays the local copy after the URL has expired.
    on_update:
        Called with a :class:`WatchUpdate` after every poll, on a background thread.

    Watching a task that is already being watched (same key and base URL) stops the old
    watch, which says it was superseded, so one task never has two pollers.
    """
    task_id = validate_task_id(task_id)
    if timeout is None or not timeout > 0:
        raise ConfigError("timeout must be a positive number of seconds.")
    if interval is not None and not interval > 0:
        raise ConfigError("interval must be a positive number of seconds.")
    if give_up_after is None or not give_up_after >= 0:
        raise ConfigError("give_up_after must be a number of seconds, 0 or more.")
    if not_found_grace is None or not not_found_grace >= 0:
        raise ConfigError("not_found_grace must be a number of seconds, 0 or more.")
    client = client or get_client(api_key, base_url)
    config = pacing or PacingConfig()
    if interval is not None:
        config = PacingConfig(**{**config.__dict__, "fixed_interval": float(interval),
                                 "min_interval": min(config.min_interval, float(interval))})
    settings = WatchSettings(timeout=float(timeout), not_found_grace=float(not_found_grace),
                             give_up_after=float(give_up_after), pacing=config)
    sched = scheduler or get_scheduler()
    handle = Watch(task_id, client, settings, clock=sched.clock, gateway=get_gateways().get(client.base_url))
    if save is True:
        save = DEFAULT_SAVE_DIR
    if save is not None and save is not False:
        handle.finisher = _saver(save)
    if on_update is not None:
        handle.on_update(on_update)
    key = (client.base_url, client.key_fingerprint, task_id)
    with _lock:
        previous = _live.get(key)
        _live[key] = handle
        _recent[id(handle)] = handle
        while len(_recent) > _RECENT_MAX:
            _recent.popitem(last=False)
    if previous is not None and previous is not handle:
        previous.stop("Superseded by a newer watch of this task.")
    handle.finish_hooks.append(lambda w: _forget(key, w, sched))
    sched.add(handle)
    return handle


def _forget(key: tuple[str, int, str], handle: Watch, sched: Scheduler) -> None:
    with _lock:
        if _live.get(key) is handle:
            del _live[key]
    sched.remove(handle)


def _download_pool() -> WorkerPool:
    global _downloads
    with _lock:
        if _downloads is None:
            _downloads = WorkerPool(max_workers=2, name="runway-widgets-download")
        return _downloads


def shutdown_downloads(timeout: float = 2.0) -> None:
    """End the download threads (they end by themselves when idle, too)."""
    global _downloads
    with _lock:
        pool, _downloads = _downloads, None
    if pool is not None:
        pool.shutdown(timeout)


def _saver(destination: str | os.PathLike[str]) -> Callable[[Watch, TaskSnapshot], None]:
    """A watch finisher that saves the video, asking once for a fresh URL if it expired."""

    def finish(handle: Watch, snapshot: TaskSnapshot) -> None:
        def job() -> None:
            latest = snapshot
            error: RunwayWidgetsError | None = None
            for attempt in range(2):
                if latest.result_url is None:
                    error = DownloadError("The task succeeded but gave no usable video URL to save.")
                    break
                try:
                    # handle.done: a watch stopped (Ctrl-C, Stop, unload) mid-download ends it.
                    handle.saved_path = str(save_video(latest.result_url, destination, handle.task_id,
                                                       should_stop=handle.done))
                    error = None
                    break
                except ExpiredUrlError as exc:
                    error = exc
                    if attempt == 0:
                        try:  # signed URLs expire; polling the task again mints a fresh one
                            fresh = handle.client.fetch(handle.task_id)
                        except RunwayWidgetsError as again:
                            error = again
                            break
                        if not (fresh.succeeded and fresh.result_url):
                            # The success already seen stands: a server that now reads
                            # otherwise (a status going backwards) must not replace it.
                            error = DownloadError(
                                "The result URL expired, and polling the task again gave no fresh one "
                                f"(it now reads {fresh.status}).")
                            break
                        latest = fresh
                except RunwayWidgetsError as exc:
                    error = exc
                    break
            handle._complete_success(error, latest)

        _download_pool().submit(job)

    return finish


def live_watches() -> list[Watch]:
    """Watches still polling."""
    with _lock:
        return list(_live.values())


def recent_watches() -> list[Watch]:
    """Every watch started in this process (the last 500), oldest first."""
    with _lock:
        return list(_recent.values())


def wait_all(timeout: float | None = None) -> list[Watch]:
    """Wait until every live watch has ended (at most ``timeout`` seconds each); never raises
    for a watch that failed.  End a notebook with it so a headless run records final states."""
    watches = live_watches()
    for handle in watches:
        try:
            handle.wait(timeout)
        except (RunwayWidgetsError, TimeoutError):
            pass  # the card and the handle say why
    return watches


def stop_all(reason: str = "Stopped watching.") -> int:
    """Stop every live watch; returns how many were stopped."""
    watches = live_watches()
    for handle in watches:
        handle.stop(reason)
    return len(watches)


def _create(method: str, args: tuple, kwargs: dict[str, Any]) -> str:
    api_key = kwargs.pop("api_key", None)
    base_url = kwargs.pop("base_url", None)
    return getattr(get_client(api_key, base_url), method)(*args, **kwargs)


def create_text_to_video(prompt: str, **kwargs: Any) -> str:
    """Create a text-to-video task; returns its id.  See :meth:`Client.create_text_to_video`."""
    return _create("create_text_to_video", (prompt,), kwargs)


def create_image_to_video(image: str, prompt: str = "", **kwargs: Any) -> str:
    """Create an image-to-video task; returns its id.  See :meth:`Client.create_image_to_video`."""
    return _create("create_image_to_video", (image, prompt), kwargs)


def create_video_to_video(video: str, prompt: str, **kwargs: Any) -> str:
    """Create a video-to-video (style redraw) task; returns its id."""
    return _create("create_video_to_video", (video, prompt), kwargs)


def create_act_one(video: str, image: str, **kwargs: Any) -> str:
    """Create an Act-One (expression migration) task; returns its id."""
    return _create("create_act_one", (video, image), kwargs)


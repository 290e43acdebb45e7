"""The public Python API: ``watch()``, the create helpers, and the registry of watches.

Everything the magic and the CLI do goes through here, so anything they can do can be
done from plain Python.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Sequence

from . import partials
from .client import Client
from .config import DEFAULT_SAVE_DIR, Secret, default_save, resolve_base_url, resolve_key, validate_save, validate_task_id
from .download import save_video
from .errors import ConfigError, DownloadError, ExpiredUrlError, RunwayWidgetsError
from .expiry import is_expired
from .gateways import get_gateways
from .policy import PacingConfig
from .providers import RUNWAY, choose_provider, task_id_of
from .recorder import track
from .scheduler import Scheduler, get_scheduler
from .snapshot import TaskSnapshot
from .watch import Completion, Finisher, Outcome, Watch, WatchSettings, WatchUpdate
from .workers import WorkerPool

__all__ = [
    "watch",
    "get_client",
    "live_watches",
    "recent_watches",
    "stop_all",
    "wait_all",
    "wait_each",
    "refresh_result",
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
_downloads: WorkerPool | None = None


def get_client(api_key: str | Secret | None = None, base_url: str | None = None, feed: str = "runway",
               provider: str | None = None) -> Client:
    """A shared :class:`Client` for this key and base URL (one connection pool each).

    ``provider``: ``"cometapi"`` or ``"runway"`` (Runway's own API); None chooses by itself
    (see :func:`runway_widgets.providers.choose_provider`; ``feed="runway_api"`` means Runway).
    """
    chosen = choose_provider(provider if provider is not None else ("runway" if feed == "runway_api" else None),
                             api_key=api_key, base_url=base_url)
    if chosen is RUNWAY:
        feed = "runway_api"
    url = resolve_base_url(base_url, chosen.base_url_env, chosen.default_base_url)
    key = resolve_key(api_key, chosen.key_env)
    fingerprint = hash(key) if key is not None else 0
    with _lock:
        client = _clients.get((url, fingerprint, feed))
    if client is None:
        client = Client(key, url, feed=feed, provider=chosen.name)  # raises ConfigError for a missing key
        with _lock:
            client = _clients.setdefault((url, fingerprint, feed), client)
    return client


def watch(
    task_id: Any,
    *,
    api_key: str | Secret | None = None,
    base_url: str | None = None,
    provider: str | None = None,
    client: Client | None = None,
    timeout: float = WatchSettings.timeout,
    interval: float | None = None,
    pacing: PacingConfig | None = None,
    not_found_grace: float = WatchSettings.not_found_grace,
    give_up_after: float = WatchSettings.give_up_after,
    save: str | os.PathLike[str] | bool | None = None,
    on_update: Callable[[WatchUpdate], Any] | None = None,
    scheduler: Scheduler | None = None,
) -> Watch:
    """Start watching a task in the background and return its :class:`Watch` handle.

    Parameters
    ----------
    task_id:
        The id a create call returned, or a task object with an ``.id`` (what Runway's
        Python SDK returns from ``client.image_to_video.create(...)``).
    api_key, base_url, client:
        How to reach the API (default: ``COMETAPI_KEY`` / ``COMETAPI_BASE_URL``).
    provider:
        ``"cometapi"`` or ``"runway"`` (Runway's own API: ``RUNWAYML_API_SECRET``,
        ``https://api.dev.runwayml.com``).  Default: Runway when only ``RUNWAYML_API_SECRET``
        is set, else CometAPI.
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
        ``None`` (the default) means the folder set with :func:`configure` or
        ``$RUNWAY_WIDGETS_SAVE``, if any; ``False`` means do not save.
    on_update:
        Called with a :class:`WatchUpdate` after every poll, on a background thread.

    Watching a task that is already being watched (same key and base URL) stops the old
    watch, which says it was superseded, so one task never has two pollers.  The task is
    written to the task journal before the first poll (see :func:`runway_widgets.resume`).
    """
    task_id = validate_task_id(task_id_of(task_id))
    if timeout is None or not timeout > 0:
        raise ConfigError("timeout must be a positive number of seconds.")
    if interval is not None and not interval > 0:
        raise ConfigError("interval must be a positive number of seconds.")
    if give_up_after is None or not give_up_after >= 0:
        raise ConfigError("give_up_after must be a number of seconds, 0 or more.")
    if not_found_grace is None or not not_found_grace >= 0:
        raise ConfigError("not_found_grace must be a number of seconds, 0 or more.")
    destination = DEFAULT_SAVE_DIR if save is True else default_save() if save is None else validate_save(save)
    client = client or get_client(api_key, base_url, provider=provider)
    config = pacing or PacingConfig()
    if interval is not None:
        config = PacingConfig(**{**config.__dict__, "fixed_interval": float(interval),
                                 "min_interval": min(config.min_interval, float(interval))})
    settings = WatchSettings(timeout=float(timeout), not_found_grace=float(not_found_grace),
                             give_up_after=float(give_up_after), pacing=config)
    sched = scheduler or get_scheduler()
    key = (client.base_url, client.key_fingerprint, task_id)
    handle = Watch(task_id, client, settings, clock=sched.clock, gateway=get_gateways().get(client.base_url),
                   finisher=None if destination is None else _saver(destination, sched),
                   on_end=lambda ended: _forget(key, ended, sched))
    if destination is not None:
        partials.arm()  # SIGTERM, SIGHUP or exit mid-download remove the .part file
    if on_update is not None:
        handle.on_update(on_update)
    track(handle, destination)  # journaled before the first poll (and before a superseded watch stops)
    with _lock:
        previous = _live.get(key)
        _live[key] = handle
        _recent[id(handle)] = handle
        while len(_recent) > _RECENT_MAX:
            _recent.popitem(last=False)
    if previous is not None and previous is not handle:
        previous.stop("Superseded by a newer watch of this task.")
    sched.add(handle)
    return handle


def _forget(key: tuple[str, int, str], handle: Watch, sched: Scheduler) -> None:
    with _lock:
        if _live.get(key) is handle:
            del _live[key]
    sched.remove(handle)


def close_clients() -> None:
    """Close every cached client's connection pool (``%unload_ext`` does this); the next
    :func:`get_client` makes a new one."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()


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


def _saver(destination: str | os.PathLike[str], sched: Scheduler) -> Finisher:
    """A watch finisher that saves the video, asking once for a fresh URL if it expired.

    The download runs on the download pool.  Whatever happens there -- a file-system error,
    a bug -- the watch is told (``done``), so it always ends.
    """

    def finish(handle: Watch, snapshot: TaskSnapshot, done: Completion) -> None:
        def job() -> None:
            outcome: _Saved = (DownloadError("Saving the video was interrupted."), snapshot, None)
            try:
                outcome = _save_with_fresh_url(handle, snapshot, destination, sched)
            except Exception as exc:  # a bug must not leave the watch waiting for ever
                log.exception("runway_widgets: saving the video of %s failed unexpectedly", handle.task_id)
                outcome = (DownloadError(f"Saving the video failed: unexpected {type(exc).__name__}."), snapshot, None)
            finally:
                done(*outcome)

        _download_pool().submit(job)  # if this raises, the watch ends with a sentence (Watch._hand_over)

    return finish


def refresh_result(handle: Watch, *, max_wait: float = 10.0) -> bool:
    """Give a finished watch a fresh result URL if the one it has expired; True if it did.

    Only for a success whose video was not saved here (a saved copy plays without the URL)
    and whose URL says it has expired (see :mod:`runway_widgets.expiry`).  The request is
    one poll of the task, spent from the shared request budget like every other; if it
    fails, the watch keeps what it had and the caller shows that.
    """
    snap = handle.snapshot
    if handle.outcome is not Outcome.SUCCEEDED or snap is None or not snap.result_url:
        return False
    if handle.saved_path and os.path.isfile(handle.saved_path):
        return False
    if not is_expired(snap.result_url, time.time()):
        return False
    try:
        fresh = get_scheduler().fetch_now(handle.client, handle.task_id, max_wait=max_wait)
    except RunwayWidgetsError as exc:
        log.info("runway_widgets: could not refresh the result URL of %s: %s", handle.task_id, exc)
        return False
    return handle.accept_fresh_result(fresh)


_Saved = tuple[RunwayWidgetsError | None, TaskSnapshot, str | None]  # (error, snapshot, saved path)


def _save_with_fresh_url(handle: Watch, snapshot: TaskSnapshot, destination: str | os.PathLike[str],
                         sched: Scheduler) -> _Saved:
    """Save the video; on an expired signed URL, poll once more (a budgeted request) and retry once."""
    error, path = _try_save(handle, snapshot, destination)
    if not isinstance(error, ExpiredUrlError):
        return error, snapshot, path
    try:  # signed URLs expire; polling the task again mints a fresh one
        left = handle.deadline - sched.clock()
        fresh = sched.fetch_now(handle.client, handle.task_id, max_wait=max(0.0, min(30.0, left)))
    except RunwayWidgetsError as again:
        return again, snapshot, None
    if not (fresh.succeeded and fresh.result_url):
        # The success already seen stands: a server that now reads otherwise (a status
        # going backwards) must not replace it.
        return DownloadError("The result URL expired, and polling the task again gave no fresh one "
                             f"(it now reads {fresh.status})."), snapshot, None
    error, path = _try_save(handle, fresh, destination)
    return error, fresh, path


def _try_save(handle: Watch, snapshot: TaskSnapshot,
              destination: str | os.PathLike[str]) -> tuple[RunwayWidgetsError | None, str | None]:
    """Download the video; return (None, the saved path) or (why not, None)."""
    if snapshot.result_url is None:
        return DownloadError("The task succeeded but gave no usable video URL to save."), None
    try:
        # handle.done: a watch stopped (Ctrl-C, Stop, unload) mid-download ends it.
        return None, str(save_video(snapshot.result_url, destination, handle.task_id, should_stop=handle.done))
    except RunwayWidgetsError as exc:
        return exc, None


def live_watches() -> list[Watch]:
    """Watches still polling."""
    with _lock:
        return list(_live.values())


def recent_watches() -> list[Watch]:
    """Every watch started in this process (the last 500), oldest first."""
    with _lock:
        return list(_recent.values())


def wait_each(watches: Sequence[Watch], timeout: float | None = None,
              interrupted: str = "Interrupted: stopped watching.") -> None:
    """Wait until each watch has ended (at most ``timeout`` seconds each); how each ended is on
    its handle, so this never raises for it.  Ctrl-C stops them all and re-raises, for the
    caller to say it its own way (the CLI's line, the magic's sentence)."""
    try:
        for handle in watches:
            try:
                handle.wait(timeout)
            except (RunwayWidgetsError, TimeoutError):
                pass  # the card, the board and the handle say why
    except KeyboardInterrupt:
        for handle in watches:
            handle.stop(interrupted)
        raise


def wait_all(timeout: float | None = None) -> list[Watch]:
    """Wait until every live watch has ended (at most ``timeout`` seconds each); never raises
    for a watch that failed.  End a notebook with it so a headless run records final states."""
    watches = live_watches()
    wait_each(watches, timeout)
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


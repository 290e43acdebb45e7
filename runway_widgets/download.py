"""Save a result video: streamed, size-capped, type-checked, written atomically.

The bytes go to a temporary file beside the destination and are renamed into place only
when complete, so an interrupted download (Ctrl-C, a dropped connection, a full disk)
never leaves a half-written video under the real name; a process terminated mid-download
removes it too (partials.py).  New files get the umask's mode; overwriting a file keeps its
mode.  The request carries no API key: result URLs are signed, and a key sent to a CDN
would be a key leaked.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Callable

import requests

from . import partials
from .errors import DownloadError, ExpiredUrlError
from .snapshot import safe_url

__all__ = ["save_video", "target_path", "DEFAULT_MAX_BYTES", "already_saved"]

DEFAULT_MAX_BYTES = 2 * 1024**3  # a 10 s 1080p video is ~20 MB; 2 GB is far past any real one
_CHUNK = 1024 * 1024
_OK_TYPES = ("video/", "application/octet-stream", "binary/octet-stream", "application/mp4")
_saved: dict[tuple[str, str], str] = {}  # (task id, target) -> path, this process
_saved_lock = threading.Lock()
_session_local = threading.local()


def _session() -> requests.Session:
    # One keep-alive session per thread: requests sessions are not documented thread-safe.
    session = getattr(_session_local, "session", None)
    if session is None:
        session = requests.Session()
        session.headers["User-Agent"] = "runway_widgets/0.1"
        _session_local.session = session
    return session


def target_path(destination: str | os.PathLike[str], task_id: str) -> Path:
    """Where ``destination`` puts the video of ``task_id``.

    An existing directory, or a path ending in a separator, gets ``<task_id>.mp4`` inside
    it; anything else is taken as the file name.
    """
    text = os.fspath(destination)
    path = Path(text).expanduser()
    if path.is_dir() or text.endswith(("/", os.sep)):
        return path / f"{task_id}.mp4"
    return path


def already_saved(task_id: str, destination: str | os.PathLike[str]) -> Path | None:
    """The file a previous save of this task to this destination produced, if it is still there."""
    target = target_path(destination, task_id)
    with _saved_lock:
        known = _saved.get((task_id, str(target)))
    if known and Path(known).is_file() and Path(known).stat().st_size > 0:
        return Path(known)
    # A task-named file in a folder can only be this task's video: a re-run of the cell
    # (or a new process) need not fetch it again.
    if target.name == f"{task_id}.mp4" and target.is_file() and target.stat().st_size > 0:
        return target
    return None


def save_video(
    url: str,
    destination: str | os.PathLike[str],
    task_id: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: tuple[float, float] = (10.0, 60.0),
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Download ``url`` to ``destination`` and return the final path.

    ``should_stop`` is asked between chunks: once it says True (the watch was stopped or
    interrupted) the download ends with :class:`DownloadError` and leaves no file.

    Raises
    ------
    ExpiredUrlError
        The signed URL answered 403, 404 or 410: poll the task for a fresh one.
    DownloadError
        Anything else: not a video, too large, a broken connection, any file-system error
        (a folder that cannot be written, a full disk).
    """
    if safe_url(url) is None:
        raise DownloadError("Refusing to download from a URL that is not plain http(s).")
    try:
        return _save(url, destination, task_id, max_bytes, timeout, should_stop)
    except OSError as exc:
        # A file-system surprise anywhere (a folder we may not list, a path that vanished):
        # still a DownloadError with a sentence, never a traceback in a worker thread.
        raise DownloadError(f"Cannot save to {os.fspath(destination)} ({_reason(exc)}).") from None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _save(url: str, destination: str | os.PathLike[str], task_id: str, max_bytes: int,
          timeout: tuple[float, float], should_stop: Callable[[], bool] | None) -> Path:
    previous = already_saved(task_id, destination)
    if previous is not None:
        return previous
    target = target_path(destination, task_id)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"Cannot create the folder {target.parent} ({_reason(exc)}).") from None
    try:
        response = _session().get(url, stream=True, timeout=timeout, allow_redirects=True)
    except requests.RequestException as exc:
        raise DownloadError(f"Could not download the video ({type(exc).__name__}).") from None
    with response:
        _check_response(response, max_bytes)
        partials.arm()  # watch(save=...) armed it already; this covers a direct call
        try:
            # Registered for removal if the process is terminated mid-download; created
            # 0666 minus the umask (mkstemp's 0600 would make every saved video private).
            fd, tmp_name = partials.create_partial(target.parent, target.name)
        except OSError as exc:
            raise DownloadError(f"Cannot write into the folder {target.parent} ({_reason(exc)}).") from None
        written = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in response.iter_content(chunk_size=_CHUNK):
                    if should_stop is not None and should_stop():
                        raise DownloadError("The download was stopped; nothing was saved.")
                    written += len(chunk)
                    if written > max_bytes:
                        raise DownloadError(f"The video is larger than the {max_bytes:,}-byte limit.")
                    out.write(chunk)
            expected = response.headers.get("Content-Length", "")
            if expected.isdigit() and "Content-Encoding" not in response.headers and int(expected) != written:
                raise DownloadError(f"The download stopped after {written:,} of {int(expected):,} bytes.")
            if should_stop is not None and should_stop():  # stopped during the last chunk
                raise DownloadError("The download was stopped; nothing was saved.")
            _keep_mode(target, tmp_name)
            os.replace(tmp_name, target)
        except requests.RequestException:
            # Say how much arrived, not the library's exception name (ChunkedEncodingError...).
            declared = response.headers.get("Content-Length", "")
            of = f" of {int(declared):,}" if declared.isdigit() and "Content-Encoding" not in response.headers else ""
            raise DownloadError(f"The download broke off after {written:,}{of} bytes (the connection was cut); "
                                "nothing was saved.") from None
        except OSError as exc:
            raise DownloadError(f"Cannot write {target} ({_reason(exc)}).") from None
        finally:
            # Whatever happened (including Ctrl-C), no half-written file stays behind.
            partials.discard(tmp_name)
    with _saved_lock:
        _saved[(task_id, str(target))] = str(target)
    return target


def _keep_mode(target: Path, tmp_name: str) -> None:
    """Overwriting a file keeps its permission bits (a new file keeps the umask's)."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return
    os.chmod(tmp_name, mode)


def _check_response(response: requests.Response, max_bytes: int) -> None:
    if response.status_code in (403, 404, 410):
        raise ExpiredUrlError(f"The result URL answered HTTP {response.status_code}; it has probably expired.")
    if not 200 <= response.status_code < 300:
        raise DownloadError(f"The result URL answered HTTP {response.status_code}.")
    ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if ctype and not ctype.startswith(_OK_TYPES):
        raise DownloadError(f"The result URL served {ctype!r}, not a video.")
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise DownloadError(f"The video is {int(length):,} bytes, over the {max_bytes:,}-byte limit.")

"""Where a card's player gets its video: the one place that decides.

In order: a small file we saved is embedded as a ``data:`` URI (the notebook then carries the
video and plays it anywhere, long after the signed URL and the demo simulator are gone);
else the saved file, by a path relative to the working directory (a notebook saved beside
it plays it); else the service's URL.  The live card and the static card both ask here,
so they never disagree.
"""

from __future__ import annotations

import base64
import functools
import os
from typing import NamedTuple
from urllib.parse import quote

from ..updates import WatchUpdate

__all__ = ["EMBED_LIMIT", "VideoSource", "video_source", "local_href"]

EMBED_LIMIT = 2 * 1024 * 1024  # saved videos up to this size are embedded, so the notebook carries them


class VideoSource(NamedTuple):
    """A player's ``src`` (not yet escaped for an attribute) and whether it is the embedded bytes."""

    src: str
    embedded: bool


def local_href(path: str) -> str:
    """A relative URL for a saved file, so a saved notebook beside it can play or link it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        rel = path
    return quote(rel.replace(os.sep, "/"))


@functools.lru_cache(maxsize=8)
def _data_uri(path: str, size: int, mtime: float) -> str:
    # Cached: the live card and the final static card both need it (size and mtime in the
    # key, so a rewritten file is read again).
    with open(path, "rb") as handle:
        return "data:video/mp4;base64," + base64.b64encode(handle.read()).decode("ascii")


def _embedded(path: str) -> str | None:
    """The saved file as a data URI if it exists and is small enough, else None."""
    try:
        stat = os.stat(path)
    except OSError:  # moved or deleted since it was saved
        return None
    if not os.path.isfile(path) or stat.st_size > EMBED_LIMIT:
        return None
    # Our own bytes from disk, not a server-provided URL: a data: URI is safe here.
    return _data_uri(path, stat.st_size, stat.st_mtime)


def video_source(update: WatchUpdate, remote_url: str, embed: bool = True) -> VideoSource:
    """The source for ``update``'s player: embedded copy, else saved file, else ``remote_url``.

    ``remote_url`` is the service's URL, already checked by
    :func:`~runway_widgets.snapshot.safe_url`; ``embed=False`` (no player shown) skips reading
    the file.
    """
    path = update.saved_path
    if not path:
        return VideoSource(remote_url, False)
    data = _embedded(path) if embed else None
    if data is not None:
        return VideoSource(data, True)
    # A saved copy outlives the signed URL (which expires within a day or two).
    return VideoSource(local_href(path), False)

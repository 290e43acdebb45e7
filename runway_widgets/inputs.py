"""Input images for a create call: a URL as it is, a local file as a data URI.

Runway accepts an image as an HTTPS URL (up to 16 MB) or inline as a data URI (at most
5 MB); a local file is read, checked by its first bytes (PNG, JPEG, WebP or GIF) and
encoded.  Nothing here touches the network.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from .config import is_loopback_host
from .errors import ConfigError

__all__ = ["ImageInput", "load_image", "DATA_URI_MAX", "THUMB_INLINE_MAX", "media_url"]

DATA_URI_MAX = 5 * 1000 * 1000  # Runway: an image given as a data URI is at most 5 MB
THUMB_INLINE_MAX = 256 * 1024  # a larger inline image is not copied into the card's thumbnail
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
               (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))
_DATA_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")


@dataclass(frozen=True)
class ImageInput:
    """An image ready for a create body.

    Attributes
    ----------
    uri:
        What goes into the body: the URL, or a ``data:image/...;base64,...`` URI.
    label:
        What a caption says about it (the URL, or the file's name and size).
    thumbnail:
        A ``src`` for the card's thumbnail, or None when too large to copy into the notebook.
    """

    uri: str
    label: str
    thumbnail: str | None


def _sniff(head: bytes) -> str | None:
    for signature, mime in _SIGNATURES:
        if head.startswith(signature):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def media_url(value: str, name: str) -> str:
    """An http(s) URL for an input Runway fetches: https, or http on this machine (the simulator)."""
    text = value.strip()
    if any(ord(ch) < 32 or ch.isspace() for ch in text):
        raise ConfigError(f"The {name} URL contains spaces or control characters.")
    parts = urlsplit(text)
    if parts.scheme == "https" and parts.hostname:
        return text
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return text
    if parts.scheme == "http":
        raise ConfigError(f"The {name} URL must be https:// (Runway fetches only HTTPS URLs).")
    local = " or a local file" if name == "image" else ""  # only images are read from disk and sent inline
    raise ConfigError(f"The {name} must be an https:// URL{local}.")


def _size_words(count: int) -> str:
    return f"{count / 1_000_000:.1f} MB" if count >= 100_000 else f"{count / 1000:.0f} KB"


def _from_data_uri(text: str) -> ImageInput:
    head, _, payload = text.partition(",")
    mime = head[5:].split(";", 1)[0].lower()
    if mime not in _DATA_TYPES or not head.endswith(";base64") or not payload:
        raise ConfigError("An inline image must be a base64 data URI of a PNG, JPEG, WebP or GIF image.")
    if len(text) > DATA_URI_MAX:
        raise ConfigError(f"The inline image is {_size_words(len(text))}; Runway takes at most 5 MB inline, "
                          "so pass an https:// URL instead.")
    return ImageInput(text, f"inline {mime[6:].upper()} image", text if len(text) <= THUMB_INLINE_MAX else None)


def load_image(value: object) -> ImageInput:
    """An image for a create body from an https URL, a data URI or a local file path.

    Raises :class:`ConfigError` with one sentence for a missing or unreadable file, a file
    that is not a PNG/JPEG/WebP/GIF image, or one larger than Runway's 5 MB inline limit.
    """
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("The image must be an https:// URL or the path of a local image file.")
    text = value.strip()
    if text.startswith("data:"):
        return _from_data_uri(text)
    if "://" in text:
        url = media_url(text, "image")
        return ImageInput(url, url, url)
    path = os.path.expanduser(text)
    if not os.path.exists(path):
        raise ConfigError(f"The image file {text!r} does not exist.")
    if not os.path.isfile(path):
        raise ConfigError(f"The image {text!r} is not a file.")
    size = os.path.getsize(path)
    encoded = 4 * ((size + 2) // 3) + len("data:image/jpeg;base64,")
    if encoded > DATA_URI_MAX:
        raise ConfigError(f"The image file {os.path.basename(path)!r} is {_size_words(size)}, {_size_words(encoded)} "
                          "as a data URI; Runway takes at most 5 MB inline, so shrink it or pass an https:// URL.")
    try:
        with open(path, "rb") as handle:
            data = handle.read(DATA_URI_MAX)
    except OSError as exc:
        raise ConfigError(f"The image file {text!r} could not be read ({exc.strerror or type(exc).__name__}).") from None
    mime = _sniff(data[:16])
    if mime is None:
        raise ConfigError(f"The file {os.path.basename(path)!r} is not a PNG, JPEG, WebP or GIF image.")
    uri = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
    label = f"{os.path.basename(path)} ({_size_words(size)})"
    return ImageInput(uri, label, uri if len(uri) <= THUMB_INLINE_MAX else None)

"""The simulated storage bucket: signed, expiring result URLs and Range downloads.

Runway's output URLs are signed and expire; fetching the task again yields fresh
ones. The simulator mints ``/media/<task_id>.mp4?exp=<unix>&sig=<hex>`` URLs,
refuses expired or forged ones with S3-style 403s, and serves either the bundled
``demo.mp4`` or a deterministic synthetic file of any size, streamed in chunks.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

from .responses import Response, s3_error

__all__ = [
    "DEMO_PATH",
    "CHUNK_SIZE",
    "MediaSigner",
    "RangeNotSatisfiable",
    "demo_bytes",
    "parse_range",
    "synthetic_chunks",
    "media_response",
]

DEMO_PATH = Path(__file__).resolve().parent / "media" / "demo.mp4"
CHUNK_SIZE = 1024 * 1024
#: Lifetime of URLs whose timeline has ``url_ttl=None``: far enough to be "never".
NEVER_TTL = 10 * 365 * 24 * 3600

_demo_lock = threading.Lock()
_demo_cache: list[bytes] = []

# Synthetic files repeat one seeded 64 KiB block, so any byte range can be
# produced on demand (random access for Range requests) without storing the file.
_BLOCK_SIZE = 65536
_BLOCK = random.Random(20240601).randbytes(_BLOCK_SIZE)


def demo_bytes() -> bytes:
    """Return the bundled demo.mp4 (read once, ~70 KB)."""
    with _demo_lock:
        if not _demo_cache:
            _demo_cache.append(DEMO_PATH.read_bytes())
        return _demo_cache[0]


class MediaSigner:
    """Mints and checks signed media URLs with a per-server random secret."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    def sign(self, task_id: str, exp: int) -> str:
        """Return the hex signature of (task_id, exp)."""
        message = f"{task_id}\n{exp}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def mint(self, base_url: str, task_id: str, ttl: float | None, now: float | None = None) -> str:
        """Return an absolute signed URL valid for at least ``ttl`` seconds.

        ``exp`` is whole Unix seconds rounded up, so a URL lives between ``ttl``
        and ``ttl + 1`` seconds.
        """
        now = time.time() if now is None else now
        exp = int(now + (NEVER_TTL if ttl is None else ttl)) + 1
        token = urllib.parse.quote(task_id, safe="")
        return f"{base_url}/media/{token}.mp4?exp={exp}&sig={self.sign(task_id, exp)}"

    def check(self, task_id: str, query: dict[str, list[str]], now: float | None = None) -> Response | None:
        """Return an S3-style 403 if the URL is unsigned, forged or expired, else None."""
        exp_values, sig_values = query.get("exp"), query.get("sig")
        if not exp_values or not sig_values:
            return s3_error(403, "AccessDenied", "Query-string authentication requires the exp and sig parameters")
        try:
            exp = int(exp_values[0])
        except ValueError:
            return s3_error(403, "AccessDenied", "Invalid date (should be seconds since epoch)")
        if not hmac.compare_digest(self.sign(task_id, exp), sig_values[0]):
            return s3_error(403, "SignatureDoesNotMatch",
                            "The request signature we calculated does not match the signature you provided.")
        if (time.time() if now is None else now) > exp:
            return s3_error(403, "AccessDenied", "Request has expired")
        return None


class RangeNotSatisfiable(Exception):
    """The Range header asks for bytes beyond the end of the file."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Parse a single ``bytes=`` range against a file of ``size`` bytes.

    Returns
    -------
    tuple of int or None
        Inclusive (first, last) byte positions, or None to serve the whole file
        (no header, a syntax error or several ranges: RFC 9110 lets a server
        ignore those).

    Raises
    ------
    RangeNotSatisfiable
        When the range is syntactically fine but starts past the end.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not dash or not (first_text.isdigit() or first_text == "") or not (last_text.isdigit() or last_text == ""):
        return None
    if first_text == "":
        if last_text == "":
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - suffix), size - 1
    first = int(first_text)
    last = size - 1 if last_text == "" else int(last_text)
    if last_text and last < first:
        return None
    if first >= size:
        raise RangeNotSatisfiable
    return first, min(last, size - 1)


def _synthetic_header(size: int) -> bytes:
    """An ``ftyp`` box then an ``mdat`` box header spanning the rest of the file."""
    ftyp = struct.pack(">I4s4sI8s", 24, b"ftyp", b"isom", 0x200, b"isomavc1")
    rest = size - len(ftyp)
    if rest <= 0xFFFFFFFF:
        mdat = struct.pack(">I4s", max(rest, 8), b"mdat")
    else:  # a 64-bit "largesize" box, as real files over 4 GiB use
        mdat = struct.pack(">I4sQ", 1, b"mdat", rest)
    return ftyp + mdat


def _synthetic_slice(size: int, start: int, length: int) -> bytes:
    """Bytes ``start .. start+length`` of the synthetic file of ``size`` bytes."""
    out = bytearray()
    pos, left = start, length
    while left > 0:
        offset = pos % _BLOCK_SIZE
        take = min(_BLOCK_SIZE - offset, left)
        out += _BLOCK[offset:offset + take]
        pos += take
        left -= take
    header = _synthetic_header(size)
    if start < len(header):
        overlap = min(len(header) - start, length)
        out[0:overlap] = header[start:start + overlap]
    return bytes(out)


def synthetic_chunks(size: int, first: int, last: int) -> Iterator[bytes]:
    """Yield bytes ``first..last`` (inclusive) of the synthetic file, 1 MiB at a time."""
    pos = first
    while pos <= last:
        length = min(CHUNK_SIZE, last - pos + 1)
        yield _synthetic_slice(size, pos, length)
        pos += length


def media_response(size: int, reader: Callable[[int, int], Iterator[bytes]], range_header: str | None,
                   etag: str) -> Response:
    """Answer a GET/HEAD for a file of ``size`` bytes, honouring a single Range.

    Parameters
    ----------
    size : int
        File size in bytes.
    reader : callable
        ``reader(first, last)`` yields the inclusive byte range.
    range_header : str or None
        The request's Range header.
    etag : str
        Entity tag, so clients can resume with confidence.
    """
    headers = [("Accept-Ranges", "bytes"), ("ETag", etag), ("Cache-Control", "private, max-age=3600")]
    try:
        span = parse_range(range_header, size)
    except RangeNotSatisfiable:
        response = s3_error(416, "InvalidRange", "The requested range is not satisfiable")
        response.headers.extend([("Content-Range", f"bytes */{size}"), ("Accept-Ranges", "bytes")])
        return response
    if span is None:
        status, (first, last) = 200, (0, size - 1)
    else:
        status, (first, last) = 206, span
        headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
    length = max(0, last - first + 1)
    return Response(status, content_type="video/mp4", headers=headers,
                    stream=lambda: reader(first, last) if length else iter(()), length=length)


def demo_reader(first: int, last: int) -> Iterator[bytes]:
    """Yield bytes ``first..last`` of demo.mp4."""
    data = demo_bytes()
    for pos in range(first, last + 1, CHUNK_SIZE):
        yield data[pos:min(pos + CHUNK_SIZE, last + 1)]

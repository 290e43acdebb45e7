"""When a signed result URL stops working, read from the URL itself (pure: no I/O, no clock).

Result URLs are signed and expire (Runway: within 24-48 h); fetching the task again mints
a fresh one.  Most signing schemes write the deadline into the query string, so a saved
card, a re-displayed card or the task journal can tell a dead link without trying it.
Anything this module does not understand is "unknown" (None): the caller then treats the
URL as possibly alive.
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlsplit

__all__ = ["url_expiry", "is_expired", "parse_time"]


def parse_time(value: object) -> float | None:
    """An ISO 8601 time (``Z`` or an offset; no offset means UTC) or unix seconds -> unix seconds."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        try:  # compact forms: 20261203T093342Z (AWS X-Amz-Date, Google X-Goog-Date)
            stamp = datetime.strptime(text.replace("+00:00", ""), "%Y%m%dT%H%M%S")
        except ValueError:
            return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


def url_expiry(url: str | None) -> float | None:
    """When a signed URL stops working (unix seconds), from its query; None when it does not say.

    Understood: ``exp=``/``expires=``/``Expires=`` (unix seconds: this simulator, CloudFront,
    S3 SigV2, many CDNs), ``X-Amz-Date`` + ``X-Amz-Expires`` (S3 SigV4), ``X-Goog-Date`` +
    ``X-Goog-Expires`` (GCS V4), ``se=`` (Azure SAS, ISO time), and an ``exp=`` inside an
    Akamai ``hdnts``/``__token__`` token.
    """
    if not url:
        return None
    try:
        query = parse_qsl(urlsplit(url).query, keep_blank_values=False)
    except ValueError:
        return None
    params = {name.lower(): value for name, value in query}
    for name in ("exp", "expires", "expiry", "expiration"):
        seconds = _unix(params.get(name))
        if seconds is not None:
            return seconds
    for prefix in ("x-amz", "x-goog"):
        start, ttl = parse_time(params.get(f"{prefix}-date")), params.get(f"{prefix}-expires")
        if start is not None and ttl and ttl.isdigit():
            return start + int(ttl)
    if "se" in params and "sig" in params:  # Azure: only with a signature is "se" an expiry
        return parse_time(params["se"])
    for name in ("hdnts", "__token__"):
        for part in params.get(name, "").split("~"):
            if part.startswith("exp="):
                return _unix(part[4:])
    return None


def _unix(value: str | None) -> float | None:
    if value and value.isdigit() and 9 <= len(value) <= 11:  # seconds between 2001 and 5138
        return float(value)
    return None


def is_expired(url: str | None, now: float, margin: float = 60.0) -> bool | None:
    """True if ``url`` has expired (or will within ``margin`` seconds), False if it is
    still good, None if the URL does not say."""
    deadline = url_expiry(url)
    if deadline is None:
        return None
    return now + margin >= deadline

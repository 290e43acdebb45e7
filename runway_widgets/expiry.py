"""When a signed result URL stops working, read from the URL itself (pure: no I/O, no clock).

Result URLs are signed and expire (Runway: within 24-48 h); fetching the task again mints
a fresh one.  Most signing schemes write the deadline into the query string, so a saved
card or the task journal can tell a dead link without trying it:

* ``exp=<unix seconds>`` (the simulator, several CDNs) and ``Expires=<unix seconds>``
  (CloudFront, Google Cloud Storage v2 signatures);
* ``X-Amz-Date=<YYYYMMDDTHHMMSSZ>`` plus ``X-Amz-Expires=<seconds>`` (S3 SigV4), and the
  ``X-Goog-Date``/``X-Goog-Expires`` pair (GCS v4);
* ``se=<ISO 8601>`` (Azure SAS).

Anything else is "unknown" (None): the caller then treats the URL as possibly alive.
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

__all__ = ["url_expires_at", "is_expired"]


def _first(query: dict[str, list[str]], *names: str) -> str | None:
    lowered = {k.lower(): v for k, v in query.items()}
    for name in names:
        values = lowered.get(name.lower())
        if values and values[0].strip():
            return values[0].strip()
    return None


def _unix(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    # Seconds since 1970, within reason (milliseconds would be 1000x too far out).
    return value if 1e9 <= value < 1e11 else None


def _compact_utc(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def _iso(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def url_expires_at(url: str | None) -> float | None:
    """Unix seconds after which ``url`` no longer works, or None if the URL does not say."""
    if not url:
        return None
    try:
        query = parse_qs(urlsplit(url).query)
    except ValueError:
        return None
    stamp = _unix(_first(query, "exp", "Expires"))
    if stamp is not None:
        return stamp
    for date_name, ttl_name in (("X-Amz-Date", "X-Amz-Expires"), ("X-Goog-Date", "X-Goog-Expires")):
        start, ttl = _compact_utc(_first(query, date_name)), _first(query, ttl_name)
        if start is not None and ttl is not None and ttl.isdigit():
            return start + int(ttl)
    return _iso(_first(query, "se"))


def is_expired(url: str | None, now: float, margin: float = 60.0) -> bool | None:
    """True if ``url`` has expired (or will within ``margin`` seconds), False if it is
    still good, None if the URL does not say."""
    deadline = url_expires_at(url)
    if deadline is None:
        return None
    return now + margin >= deadline

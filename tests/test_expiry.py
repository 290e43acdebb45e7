"""Reading a signed URL's deadline from its query string (pure, table-driven)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from runway_widgets.expiry import is_expired, url_expiry

T = datetime(2026, 12, 3, 10, 0, 0, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize("url, expected", [
    (f"http://127.0.0.1:8000/media/t.mp4?exp={int(T)}&sig=ab", T),                 # the simulator
    (f"https://d1.cloudfront.net/v.mp4?Expires={int(T)}&Signature=x&Key-Pair-Id=y", T),
    ("https://b.s3.amazonaws.com/v.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261203T090000Z"
     "&X-Amz-Expires=3600&X-Amz-Signature=z", T),
    ("https://storage.googleapis.com/b/v.mp4?X-Goog-Date=20261203T093000Z&X-Goog-Expires=1800", T),
    ("https://a.blob.core.windows.net/c/v.mp4?sv=2022&se=2026-12-03T10:00:00Z&sig=q", T),
    ("https://x.example/v.mp4?EXP=" + str(int(T)), T),                                # any case
    ("https://x.example/v.mp4", None),
    ("https://x.example/v.mp4?exp=soon", None),
    ("https://x.example/v.mp4?exp=1733220000000", None),                              # milliseconds: not trusted
    ("https://x.example/v.mp4?X-Amz-Date=yesterday&X-Amz-Expires=60", None),
    ("https://x.example/v.mp4?se=not-a-date", None),
    ("", None),
    (None, None),
    ("http://[::1/broken?exp=1", None),
])
def test_url_expiry(url: str | None, expected: float | None) -> None:
    assert url_expiry(url) == expected


def test_is_expired_with_margin() -> None:
    url = f"https://x.example/v.mp4?exp={int(T)}"
    assert is_expired(url, T - 3600) is False
    assert is_expired(url, T - 30) is True  # within the default 60 s margin
    assert is_expired(url, T + 1, margin=0) is True
    assert is_expired("https://x.example/v.mp4", T) is None

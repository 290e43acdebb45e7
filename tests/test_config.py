"""Input checks: task ids, base URLs, keys, and where settings come from."""

from __future__ import annotations

import pickle

import pytest

from runway_widgets.config import (
    DEFAULT_BASE_URL,
    Secret,
    check_key_transport,
    is_loopback_host,
    resolve_base_url,
    resolve_key,
    validate_base_url,
    validate_task_id,
)
from runway_widgets.errors import ConfigError


@pytest.mark.parametrize("good", ["3d957031-9a2a-45e2-9dc7-bc8513059c50", "  abc_123  ", "task.v1:7"])
def test_good_task_ids(good: str) -> None:
    assert validate_task_id(good) == good.strip()


@pytest.mark.parametrize(
    "bad, words",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc\x00def", "control"),
        ("abc\ndef", "control"),
        ("abc\x1b[31m", "control"),
        ("a b", "characters"),
        ("../../etc/passwd", "characters"),
        ("<script>", "characters"),
        ("x" * 500, "128"),
        (None, "string"),
        (12345, "string"),
    ],
)
def test_bad_task_ids(bad: object, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        validate_task_id(bad)


@pytest.mark.parametrize(
    "bad",
    ["", "api.cometapi.com", "ftp://api.cometapi.com", "javascript:alert(1)", "http://", "https://:80",
     "https://user:pw@api.cometapi.com", "https://api.cometapi.com?x=1", "https://host:99999", "https://a b.com"],
)
def test_bad_base_urls(bad: str) -> None:
    with pytest.raises(ConfigError):
        validate_base_url(bad)


def test_base_url_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMETAPI_BASE_URL", raising=False)
    assert resolve_base_url() == DEFAULT_BASE_URL
    monkeypatch.setenv("COMETAPI_BASE_URL", "http://127.0.0.1:9/")
    assert resolve_base_url() == "http://127.0.0.1:9"
    assert resolve_base_url("https://proxy.example/v1/") == "https://proxy.example/v1"


def test_key_resolution_and_secrecy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMETAPI_KEY", raising=False)
    assert resolve_key() is None
    monkeypatch.setenv("COMETAPI_KEY", "  fake-env-key  ")
    key = resolve_key()
    assert key is not None and key.reveal() == "fake-env-key"
    assert resolve_key("fake-explicit").reveal() == "fake-explicit"  # type: ignore[union-attr]
    for text in (repr(key), str(key), f"{key}", f"{key!r}", repr([key]), repr({"k": key})):
        assert "fake-env-key" not in text
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(ConfigError):
        resolve_key("has space")


@pytest.mark.parametrize("host, loop", [("127.0.0.1", True), ("127.3.4.5", True), ("localhost", True), ("::1", True),
                                        ("[::1]", True), ("10.0.0.1", False), ("example.com", False), ("", False)])
def test_loopback(host: str, loop: bool) -> None:
    assert is_loopback_host(host) is loop


def test_key_never_over_plain_http_to_remote_host() -> None:
    check_key_transport("http://127.0.0.1:8000")
    check_key_transport("https://api.cometapi.com")
    with pytest.raises(ConfigError, match="plain http"):
        check_key_transport("http://api.cometapi.com")


def test_secret_equality_does_not_leak() -> None:
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b") and hash(Secret("a")) == hash(Secret("a"))

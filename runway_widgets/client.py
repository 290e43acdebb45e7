"""The HTTP client: exactly one attempt per call, every outcome a snapshot or a typed error.

Retrying is the scheduler's job alone, so there is no retrying adapter here.  Every call
has explicit connect/read timeouts, an overall deadline and a cap on the answer's size.
The key travels only in the Authorization header of API calls, never on a redirect
(redirects are not followed) and never with a video download (that uses another session).
"""

from __future__ import annotations

import html
import json
import threading
import time
from typing import Any, Callable, Mapping
from urllib.parse import quote, quote_plus, urlsplit

import requests
import urllib3

from .config import (
    Secret,
    check_key_transport,
    resolve_base_url,
    resolve_key,
    validate_task_id,
)
from .errors import AuthenticationError, ConfigError, ProtocolError, TransportError
from .providers import RUNWAY, get_provider
from .recorder import record_created
from .responses import Answer, interpret_create, interpret_task
from .snapshot import TaskSnapshot, safe_url

__all__ = ["Client", "RUNWAY_VERSION"]

RUNWAY_VERSION = "2024-11-06"
_REDACTED = b"[redacted]"
_USER_AGENT = "runway_widgets/0.1 (+https://github.com/runway-widgets/runway_widgets)"


class _BearerAuth(requests.auth.AuthBase):
    """Adds the key at the last moment; an explicit auth also stops requests reading ~/.netrc."""

    def __init__(self, key: Secret) -> None:
        self._key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._key.reveal()}"
        return request

    def __repr__(self) -> str:
        return "<BearerAuth ***>"


# Hosts that have answered (anything at all) in this process: a host that never has is
# more likely a typo or no network than a gateway having a bad minute.
_answered: set[str] = set()


class Client:
    """Talks to CometAPI's Runway-compatible endpoints (or the built-in simulator).

    Parameters
    ----------
    api_key:
        The key; defaults to ``COMETAPI_KEY``.  Never shown in any repr, error or log.
    base_url:
        Defaults to ``COMETAPI_BASE_URL``, then ``https://api.cometapi.com``.
    connect_timeout, read_timeout:
        Seconds for the TCP connect and for each read of the answer.
    deadline:
        Seconds for the whole call, however slowly a server drips its bytes.
    max_response_bytes:
        Answers larger than this are refused (a feed answer is a few KB).
    feed:
        ``"runway"`` polls ``POST /runway/feed``; ``"official"`` polls
        ``GET /runwayml/v1/tasks/{id}``.  Both read the same task table.
        ``"runway_api"`` polls Runway's own ``GET /v1/tasks/{id}`` (set by ``provider="runway"``).
    provider:
        ``"cometapi"`` (the default) or ``"runway"``: Runway's own API, whose key comes from
        ``RUNWAYML_API_SECRET`` and base URL from ``RUNWAYML_BASE_URL``, else
        ``https://api.dev.runwayml.com``.
    """

    def __init__(
        self,
        api_key: str | Secret | None = None,
        base_url: str | None = None,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        deadline: float = 30.0,
        max_response_bytes: int = 1_000_000,
        feed: str = "runway",
        runway_version: str = RUNWAY_VERSION,
        wall_clock: Callable[[], float] = time.time,
        provider: str | None = None,
    ) -> None:
        chosen = get_provider(provider if provider is not None else ("runway" if feed == "runway_api" else None))
        if chosen is RUNWAY:
            feed = "runway_api"  # Runway's own API has one way to poll
        elif feed not in ("runway", "official"):
            raise ConfigError(f"feed must be 'runway' or 'official', not {feed!r}.")
        self.provider = chosen.name
        self.official_prefix = chosen.official_prefix
        self.base_url = resolve_base_url(base_url, chosen.base_url_env, chosen.default_base_url)
        key = resolve_key(api_key, chosen.key_env)
        if key is None:
            raise ConfigError(chosen.no_key("python"))
        check_key_transport(self.base_url)
        self._key = key
        self.feed = feed
        self.timeout = (float(connect_timeout), float(read_timeout))
        self.deadline = float(deadline)
        self.max_response_bytes = int(max_response_bytes)
        self._wall_clock = wall_clock
        self._session = requests.Session()
        if urlsplit(self.base_url).scheme == "http":
            # Plain http is allowed only to a loopback host (check_key_transport), but an
            # HTTP_PROXY/ALL_PROXY in the environment would carry the request -- key in
            # clear text -- to the proxy host instead.  Nothing from the environment
            # (proxies, netrc, CA bundles) is needed to reach this machine's own loopback.
            self._session.trust_env = False
        self._session.headers.update(
            {"X-Runway-Version": runway_version, "User-Agent": _USER_AGENT, "Accept": "application/json"}
        )
        self._auth = _BearerAuth(key)
        self._closed = threading.Event()

    # -- plumbing ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<Client {self.base_url} feed={self.feed}>"

    @property
    def key_fingerprint(self) -> int:
        """A process-local hash that tells two keys apart without revealing either."""
        return hash(self._key)

    def close(self) -> None:
        """Close pooled connections; the client must not be used afterwards."""
        self._closed.set()
        self._session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _scrub(self, data: bytes) -> bytes:
        # A hostile or buggy server may echo the Authorization header back: the key must
        # not survive into any error message, snapshot or log line built from the answer.
        # JSON may carry it escaped ('\\"', Go's '\\u003c', ...), which decoding would undo.
        # The forms are derived here, per answer (microseconds), rather than kept on the
        # client: a plain list of key bytes would show in vars(client) or a debugger.
        for form in _key_forms(self._key.reveal()):
            if form in data:
                data = data.replace(form, _REDACTED)
        return data

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Answer:
        """One attempt.  Returns the capped, scrubbed answer or raises TransportError/ProtocolError."""
        if self._closed.is_set():
            raise TransportError("The client was closed.")
        url = self.base_url + path
        host = urlsplit(url).netloc
        started = time.monotonic()
        # The error is raised after the except clauses, not in them: raised inside, it would
        # keep the requests exception as its (hidden) __context__, and that exception's
        # .request still carries the Authorization header.
        error: TransportError | None = None
        try:
            response = self._session.request(
                method,
                url,
                json=body,
                auth=self._auth,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.exceptions.SSLError:
            error = TransportError(f"TLS verification failed for {host}; the connection is not trusted.")
            error.transient = False
        except requests.exceptions.ConnectTimeout:
            error = TransportError(f"Timed out connecting to {host} after {self.timeout[0]:g} s.")
            error.unreached = host not in _answered
        except requests.exceptions.ReadTimeout:
            error = TransportError(f"{host} did not answer within {self.timeout[1]:g} s.")
        except requests.exceptions.ConnectionError as exc:
            error = TransportError(f"Could not reach {host} ({_reason(exc)}).")
            error.unreached = host not in _answered
        except requests.exceptions.RequestException as exc:
            error = TransportError(f"The request to {host} failed ({type(exc).__name__}).")
        if error is not None:
            raise error
        _answered.add(host)
        try:
            data = self._read_capped(response, host, started)
            headers = {k: self._scrub(v.encode("latin-1", "replace")).decode("latin-1") for k, v in response.headers.items()}
            return Answer(response.status_code, headers, self._scrub(data))
        finally:
            response.close()

    def _read_capped(self, response: requests.Response, host: str, started: float) -> bytes:
        cap = self.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise ProtocolError(f"{host} sent an answer of {int(declared):,} bytes; the limit is {cap:,}.", response.status_code)
        body = bytearray()
        # read1 returns whatever has arrived instead of blocking until 64 KB are in: a
        # server dripping a byte at a time then still meets the overall deadline.
        # (iter_content is the fallback for urllib3 < 2.1, which has no read1.)
        read1 = getattr(response.raw, "read1", None)
        chunks = (
            iter(lambda: read1(65536, decode_content=True) or b"", b"") if read1 is not None
            else response.iter_content(chunk_size=65536)
        )
        try:
            for chunk in chunks:
                body += chunk
                if len(body) > cap:
                    raise ProtocolError(f"{host} sent an answer larger than {cap:,} bytes.", response.status_code)
                if time.monotonic() - started > self.deadline:
                    raise TransportError(f"{host} took longer than {self.deadline:g} s to answer.")
        except (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError):
            raise TransportError(f"{host} stopped sending mid-answer for {self.timeout[1]:g} s.") from None
        except (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError):
            raise ProtocolError(f"{host} sent an answer that could not be decompressed.", response.status_code) from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError,
                urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransportError(f"The connection to {host} broke mid-answer ({_reason(exc)}).") from None
        return bytes(body)

    def _name_key(self, exc: AuthenticationError) -> AuthenticationError:
        """The error, naming the variable this provider's key comes from."""
        if self.provider == RUNWAY.name:
            exc.message = exc.message.replace("COMETAPI_KEY", RUNWAY.key_env)
        return exc

    # -- polling ----------------------------------------------------------------------------

    def fetch(self, task_id: str) -> TaskSnapshot:
        """Poll a task once through the configured feed and return its snapshot."""
        task_id = validate_task_id(task_id)
        if self.feed in ("official", "runway_api"):
            answer = self._request("GET", f"{self.official_prefix}tasks/{quote(task_id, safe='')}")
        else:
            answer = self._request("POST", "/runway/feed", {"task_id": task_id})
        try:
            return interpret_task(answer, task_id, self._wall_clock())
        except AuthenticationError as exc:
            raise self._name_key(exc) from None

    # -- creating ---------------------------------------------------------------------------

    def _create(self, path: str, fields: dict[str, Any], callback_url: str | None) -> str:
        if self.provider == RUNWAY.name:
            raise ConfigError(f"Runway's own API has no {path} route; use rw.generate() (or create_official()) instead.")
        callback = callback_url or ""
        if not callback.strip():
            raise ConfigError(
                "CometAPI requires a callback_url for create calls; pass callback_url='https://...' "
                "(any URL you control; polling does not use it)."
            )
        body = {"callback_url": _check_url(callback, "callback_url")}
        body.update({k: v for k, v in fields.items() if v is not None})
        task_id = interpret_create(self._request("POST", path, body), self._wall_clock())
        record_created(self, path, body, task_id)  # in the journal before anyone polls it
        return task_id

    def create_official(self, route: str, body: Mapping[str, Any]) -> str:
        """Create a task with a Runway-format body on an official route; returns its id.

        ``route`` is Runway's route name (``"image_to_video"``, ``"text_to_video"``,
        ``"video_to_video"``, ``"character_performance"``...): ``POST /runwayml/v1/<route>`` on
        CometAPI, ``POST /v1/<route>`` on Runway's own API.  No ``callback_url``; the answer is
        ``{"id": ...}``.  ``None`` values are left out of the body.
        """
        if not isinstance(route, str) or not route.replace("_", "").isalnum():
            raise ConfigError(f"Unknown create route {route!r}.")
        path = self.official_prefix + route
        clean = {k: v for k, v in body.items() if v is not None}
        try:
            task_id = interpret_create(self._request("POST", path, clean), self._wall_clock())
        except AuthenticationError as exc:
            raise self._name_key(exc) from None
        record_created(self, path, clean, task_id)  # in the journal before anyone polls it
        return task_id

    def create_text_to_video(
        self,
        prompt: str,
        *,
        callback_url: str | None = None,
        ratio: str | None = "16:9",
        style: str | None = None,
        model: str | None = None,
        seconds: int | None = None,
        motion_vector: Mapping[str, float] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """``POST /runway/pro/generate`` from a prompt; returns the new task id."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise ConfigError("A text-to-video task needs a non-empty prompt.")
        fields = {"prompt": prompt, "ratio": ratio, "style": style, "model": model, "options": _options(seconds, motion_vector)}
        return self._create("/runway/pro/generate", {**fields, **dict(extra or {})}, callback_url)

    def create_image_to_video(
        self,
        image: str,
        prompt: str = "",
        *,
        callback_url: str | None = None,
        ratio: str | None = "16:9",
        style: str | None = None,
        model: str | None = None,
        seconds: int | None = None,
        motion_vector: Mapping[str, float] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """``POST /runway/pro/generate`` with an ``image`` URL; returns the new task id."""
        fields = {
            "image": _check_url(image, "image"),
            "prompt": prompt or None,
            "ratio": ratio,
            "style": style,
            "model": model,
            "options": _options(seconds, motion_vector),
        }
        return self._create("/runway/pro/generate", {**fields, **dict(extra or {})}, callback_url)

    def create_video_to_video(
        self,
        video: str,
        prompt: str,
        *,
        callback_url: str | None = None,
        model: str | None = None,
        structure_transformation: float | None = None,
        flip: bool | None = None,
        seconds: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """``POST /runway/pro/video2video`` (style redraw); returns the new task id."""
        options = {"structure_transformation": structure_transformation, "flip": flip, "seconds": seconds}
        options = {k: v for k, v in options.items() if v is not None}
        fields = {"video": _check_url(video, "video"), "prompt": prompt, "model": model, "options": options or None}
        return self._create("/runway/pro/video2video", {**fields, **dict(extra or {})}, callback_url)

    def create_act_one(
        self,
        video: str,
        image: str,
        *,
        callback_url: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """``POST /runway/pro/act_one``: drive ``image``'s character with ``video``'s performance."""
        fields = {"video": _check_url(video, "video"), "image": _check_url(image, "image")}
        return self._create("/runway/pro/act_one", {**fields, **dict(extra or {})}, callback_url)


def _key_forms(key: str) -> list[bytes]:
    """The key as bytes, raw and as servers may escape it when echoing it, longest first."""
    ascii_json = json.dumps(key)[1:-1]
    forms = {
        key,
        json.dumps(key, ensure_ascii=False)[1:-1],
        ascii_json,
        ascii_json.replace("/", "\\/"),  # PHP-style escaped slashes
        ascii_json.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"),  # Go
        quote(key, safe=""),  # in a URL (a result URL "signed" with it)
        quote_plus(key, safe=""),
        html.escape(key),  # in an HTML error page
        html.escape(key, quote=False),
    }
    # A key shorter than 6 characters is no secret, and scrubbing it would mangle every
    # answer that happens to contain those letters.
    return sorted((form.encode("utf-8") for form in forms if len(form) >= 6), key=len, reverse=True)


def _options(seconds: int | None, motion_vector: Mapping[str, float] | None) -> dict[str, Any] | None:
    options: dict[str, Any] = {}
    if seconds is not None:
        if seconds not in (5, 10):
            raise ConfigError(f"seconds must be 5 or 10, not {seconds!r}.")
        options["seconds"] = seconds
    if motion_vector is not None:
        options["motion_vector"] = dict(motion_vector)
    return options or None


def _check_url(value: object, name: str) -> str:
    url = safe_url(value)
    if url is None:
        raise ConfigError(f"{name} must be an http(s) URL.")
    return url


def _reason(exc: BaseException) -> str:
    """A short, key-free reason for a requests/urllib3 connection error."""
    text = repr(exc).lower()
    for needle, words in (
        ("refused", "connection refused"),
        ("reset", "connection reset"),
        ("name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("temporary failure in name resolution", "DNS failure"),
        ("remotedisconnected", "the server closed the connection without answering"),
        ("incompleteread", "the answer was cut short"),
        ("timed out", "timed out"),
    ):
        if needle in text:
            return words
    return type(exc).__name__


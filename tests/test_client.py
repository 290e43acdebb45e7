"""The HTTP client against the real simulator over loopback sockets: forms, creates, typed errors, secrecy.

Nothing is mocked: every test sends real requests with ``requests`` and checks what the
simulator logged, so a client that retried, followed a redirect or leaked the key would
be caught by the request log, not by a stub.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import http.server
import json
import socket
import threading
import time
import tracemalloc
from typing import Any, Iterator

import pytest

from runway_widgets import Client
from runway_widgets.config import missing_key_help
from runway_widgets.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ProtocolError,
    RateLimitedError,
    RunwayWidgetsError,
    ServerError,
    TaskNotFoundError,
    TransportError,
)
from runway_widgets.simulator import RESULT_LOCATIONS, Fault, Simulator, Timeline
from runway_widgets.snapshot import TaskState
from helpers import FAKE_KEY, instant


HOOK = "https://example.com/hook"


def running(**changes: Any) -> Timeline:
    """Visible at once and running for a minute."""
    return Timeline(**{"invisible_for": 0, "submitted_for": 0, "queued_for": 0, "run_for": 60, **changes})


def assert_one_sentence(error: BaseException, key: str = FAKE_KEY) -> None:
    """An error message is one human sentence: no newline, no key, sensibly closed."""
    text = str(error)
    assert text and "\n" not in text and "\r" not in text, text
    assert text == text.strip()
    assert text[-1] in ".)…", text
    assert key not in text and key not in repr(error)


def raises(kind: type[RunwayWidgetsError], call: Any, *args: Any, **kwargs: Any) -> RunwayWidgetsError:
    with pytest.raises(kind) as info:
        call(*args, **kwargs)
    assert_one_sentence(info.value)
    return info.value


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- feed forms and result locations --------------------------------------------------------


@pytest.mark.parametrize("form", ["envelope", "bare"])
def test_feed_forms_parse_to_the_same_snapshot(sim: Simulator, client: Client, form: str) -> None:
    task = sim.add_task(FAKE_KEY, instant(form=form))
    snap = client.fetch(task)
    assert snap.task_id == task and snap.state is TaskState.SUCCEEDED and snap.status == "SUCCESS"
    assert snap.progress == 1.0
    assert snap.result_url is not None and snap.result_url.startswith(f"{sim.base_url}/media/{task}.mp4?")
    assert snap.action == "TEXT_TO_VIDEO"
    record = sim.requests_for(task)[-1]
    assert (record.method, record.path, record.status) == ("POST", "/runway/feed", 200)


def test_running_task_reports_progress(sim: Simulator, client: Client) -> None:
    task = sim.add_task(FAKE_KEY, running())
    time.sleep(0.1)
    snap = client.fetch(task)
    assert snap.state is TaskState.RUNNING and snap.status == "IN_PROGRESS"
    assert snap.progress is not None and 0.0 <= snap.progress < 1.0
    assert snap.result_url is None and not snap.is_terminal


def test_official_form(sim: Simulator) -> None:
    with Client(FAKE_KEY, sim.base_url, feed="official", read_timeout=5) as official:
        done = sim.add_task(FAKE_KEY, instant())
        snap = official.fetch(done)
        assert snap.state is TaskState.SUCCEEDED and snap.status == "SUCCEEDED"
        assert snap.result_url is not None and f"/media/{done}.mp4?" in snap.result_url
        failed = sim.add_task(FAKE_KEY, instant(outcome="FAILURE"))
        snap = official.fetch(failed)
        assert snap.state is TaskState.FAILED and snap.fail_code == "SAFETY.INPUT.TEXT"
        assert "moderation" in snap.fail_reason
        raises(TaskNotFoundError, official.fetch, "no-such-task")
    paths = {(r.method, r.path) for r in sim.requests}
    assert paths == {("GET", f"/runwayml/v1/tasks/{done}"), ("GET", f"/runwayml/v1/tasks/{failed}"),
                     ("GET", "/runwayml/v1/tasks/no-such-task")}


@pytest.mark.parametrize("location", RESULT_LOCATIONS)
def test_every_result_location(sim: Simulator, client: Client, location: str) -> None:
    task = sim.add_task(FAKE_KEY, instant(result_location=location))
    snap = client.fetch(task)
    assert snap.succeeded and not snap.rejected_url
    assert snap.result_url is not None and snap.result_url.startswith(f"{sim.base_url}/media/{task}.mp4?exp=")


def test_failure_and_cancel_fields(sim: Simulator, client: Client) -> None:
    failed = client.fetch(sim.add_task(FAKE_KEY, instant(outcome="FAILURE", fail_reason="Out of credits",
                                                         fail_code="INSUFFICIENT")))
    assert failed.state is TaskState.FAILED and failed.fail_reason == "Out of credits"
    assert failed.fail_code == "INSUFFICIENT" and failed.result_url is None
    cancelled = client.fetch(sim.add_task(FAKE_KEY, instant(outcome="CANCELLED")))
    assert cancelled.state is TaskState.CANCELLED and cancelled.is_terminal


def test_unsafe_result_url_is_rejected(sim: Simulator, client: Client) -> None:
    task = sim.add_task(FAKE_KEY, instant(result_url_override="javascript:alert(document.cookie)"))
    snap = client.fetch(task)
    assert snap.succeeded and snap.result_url is None and snap.rejected_url


# -- creating ---------------------------------------------------------------------------------


def test_create_all_four_forms(sim: Simulator, client: Client) -> None:
    sim.set_default_timeline(instant())
    made = {
        "TEXT_TO_VIDEO": client.create_text_to_video("a paper boat", callback_url=HOOK, style="cinematic",
                                                     model="gen4_turbo", seconds=5,
                                                     motion_vector={"x": 0.1, "y": 0, "z": 0, "r": 0}),
        "IMAGE_TO_VIDEO": client.create_image_to_video("https://example.com/cat.png", callback_url=HOOK),
        "VIDEO_TO_VIDEO": client.create_video_to_video("https://example.com/in.mp4", "make it anime",
                                                       callback_url=HOOK, structure_transformation=0.5, flip=True),
        "ACT_ONE": client.create_act_one("https://example.com/drive.mp4", "https://example.com/face.png",
                                         callback_url=HOOK),
    }
    assert len(set(made.values())) == 4
    for action, task in made.items():
        assert isinstance(task, str) and task.strip() == task and task
        snap = client.fetch(task)  # the new id is pollable with the same key
        assert snap.task_id == task and snap.action == action and snap.succeeded
    creates = [(r.path, r.status) for r in sim.requests if r.path.startswith("/runway/pro/")]
    assert creates == [("/runway/pro/generate", 200), ("/runway/pro/generate", 200),
                       ("/runway/pro/video2video", 200), ("/runway/pro/act_one", 200)]


@pytest.mark.parametrize(
    "method, args, kwargs, words",
    [
        ("create_text_to_video", ("a boat",), {}, "callback_url"),
        ("create_text_to_video", ("a boat",), {"callback_url": "   "}, "callback_url"),
        ("create_text_to_video", ("a boat",), {"callback_url": "ftp://example.com/hook"}, "callback_url"),
        ("create_text_to_video", ("",), {"callback_url": HOOK}, "prompt"),
        ("create_text_to_video", ("a boat",), {"callback_url": HOOK, "seconds": 7}, "seconds"),
        ("create_image_to_video", ("not a url",), {"callback_url": HOOK}, "image"),
        ("create_image_to_video", ("javascript:alert(1)",), {"callback_url": HOOK}, "image"),
        ("create_video_to_video", ("file:///etc/passwd", "p"), {"callback_url": HOOK}, "video"),
        ("create_act_one", ("https://example.com/v.mp4", 'https://x.com/"><script>'), {"callback_url": HOOK}, "image"),
        ("create_act_one", ("", "https://example.com/i.png"), {"callback_url": HOOK}, "video"),
    ],
)
def test_create_input_errors_never_reach_the_server(sim: Simulator, client: Client, method: str,
                                                    args: tuple, kwargs: dict, words: str) -> None:
    error = raises(ConfigError, getattr(client, method), *args, **kwargs)
    assert words in str(error)
    assert sim.requests == []


def test_create_errors_from_the_server(sim: Simulator, client: Client) -> None:
    # `extra` overrides checked fields, which lets the server's own checks be reached.
    error = raises(BadRequestError, client.create_text_to_video, "a boat", callback_url=HOOK,
                   extra={"callback_url": ""})
    assert "callback_url" in str(error) and error.status_code == 400  # type: ignore[attr-defined]
    error = raises(BadRequestError, client.create_video_to_video, "https://example.com/v.mp4", "p",
                   callback_url=HOOK, extra={"video": ""})
    assert "video is required" in str(error)
    error = raises(BadRequestError, client.create_act_one, "https://example.com/v.mp4", "https://example.com/i.png",
                   callback_url=HOOK, extra={"image": " "})
    assert "image is required" in str(error)
    assert [r.status for r in sim.requests] == [400, 400, 400]


def test_create_answer_shapes(sim: Simulator, client: Client) -> None:
    old_style = b'{"code":200,"msg":"\xe6\x88\x90\xe5\x8a\x9f","data":{"task_id":"older-form-id"},"exec_time":0.67}'
    sim.inject(Fault("custom", status=200, body=old_style, path="/runway/pro/generate"))
    assert client.create_text_to_video("a boat", callback_url=HOOK) == "older-form-id"
    sim.inject(Fault("custom", status=200, body=b'{"code":200,"msg":"success","data":{}}', path="/runway/pro/"))
    raises(ProtocolError, client.create_text_to_video, "a boat", callback_url=HOOK)
    sim.inject(Fault("custom", status=200, body=b'{"code":200,"data":{"task_id":""}}', path="/runway/pro/"))
    raises(ProtocolError, client.create_image_to_video, "https://example.com/i.png", callback_url=HOOK)
    sim.inject(Fault("rate_limit", retry_after="7", path="/runway/pro/"))
    error = raises(RateLimitedError, client.create_act_one, "https://e.com/v.mp4", "https://e.com/i.png",
                   callback_url=HOOK)
    assert error.retry_after == 7.0  # type: ignore[attr-defined]


# -- headers ----------------------------------------------------------------------------------


class _HeaderCapture(http.server.BaseHTTPRequestHandler):
    """Records each request's headers and answers with a finished task."""

    captured: list[dict[str, str]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).captured.append({k.lower(): v for k, v in self.headers.items()})
        body = json.dumps({"code": "success", "message": "", "data": {"task_id": "t1", "status": "SUCCESS",
                                                                      "progress": "100%"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def capture_server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    handler = type("Capture", (_HeaderCapture,), {"captured": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", handler.captured
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_headers_on_the_wire(capture_server: tuple[str, list[dict[str, str]]]) -> None:
    url, captured = capture_server
    with Client(FAKE_KEY, url, read_timeout=5) as c:
        assert c.fetch("t1").succeeded
    (headers,) = captured
    assert headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert headers["x-runway-version"] == "2024-11-06"
    assert headers["content-type"] == "application/json"


def test_simulator_sees_a_valid_bearer_key(client: Client) -> None:
    with Simulator(keys=[FAKE_KEY]) as strict, Client(FAKE_KEY, strict.base_url, read_timeout=5) as c:
        task = strict.add_task(FAKE_KEY, instant())
        assert c.fetch(task).succeeded
        assert c.create_text_to_video("a boat", callback_url=HOOK)
        assert all(r.auth_sent and r.key_ok for r in strict.requests) and len(strict.requests) == 2


# -- typed errors -------------------------------------------------------------------------------


def test_wrong_key_is_an_authentication_error(sim: Simulator) -> None:
    with Simulator(keys=["the-right-key-not-secret"]) as strict, Client(FAKE_KEY, strict.base_url) as c:
        error = raises(AuthenticationError, c.fetch, "some-task")
        assert error.status_code == 401 and not error.transient  # type: ignore[attr-defined]
        assert "COMETAPI_KEY" in str(error)
        (record,) = strict.requests
        assert record.auth_sent and not record.key_ok and record.status == 401


@pytest.mark.parametrize("status", [200, 400, 404, 500])
def test_task_not_exist_whatever_the_status(sim: Simulator, client: Client, status: int) -> None:
    body = b'{"code":"task_not_exist","message":"task_not_exist","data":null}'
    sim.inject(Fault("custom", status=status, body=body))
    error = raises(TaskNotFoundError, client.fetch, "abc-123")
    assert error.transient and "abc-123" in str(error)


def test_unknown_and_foreign_ids_are_not_found(sim: Simulator, client: Client) -> None:
    raises(TaskNotFoundError, client.fetch, "never-created")
    foreign = sim.add_task("someone-elses-key", instant())
    raises(TaskNotFoundError, client.fetch, foreign)
    invisible = sim.add_task(FAKE_KEY, instant(invisible_for=60))
    raises(TaskNotFoundError, client.fetch, invisible)
    assert [r.status for r in sim.requests] == [400, 400, 400]


def test_rate_limited_with_retry_after_seconds(sim: Simulator, client: Client) -> None:
    sim.inject(Fault("rate_limit", retry_after="12"))
    error = raises(RateLimitedError, client.fetch, "abc")
    assert error.retry_after == 12.0 and error.transient and error.status_code == 429  # type: ignore[attr-defined]


def test_rate_limited_with_retry_after_http_date(sim: Simulator, client: Client) -> None:
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=30)
    sim.inject(Fault("rate_limit", retry_after=email.utils.format_datetime(when, usegmt=True)))
    error = raises(RateLimitedError, client.fetch, "abc")
    assert 26.0 <= error.retry_after <= 31.0  # type: ignore[attr-defined]
    sim.inject(Fault("rate_limit"))  # no header at all
    assert raises(RateLimitedError, client.fetch, "abc").retry_after is None  # type: ignore[attr-defined]
    sim.inject(Fault("rate_limit", retry_after="soon-ish"))
    assert raises(RateLimitedError, client.fetch, "abc").retry_after is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("fault, words", [
    (Fault("server_error_json"), "HTTP 503, a JSON object"),
    (Fault("server_error_json", status=500), "HTTP 500"),
    (Fault("server_error_html"), "HTTP 502, an HTML page"),
    (Fault("server_error_html", status=504), "504 Gateway Time-out"),
    (Fault("server_error_html", status=524), "HTTP 524"),
])
def test_server_errors(sim: Simulator, client: Client, fault: Fault, words: str) -> None:
    sim.inject(fault)
    error = raises(ServerError, client.fetch, "abc")
    assert words in str(error) and error.transient


def test_refused_connection(closed_port: int) -> None:
    with Client(FAKE_KEY, f"http://127.0.0.1:{closed_port}", connect_timeout=2) as c:
        started = time.monotonic()
        error = raises(TransportError, c.fetch, "abc")
        assert "connection refused" in str(error) and error.transient
        assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("kind, words", [("reset", "broke mid-answer"), ("drop", "closed the connection")])
def test_broken_connections_are_one_attempt(sim: Simulator, client: Client, kind: str, words: str) -> None:
    task = sim.add_task(FAKE_KEY, instant())
    sim.inject(Fault(kind))
    error = raises(TransportError, client.fetch, task)
    assert words in str(error)
    assert len(sim.requests) == 1  # no hidden retry beneath the scheduler
    assert client.fetch(task).succeeded  # the client is fine afterwards


def test_slow_answer_past_the_read_timeout(sim: Simulator) -> None:
    with Client(FAKE_KEY, sim.base_url, read_timeout=0.4, deadline=5) as c:
        sim.inject(Fault("slow", delay=3.0))
        started = time.monotonic()
        error = raises(TransportError, c.fetch, "abc")
        elapsed = time.monotonic() - started
    assert "did not answer within 0.4 s" in str(error)
    assert 0.35 <= elapsed < 1.2


def test_dripping_answer_meets_the_overall_deadline() -> None:
    """A server that sends one byte every 0.2 s never trips the read timeout, only the deadline."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n")
            for _ in range(200):
                if stop.wait(0.2):
                    return
                try:
                    conn.sendall(b" ")
                except OSError:
                    return

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        with Client(FAKE_KEY, f"http://127.0.0.1:{listener.getsockname()[1]}", read_timeout=1, deadline=1.0) as c:
            started = time.monotonic()
            error = raises(TransportError, c.fetch, "abc")
            elapsed = time.monotonic() - started
        assert "longer than 1 s" in str(error)
        assert elapsed < 2.0  # not the 40 s the whole drip would take
    finally:
        stop.set()
        listener.close()
        thread.join(5)


@pytest.mark.parametrize("fault, words", [
    (Fault("malformed"), "not JSON"),
    (Fault("wrong_type"), "a JSON list"),
    (Fault("wrong_type", body=b'"SUCCESS"'), "a JSON string"),
    (Fault("wrong_type", body=b"42"), "a JSON number"),
    (Fault("wrong_type", body=b"null"), "JSON null"),
    (Fault("empty"), "an empty body"),
    (Fault("html200"), "an HTML page"),
    (Fault("custom", status=200, body=b'{"code":"success","data":"nothing here"}'), "holds no task"),
])
def test_malformed_answers_are_protocol_errors(sim: Simulator, client: Client, fault: Fault, words: str) -> None:
    sim.inject(fault)
    error = raises(ProtocolError, client.fetch, "abc")
    assert words in str(error) and error.transient


def test_huge_answer_is_refused_quickly_in_bounded_memory(sim: Simulator, client: Client) -> None:
    sim.inject(Fault("huge"))
    tracemalloc.start()
    started = time.monotonic()
    try:
        error = raises(ProtocolError, client.fetch, "abc")
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "10,485,760 bytes" in str(error) and "limit" in str(error)
    assert elapsed < 2.0 and peak < 3_000_000
    task = sim.add_task(FAKE_KEY, instant())
    assert client.fetch(task).succeeded  # the connection pool recovered


def test_redirect_is_not_followed_and_the_key_stays_home(sim: Simulator, client: Client) -> None:
    # The fault redirects to 127.0.0.2 on the same port: listen there to catch a follower.
    try:
        other = Simulator(host="127.0.0.2", port=sim.port).start()
    except OSError:
        pytest.skip("cannot bind 127.0.0.2 on this host")
    try:
        sim.inject(Fault("redirect"))
        error = raises(BadRequestError, client.fetch, "abc")
        assert "redirect" in str(error) and "127.0.0.2" in str(error) and not error.transient
        assert other.requests == []
        assert [r.status for r in sim.requests] == [302]
    finally:
        other.stop()


@pytest.mark.parametrize("key", [FAKE_KEY, 'test"key\\with-json-escapes-not-secret',
                                 "test-key-<&>/not-secret"])
def test_echoed_key_never_surfaces(sim: Simulator, key: str) -> None:
    with Client(key, sim.base_url, read_timeout=5) as c:
        sim.inject(Fault("echo_auth"))
        with pytest.raises(AuthenticationError) as info:
            c.fetch("abc")
        error = info.value
        assert_one_sentence(error, key)
        assert "[redacted]" in str(error)
        everything = " ".join([str(error), repr(error), repr(error.args), repr(vars(error)), repr(c), str(c)])
        assert key not in everything
        # Also when the key is echoed inside a task's fields.
        task = sim.add_task(key, instant(outcome="FAILURE", fail_reason=f"bad token {key}"))
        snap = c.fetch(task)
        assert key not in snap.fail_reason and key not in repr(snap) and key not in json.dumps(snap.as_dict())
        assert key not in repr(dict(snap.raw))


def test_closed_client_refuses_to_send(sim: Simulator) -> None:
    c = Client(FAKE_KEY, sim.base_url)
    c.close()
    raises(TransportError, c.fetch, "abc")
    assert sim.requests == []


# -- configuration --------------------------------------------------------------------------------


def test_missing_key(monkeypatch: pytest.MonkeyPatch, sim: Simulator) -> None:
    monkeypatch.delenv("COMETAPI_KEY", raising=False)
    for key in (None, "", "   "):
        error = raises(ConfigError, Client, key, sim.base_url)
        assert str(error) == missing_key_help("python")
    monkeypatch.setenv("COMETAPI_KEY", FAKE_KEY)
    with Client(None, sim.base_url) as from_env:
        task = sim.add_task(FAKE_KEY, instant())
        assert from_env.fetch(task).succeeded


@pytest.mark.parametrize("key", ["has space", "tab\tkey", "new\nline", "smart\u201cquote\u201d", "caf\u00e9"])
def test_bad_keys_are_config_errors(key: str) -> None:
    error = raises(ConfigError, Client, key, "http://127.0.0.1:9", )
    assert "key" in str(error) and key not in str(error)


@pytest.mark.parametrize("url", ["ftp://api.cometapi.com", "api.cometapi.com", "file:///etc/passwd",
                                 "javascript:alert(1)", "https://", "https://user:pw@api.cometapi.com"])
def test_base_url_must_be_http(url: str) -> None:
    raises(ConfigError, Client, FAKE_KEY, url)


@pytest.mark.parametrize("url", ["http://api.cometapi.com", "http://10.0.0.5:8080", "http://example.com/v1"])
def test_key_never_goes_over_plain_http_to_another_host(url: str) -> None:
    error = raises(ConfigError, Client, FAKE_KEY, url)
    assert "plain http" in str(error)


def test_env_base_url(monkeypatch: pytest.MonkeyPatch, sim: Simulator) -> None:
    monkeypatch.setenv("COMETAPI_BASE_URL", sim.base_url + "/")
    with Client(FAKE_KEY) as c:
        assert c.base_url == sim.base_url
        assert c.fetch(sim.add_task(FAKE_KEY, instant())).succeeded
    monkeypatch.setenv("COMETAPI_BASE_URL", "http://example.com")
    raises(ConfigError, Client, FAKE_KEY)


def test_unknown_feed_is_a_config_error(sim: Simulator) -> None:
    raises(ConfigError, Client, FAKE_KEY, sim.base_url, feed="websocket")


@pytest.mark.parametrize("task_id", ["", "   ", "abc def", "abc\tdef", "ab\ncd", "ab\rcd", "\x00abc", "abc\x1b[2J",
                                     "../../etc/passwd", "a" * 200, "id?x=1", "id/../x"])
@pytest.mark.parametrize("feed", ["runway", "official"])
def test_bad_task_ids_are_rejected_before_any_request(sim: Simulator, task_id: str, feed: str) -> None:
    with Client(FAKE_KEY, sim.base_url, feed=feed) as c:
        raises(ConfigError, c.fetch, task_id)
    assert sim.requests == []


def test_surrounding_whitespace_is_trimmed(sim: Simulator, client: Client) -> None:
    task = sim.add_task(FAKE_KEY, instant())
    assert client.fetch(f"  {task}  ").task_id == task
    assert sim.requests_for(task)[0].status == 200


def test_client_repr_is_short_and_keyless(sim: Simulator, client: Client) -> None:
    text = repr(client)
    assert FAKE_KEY not in text and "\n" not in text and sim.base_url in text
    assert FAKE_KEY not in repr(vars(client).get("_key")) and FAKE_KEY not in repr(client._auth)

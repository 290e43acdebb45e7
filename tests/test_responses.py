"""Pure tests: one HTTP answer in, a snapshot, a task id or a typed error out."""

from __future__ import annotations

import email.utils
import json

import pytest

from runway_widgets.errors import (
    AuthenticationError,
    BadRequestError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    TaskNotFoundError,
)
from runway_widgets.responses import Answer, interpret_create, interpret_task, parse_retry_after

NOW = 1_800_000_000.0
NOT_EXIST = json.dumps({"code": "task_not_exist", "message": "task_not_exist", "data": None}).encode()
GATEWAY = json.dumps({"error": {"code": "", "message": "invalid token (request id: 42)", "type": "comet_api_error"}}).encode()
HTML = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def answer(status: int, body: bytes | str | object, headers: dict | None = None) -> Answer:
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    return Answer(status, headers or {}, body)


def test_task_ok() -> None:
    snap = interpret_task(answer(200, {"code": "success", "data": {"task_id": "t1", "status": "QUEUED"}}), "t1", NOW)
    assert snap.status == "QUEUED"


@pytest.mark.parametrize("status", [400, 200, 404])
def test_task_not_exist_is_decided_on_the_body(status: int) -> None:
    with pytest.raises(TaskNotFoundError) as info:
        interpret_task(answer(status, NOT_EXIST), "t1", NOW)
    assert info.value.transient and "t1" in str(info.value)


@pytest.mark.parametrize(
    "status, body, kind, transient",
    [
        (401, GATEWAY, AuthenticationError, False),
        (403, GATEWAY, AuthenticationError, False),
        (429, GATEWAY, RateLimitedError, True),
        (500, GATEWAY, ServerError, True),
        (502, HTML, ServerError, True),
        (503, {"error": {"code": "model_not_found", "message": "no available channel (request id: 1)"}}, ServerError, True),
        (504, b"", ServerError, True),
        (524, HTML, ServerError, True),
        (400, GATEWAY, BadRequestError, False),
        (404, HTML, BadRequestError, False),
        (302, b"", BadRequestError, False),
        (200, HTML, ProtocolError, True),
        (200, b"", ProtocolError, True),
        (200, b'{"code":"success","data":{"task_id":', ProtocolError, True),
        (200, [1, 2, 3], ProtocolError, True),
        (200, "just a string", ProtocolError, True),
        (200, 42, ProtocolError, True),
        (200, None, ProtocolError, True),
        (200, {"code": "success", "data": None}, ProtocolError, True),
        (200, b"\xff\xfe garbage \x00", ProtocolError, True),
        (200, b"[" * 100_000, ProtocolError, True),
    ],
)
def test_task_errors(status: int, body: object, kind: type, transient: bool) -> None:
    payload = json.dumps(body).encode() if body is None else body
    with pytest.raises(kind) as info:
        interpret_task(answer(status, payload, {"Location": "http://elsewhere.example/"}), "t1", NOW)
    error = info.value
    assert error.transient is transient
    message = str(error)
    assert message and "\n" not in message and len(message) < 400
    assert message.endswith(".") or message.endswith(")")


def test_error_messages_name_the_body_kind() -> None:
    with pytest.raises(ServerError, match="HTML page"):
        interpret_task(answer(502, HTML), "t", NOW)
    with pytest.raises(ProtocolError, match="JSON list"):
        interpret_task(answer(200, [1]), "t", NOW)
    with pytest.raises(AuthenticationError, match="COMETAPI_KEY"):
        interpret_task(answer(401, GATEWAY), "t", NOW)


def test_retry_after_seconds_and_date() -> None:
    assert parse_retry_after("7", NOW) == 7
    assert parse_retry_after("1.5", NOW) == 1.5
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    assert parse_retry_after(date, NOW) == pytest.approx(30, abs=1)
    assert parse_retry_after(email.utils.formatdate(NOW - 30, usegmt=True), NOW) == 0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("", NOW) is None
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after("-4", NOW) == 0


def test_429_carries_retry_after() -> None:
    with pytest.raises(RateLimitedError) as info:
        interpret_task(answer(429, GATEWAY, {"Retry-After": "12"}), "t", NOW)
    assert info.value.retry_after == 12


def test_create_ok_integer_code_and_old_form() -> None:
    assert interpret_create(answer(200, {"code": 200, "message": "", "msg": "success", "data": {"task_id": "abc"}}), NOW) == "abc"
    old = {"code": 200, "msg": "成功", "data": {"task_id": "def"}, "exec_time": 0.67}
    assert interpret_create(answer(200, old), NOW) == "def"


@pytest.mark.parametrize(
    "status, body, kind",
    [
        (400, {"code": "callback_url_empty", "message": "callback_url_empty", "data": None}, BadRequestError),
        (200, {"code": 200, "data": {"task_id": ""}}, ProtocolError),
        (200, {"code": 200, "data": None}, ProtocolError),
        (200, {"code": "error", "message": "prompt too long"}, ProtocolError),
        (401, GATEWAY, AuthenticationError),
        (429, GATEWAY, RateLimitedError),
        (503, HTML, ServerError),
        (200, HTML, ProtocolError),
    ],
)
def test_create_errors(status: int, body: object, kind: type) -> None:
    with pytest.raises(kind):
        interpret_create(answer(status, body), NOW)


def test_server_text_is_cleaned_and_bounded() -> None:
    body = {"error": {"message": "line1\nline2\x00" + "x" * 5000}}
    with pytest.raises(ServerError) as info:
        interpret_task(answer(500, body), "t", NOW)
    assert "\n" not in str(info.value) and "\x00" not in str(info.value) and len(str(info.value)) < 400

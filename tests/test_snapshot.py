"""Table-driven tests of the pure task model: every feed form in docs/protocol.md, and garbage."""

from __future__ import annotations

import math

import pytest

from runway_widgets.snapshot import TaskState, is_terminal, parse_progress, parse_task, safe_url, state_from_status

TID = "3d957031-9a2a-45e2-9dc7-bc8513059c50"

ENVELOPE_QUEUED = {
    "code": "success",
    "message": "",
    "data": {
        "task_id": TID,
        "action": "IMAGE_TO_VIDEO",
        "status": "QUEUED",
        "fail_reason": "",
        "submit_time": 1773366766,
        "start_time": 0,
        "finish_time": 0,
        "progress": "0%",
        "data": {"id": TID, "status": "PENDING", "createdAt": "2026-03-13T09:52:46+08:00"},
    },
}


@pytest.mark.parametrize(
    "status, state",
    [
        ("NOT_START", TaskState.WAITING),
        ("SUBMITTED", TaskState.WAITING),
        ("QUEUED", TaskState.WAITING),
        ("PENDING", TaskState.WAITING),
        ("THROTTLED", TaskState.WAITING),  # Runway: waiting for a concurrency slot, not failed
        ("IN_PROGRESS", TaskState.RUNNING),
        ("RUNNING", TaskState.RUNNING),
        ("SUCCESS", TaskState.SUCCEEDED),
        ("SUCCEEDED", TaskState.SUCCEEDED),
        ("FAILURE", TaskState.FAILED),
        ("FAILED", TaskState.FAILED),
        ("CANCELLED", TaskState.CANCELLED),
        ("canceled", TaskState.CANCELLED),
        (" success ", TaskState.SUCCEEDED),
        ("UNKNOWN", TaskState.UNKNOWN),
        ("EXPIRED", TaskState.UNKNOWN),
        ("REFUNDED", TaskState.UNKNOWN),
        ("", TaskState.UNKNOWN),
        (None, TaskState.UNKNOWN),
        (True, TaskState.UNKNOWN),
        (["SUCCESS"], TaskState.UNKNOWN),
        ("0", TaskState.WAITING),
        ("2", TaskState.SUCCEEDED),
        (3, TaskState.FAILED),
    ],
)
def test_status_words(status: object, state: TaskState) -> None:
    assert state_from_status(status) is state
    assert is_terminal(status) == (state in (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED))


def test_only_three_states_are_terminal() -> None:
    assert {s for s in TaskState if s.is_terminal} == {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED}


@pytest.mark.parametrize(
    "value, expected",
    [
        ("45%", 0.45),
        ("0%", 0.0),
        ("100%", 1.0),
        (" 12.5 % ", 0.125),
        (45, 0.45),
        (1, 0.01),  # an int is a percentage
        (0.45, 0.45),  # a float at most 1 is a fraction (Runway's own API)
        (1.0, 1.0),
        (45.0, 0.45),
        ("0.45", 0.45),
        ("45", 0.45),
        ("150%", 1.0),
        (-5, 0.0),
        ("-5%", 0.0),
        (1e9, 1.0),
        ("abc", None),
        ("", None),
        (None, None),
        (True, None),
        ([45], None),
        ({"p": 1}, None),
        (float("nan"), None),
        (float("inf"), 1.0),
        ("nan", None),
    ],
)
def test_progress_values(value: object, expected: float | None) -> None:
    got = parse_progress(value)
    if expected is None:
        assert got is None
    else:
        assert got is not None and math.isclose(got, expected)


def test_envelope_queued() -> None:
    snap = parse_task(ENVELOPE_QUEUED)
    assert snap is not None
    assert snap.task_id == TID
    assert snap.state is TaskState.WAITING and snap.status == "QUEUED"
    assert snap.progress == 0.0 and snap.percent == 0
    assert snap.action == "IMAGE_TO_VIDEO"
    assert snap.submit_time == 1773366766 and snap.start_time is None and snap.finish_time is None
    assert snap.result_url is None and not snap.is_terminal
    assert snap.raw["data"]["task_id"] == TID
    with pytest.raises(TypeError):
        snap.raw["x"] = 1  # type: ignore[index]


def test_bare_task_object_is_accepted() -> None:
    snap = parse_task(ENVELOPE_QUEUED["data"])
    assert snap is not None and snap.task_id == TID and snap.status == "QUEUED"


def _success(**fields: object) -> dict:
    task = {"task_id": TID, "status": "SUCCESS", "progress": "100%", "fail_reason": "", "data": {}}
    task.update(fields)
    return {"code": "success", "data": task}


URL = "https://cdn.example.com/v/1.mp4?sig=abc"


@pytest.mark.parametrize(
    "payload",
    [
        _success(result_url=URL),
        _success(fail_reason=URL),  # older new-api stored the success URL in fail_reason
        _success(data={"id": TID, "status": "SUCCEEDED", "output": [URL]}),
        _success(data={"task_id": TID, "status": "2", "video_url": URL}),
        _success(data={"task_result": {"videos": [{"url": URL}]}}),
        {"id": TID, "status": "SUCCEEDED", "output": [URL], "progress": 1},  # Runway's own object
    ],
    ids=["result_url", "fail_reason", "runway-output", "reseller-video_url", "kling", "runway-bare"],
)
def test_result_url_from_every_place(payload: dict) -> None:
    snap = parse_task(payload)
    assert snap is not None and snap.succeeded and snap.result_url == URL and snap.progress == 1.0


def test_result_url_order_prefers_result_url() -> None:
    snap = parse_task(_success(result_url=URL, data={"output": ["https://other.example/x.mp4"]}))
    assert snap is not None and snap.result_url == URL


@pytest.mark.parametrize(
    "bad",
    [
        "javascript:alert(1)",
        "data:video/mp4;base64,AAAA",
        'https://x.example/a.mp4" onerror="alert(1)',
        "https://x.example/a b.mp4",
        "ftp://x.example/a.mp4",
        "//x.example/a.mp4",
        "https://",
        "https://x.example/<script>",
    ],
)
def test_unsafe_result_urls_are_refused(bad: str) -> None:
    assert safe_url(bad) is None
    snap = parse_task(_success(result_url=bad))
    assert snap is not None and snap.succeeded and snap.result_url is None and snap.rejected_url


def test_success_without_url() -> None:
    snap = parse_task(_success())
    assert snap is not None and snap.succeeded and snap.result_url is None and not snap.rejected_url


def test_failure_text_and_code() -> None:
    payload = {
        "code": "success",
        "data": {
            "task_id": TID,
            "status": "FAILURE",
            "fail_reason": "<b>nope</b>",
            "progress": "100%",
            "data": {"failure": "inner", "failureCode": "SAFETY.INPUT.TEXT"},
        },
    }
    snap = parse_task(payload)
    assert snap is not None and snap.state is TaskState.FAILED
    assert snap.fail_reason == "<b>nope</b>"  # kept verbatim: views escape it
    assert snap.fail_code == "SAFETY.INPUT.TEXT"
    assert snap.result_url is None


def test_runway_failure_fields_when_fail_reason_empty() -> None:
    snap = parse_task({"id": TID, "status": "FAILED", "failure": "Out of credits", "failureCode": "INTERNAL"})
    assert snap is not None and snap.fail_reason == "Out of credits" and snap.fail_code == "INTERNAL"


def test_cancelled() -> None:
    snap = parse_task({"id": TID, "status": "CANCELLED"})
    assert snap is not None and snap.state is TaskState.CANCELLED and snap.is_terminal


@pytest.mark.parametrize(
    "payload",
    [None, [], [1, 2, 3], "text", 42, {}, {"code": "success", "data": None}, {"error": {"message": "x"}}],
)
def test_payloads_without_a_task_give_none(payload: object) -> None:
    assert parse_task(payload) is None


@pytest.mark.parametrize(
    "task",
    [
        {"task_id": TID, "status": {"nested": 1}, "progress": [1], "submit_time": "soon", "action": 7},
        {"task_id": TID, "status": "IN_PROGRESS", "data": "not a dict", "progress": "45%"},
        {"task_id": 12345, "status": "IN_PROGRESS", "finish_time": -3, "start_time": float("nan")},
        {"task_id": TID, "status": "SUCCESS", "result_url": 17},
        {"task_id": TID, "status": "SUCCESS", "data": {"output": "not a list", "task_result": {"videos": []}}},
        {"task_id": TID, "status": "WEIRD_NEW_STATE", "brand_new_field": {"a": [1, 2]}},
        {"status": "IN_PROGRESS"},
    ],
)
def test_malformed_fields_never_raise(task: dict) -> None:
    snap = parse_task({"code": "success", "data": task}, task_id="asked-for")
    assert snap is not None
    assert snap.progress is None or 0.0 <= snap.progress <= 1.0
    assert snap.task_id


def test_milliseconds_timestamps_are_normalised() -> None:
    snap = parse_task({"task_id": TID, "status": "QUEUED", "submit_time": 1773366766000})
    assert snap is not None and snap.submit_time == 1773366766


def test_long_server_text_is_bounded() -> None:
    snap = parse_task({"task_id": TID, "status": "FAILURE", "fail_reason": "x" * 100_000})
    assert snap is not None and len(snap.fail_reason) <= 2000


def test_as_dict_is_json_friendly() -> None:
    import json

    snap = parse_task(_success(result_url=URL))
    assert snap is not None
    data = json.loads(json.dumps(snap.as_dict()))
    assert data["status"] == "SUCCESS" and data["result_url"] == URL and data["progress"] == 1.0


def test_repr_does_not_dump_raw_payload() -> None:
    snap = parse_task(_success(result_url=URL, secret_looking_field="zzz"))
    assert "zzz" not in repr(snap)

"""Tests of runway_widgets.simulator, over real loopback HTTP (http.client, no mocks)."""

from __future__ import annotations

import ast
import http.client
import json
import math
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from runway_widgets.simulator import Fault, Simulator, Timeline, task_view
from runway_widgets.simulator.faults import HUGE_SIZE, FaultQueue
from runway_widgets.simulator.handler import MAX_BODY
from runway_widgets.simulator.media import DEMO_PATH, RangeNotSatisfiable, parse_range
from runway_widgets.simulator.render import feed_task
from helpers import instant

SIM_DIR = Path(__file__).resolve().parents[1] / "runway_widgets" / "simulator"
KEY = "sk-test-owner"
OTHER_KEY = "sk-test-intruder"


INSTANT = instant()
TERMINAL = ("SUCCESS", "FAILURE", "CANCELLED")


class Answer:
    """A fully read HTTP answer."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)

    def task(self) -> dict[str, Any]:
        """The task object of a feed answer, whatever the form."""
        data: dict[str, Any] = self.json()
        return data["data"] if "code" in data else data


def call(target: Simulator | str, method: str, path: str, body: Any = None, key: str | None = KEY,
         headers: dict[str, str] | None = None, timeout: float = 5.0, raw: bytes | None = None) -> Answer:
    """Send one request on a fresh connection; ``path`` may be an absolute URL."""
    base = target.base_url if isinstance(target, Simulator) else target
    url = urllib.parse.urlsplit(path if path.startswith("http") else base + path)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=timeout)
    try:
        send_headers = dict(headers or {})
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if payload is not None:
            send_headers.setdefault("Content-Type", "application/json")
        if key is not None:
            send_headers["Authorization"] = f"Bearer {key}"
        target_path = url.path + (f"?{url.query}" if url.query else "")
        conn.request(method, target_path, body=payload, headers=send_headers)
        resp = conn.getresponse()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def feed(sim: Simulator, task_id: str, key: str = KEY, **kw: Any) -> Answer:
    return call(sim, "POST", "/runway/feed", {"task_id": task_id}, key=key, **kw)


def create(sim: Simulator | str, path: str = "/runway/pro/generate", key: str | None = KEY,
           **fields: Any) -> Answer:
    body = {"callback_url": "https://example.com/hook", "prompt": "a red fox in snow"}
    body.update(fields)
    return call(sim, "POST", path, {k: v for k, v in body.items() if v is not None}, key=key)


def poll_until_terminal(sim: Simulator, task_id: str, limit: float = 5.0) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        answer = feed(sim, task_id)
        if answer.status == 200:
            seen.append(answer.task())
            if seen[-1]["status"] in TERMINAL:
                return seen
        time.sleep(0.05)
    raise AssertionError(f"task never finished: {seen[-1:] }")


@pytest.fixture()
def sim() -> Any:
    with Simulator(default_timeline=INSTANT) as simulator:
        yield simulator


# ------------------------------------------------------------ pure timeline
def test_task_view_phases_of_the_default_timeline() -> None:
    t = Timeline()  # invisible 0.5, then submitted 0.5, queued 1, run 3: done at 5 s
    assert task_view(t, 0.4)["visible"] is False
    assert task_view(t, 0.6)["status"] == "SUBMITTED"
    queued = task_view(t, 1.2)
    assert (queued["status"], queued["runway_status"], queued["progress"]) == ("QUEUED", "PENDING", "0%")
    running = task_view(t, 3.5)
    assert (running["status"], running["runway_status"], running["progress"]) == ("IN_PROGRESS", "RUNNING", "50%")
    assert running["runway_progress"] == pytest.approx(0.5) and running["start_offset"] == 2.0
    assert task_view(t, 4.9)["status"] == "IN_PROGRESS"
    done = task_view(t, 5.0)
    assert (done["status"], done["runway_status"], done["progress"], done["succeeded"]) == (
        "SUCCESS", "SUCCEEDED", "100%", True)
    assert task_view(Timeline(not_start_for=1, invisible_for=0), 0.5)["status"] == "NOT_START"
    assert task_view(Timeline(invisible_for=math.inf), 1e9)["visible"] is False
    assert task_view(Timeline(run_for=1.0), 2.9)["progress"] == "90%"
    assert task_view(Timeline(run_for=1.0), 2.9999)["progress"] == "99%"  # never 100% before the end


def test_refresh_period_quantises_status_and_progress() -> None:
    t = Timeline(invisible_for=0, submitted_for=1, queued_for=1, run_for=30, refresh_period=15)
    assert task_view(t, 0.0)["status"] == "SUBMITTED"
    # Real time is deep into the run, but the gateway has not refreshed since t=0.
    assert task_view(t, 14.9)["status"] == "SUBMITTED"
    at_15 = task_view(t, 15.0)
    assert at_15["status"] == "IN_PROGRESS" and at_15["progress"] == "43%"
    assert task_view(t, 29.9)["progress"] == "43%"
    assert task_view(t, 30.0)["progress"] == "93%"
    assert task_view(t, 44.9)["status"] == "IN_PROGRESS"  # finished upstream at 32 s
    assert task_view(t, 45.0)["status"] == "SUCCESS"
    assert task_view(Timeline(invisible_for=2, refresh_period=15), 1.0)["visible"] is False


def test_refresh_phase_shifts_the_ticks() -> None:
    # The gateway's last tick was 4 s before creation: ticks at 11, 26, ... s after it.
    t = Timeline(invisible_for=0, submitted_for=1, queued_for=1, run_for=30, refresh_period=15, refresh_phase=4)
    assert task_view(t, 10.9)["status"] == "SUBMITTED"
    assert task_view(t, 11.0)["status"] == "IN_PROGRESS" and task_view(t, 11.0)["progress"] == "30%"
    assert task_view(t, 25.9)["progress"] == "30%" and task_view(t, 26.0)["progress"] == "80%"
    assert task_view(t, 40.9)["status"] == "IN_PROGRESS" and task_view(t, 41.0)["status"] == "SUCCESS"


def test_simulator_refresh_loop_is_shared_by_its_tasks() -> None:
    # Two tasks created apart tick at the same moments: one loop, one phase for the gateway.
    with Simulator(default_timeline=Timeline.fast(), refresh_period=20.0, refresh_phase=3.0) as sim:
        assert sim.refresh_phase == 3.0
        first = sim.add_task("sk-test-123")
        time.sleep(0.05)
        second = sim.add_task("sk-test-123")
        phases = [sim._tasks[i].timeline.refresh_phase for i in (first, second)]
        created = [sim._tasks[i].created_mono for i in (first, second)]
        assert all(sim._tasks[i].timeline.refresh_period == 20.0 for i in (first, second))
        ticks = [(c - p) % 20.0 for c, p in zip(created, phases)]  # a tick, modulo the period
        def apart(a: float, b: float) -> float:  # distance on the 20 s circle
            return min((a - b) % 20.0, (b - a) % 20.0)

        assert apart(ticks[0], ticks[1]) < 1e-6 and apart(ticks[0], sim._epoch + 3.0) < 1e-6
    randoms = {Simulator(refresh_period=20.0).refresh_phase for _ in range(5)}
    assert len(randoms) > 1 and all(0 <= p < 20 for p in randoms)
    with pytest.raises(ValueError, match="refresh_period"):
        Simulator(refresh_period=-1.0)


@pytest.mark.parametrize(("style", "running", "done"), [
    ("percent", "50%", "100%"), ("jump", "0%", "100%"), ("fraction", 0.5, 1.0), ("int", 50, 100),
])
def test_progress_styles(style: str, running: Any, done: Any) -> None:
    t = Timeline(invisible_for=0, submitted_for=0, queued_for=0, run_for=2, progress_style=style)
    assert task_view(t, 1.0)["progress"] == running
    assert task_view(t, 2.0)["progress"] == done


def test_progress_none_and_values() -> None:
    t = Timeline(invisible_for=0, submitted_for=0, queued_for=0, run_for=2, progress_style="none")
    assert "progress" not in task_view(t, 1.0) and "progress" not in task_view(t, 5.0)
    values = ("abc", "150%", -5, None, 0.45)
    t = Timeline(invisible_for=0, submitted_for=0, queued_for=0, run_for=2, progress_style="values",
                 progress_values=values)
    assert [task_view(t, 1.0, poll_index=i)["progress"] for i in range(6)] == [*values, "abc"]


def test_early_failure_extra_status_and_after_terminal() -> None:
    t = Timeline(invisible_for=0, submitted_for=0, queued_for=2, run_for=10, fail_at=1,
                 extra_status="THROTTLED", after_terminal="IN_PROGRESS")
    assert task_view(t, 0.5)["status"] == "THROTTLED" and task_view(t, 0.5)["runway_status"] == "THROTTLED"
    assert task_view(t, 1.5)["status"] == "QUEUED"
    failed = task_view(t, 3.0)
    assert (failed["status"], failed["runway_status"], failed["failed"], failed["progress"]) == (
        "FAILURE", "FAILED", True, "100%")
    regressed = task_view(t, 3.0, terminal_seen=1)
    assert (regressed["status"], regressed["runway_status"], regressed["terminal"]) == ("IN_PROGRESS", "RUNNING", False)
    expired = task_view(Timeline(invisible_for=0, outcome="EXPIRED"), 10)
    assert (expired["status"], expired["runway_status"], expired["succeeded"]) == ("EXPIRED", "EXPIRED", False)


def test_timeline_validation_and_dict_round_trip() -> None:
    t = Timeline(invisible_for=math.inf, progress_style="values", progress_values=("x", 1), media_size=10)
    assert Timeline.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    assert Timeline.from_dict({"invisible_for": "inf"}).invisible_for == math.inf
    for bad in ({"nope": 1}, {"run_for": -1}, {"run_for": "3"}, {"progress_style": "x"}, {"form": "x"},
                {"result_location": "x"}, {"media_size": 1.5}, {"outcome": ""}):
        with pytest.raises(ValueError):
            Timeline.from_dict(bad)
    assert Timeline.fast().run_for == 1.0 and Timeline.demo().queued_for == 3.0


def test_fault_validation_and_queue_order() -> None:
    assert Fault.from_dict({"kind": "custom", "body": "[]", "retry_after": 2}) == Fault(
        "custom", body=b"[]", retry_after="2")
    for bad in ({"kind": "nope"}, {"kind": "drop", "count": 0}, {"kind": "drop", "extra": 1}, {}):
        with pytest.raises(ValueError):
            Fault.from_dict(bad)
    queue = FaultQueue()
    a, b = Fault("drop", count=2, path="/runway/feed"), Fault("empty", path="")
    queue.push(a)
    queue.push(b)
    assert queue.take("/runwayml/v1/tasks/x") is b
    assert [queue.take("/runway/feed") for _ in range(3)] == [a, a, None]


def test_parse_range() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-9", 100) == (0, 9)
    assert parse_range("bytes=90-", 100) == (90, 99)
    assert parse_range("bytes=-10", 100) == (90, 99)
    assert parse_range("bytes=50-500", 100) == (50, 99)
    assert parse_range("bytes=0-1,5-6", 100) is None
    assert parse_range("items=0-1", 100) is None
    assert parse_range("bytes=9-1", 100) is None
    for unsatisfiable in ("bytes=100-", "bytes=-0"):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(unsatisfiable, 100)


@pytest.mark.parametrize("location", ["result_url", "fail_reason", "output", "video_url", "kling"])
def test_render_puts_the_url_only_at_its_location(location: str) -> None:
    t = Timeline(invisible_for=0, result_location=location)
    obj = feed_task("id1", "TEXT_TO_VIDEO", 1700000000, task_view(t, 100), t, "https://cdn/x.mp4")
    assert json.dumps(obj).count("https://cdn/x.mp4") == 1


# ------------------------------------------------------------- create API
@pytest.mark.parametrize(("path", "fields", "action"), [
    ("/runway/pro/generate", {}, "TEXT_TO_VIDEO"),
    ("/runway/pro/generate", {"image": "https://example.com/a.png", "prompt": None}, "IMAGE_TO_VIDEO"),
    ("/runway/pro/video2video", {"video": "https://example.com/a.mp4"}, "VIDEO_TO_VIDEO"),
    ("/runway/pro/act_one", {"video": "https://example.com/a.mp4", "image": "https://e.com/c.png"}, "ACT_ONE"),
])
def test_create_all_forms(sim: Simulator, path: str, fields: dict[str, Any], action: str) -> None:
    answer = create(sim, path, **fields)
    assert answer.status == 200 and answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert (body["code"], body["msg"]) == (200, "success")
    task_id = body["data"]["task_id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", task_id)
    assert feed(sim, task_id).task()["action"] == action
    assert sim.requests_for(task_id)[0].path == path


@pytest.mark.parametrize(("path", "fields", "message"), [
    ("/runway/pro/generate", {"prompt": None}, "prompt is required"),
    ("/runway/pro/generate", {"prompt": 5}, "prompt is required"),
    ("/runway/pro/video2video", {}, "video is required"),
    ("/runway/pro/act_one", {"video": "https://example.com/a.mp4"}, "image is required"),
])
def test_create_missing_fields(sim: Simulator, path: str, fields: dict[str, Any], message: str) -> None:
    answer = create(sim, path, **fields)
    assert answer.status == 400
    error = answer.json()["error"]
    assert error["message"].startswith(message + " (request id: ") and error["type"] == "comet_api_error"


def test_create_errors(sim: Simulator) -> None:
    for callback in ("", None):
        answer = create(sim, callback_url=callback)
        assert answer.status == 400 and answer.json() == {
            "code": "callback_url_empty", "message": "callback_url_empty", "data": None}
    bad = call(sim, "POST", "/runway/pro/generate", raw=b"{not json")
    assert bad.status == 400 and "invalid request body" in bad.json()["error"]["message"]
    assert call(sim, "POST", "/runway/pro/generate", raw=b"[1]").status == 400
    big = call(sim, "POST", "/runway/pro/generate", raw=b" " * (MAX_BODY + 1))
    assert big.status == 413


def test_auth(sim: Simulator) -> None:
    for key in (None, "", "   "):
        answer = create(sim, key=key)
        assert answer.status == 401
        assert answer.json()["error"]["message"].startswith("invalid token (request id: ")
    assert call(sim, "POST", "/runway/feed", {"task_id": "x"}, key=None,
                headers={"Authorization": "Bearer"}).status == 401
    assert call(sim, "POST", "/runway/feed", {"task_id": "x"}, key=None,  # a bare key works, as in new-api
                headers={"Authorization": KEY}).status == 400
    with Simulator(keys={"sk-good"}, default_timeline=INSTANT) as strict:
        assert create(strict, key="sk-bad").status == 401
        assert create(strict, key="sk-good").status == 200
        record = strict.requests[0]
        assert record.status == 401 and record.key_ok is False and record.auth_sent is True
        assert "sk-bad" not in repr(strict.requests)


# --------------------------------------------------------------- feed API
def test_feed_goes_through_the_phases() -> None:
    with Simulator(default_timeline=Timeline.fast(submitted_for=0.25, queued_for=0.25, run_for=0.6)) as sim:
        task_id = create(sim).json()["data"]["task_id"]
        first = feed(sim, task_id)
        assert first.status == 400 and first.json() == {"code": "task_not_exist", "message": "task_not_exist",
                                                        "data": None}
        seen = poll_until_terminal(sim, task_id)
    statuses = [t["status"] for t in seen]
    order = ["SUBMITTED", "QUEUED", "IN_PROGRESS", "SUCCESS"]
    assert [s for s in order if s in statuses] == order
    assert statuses == sorted(statuses, key=order.index)
    running = [t for t in seen if t["status"] == "IN_PROGRESS"]
    assert all(re.fullmatch(r"\d+%", t["progress"]) and t["start_time"] > 0 for t in running)
    assert running[0]["data"]["status"] == "RUNNING" and 0 <= running[0]["data"]["progress"] < 1
    assert seen[0]["start_time"] == 0 and seen[0]["finish_time"] == 0
    done = seen[-1]
    assert done["progress"] == "100%" and done["finish_time"] >= done["start_time"] >= done["submit_time"]
    assert done["result_url"].startswith(sim.base_url + f"/media/{task_id}.mp4?exp=")
    assert done["data"]["status"] == "SUCCEEDED" and re.fullmatch(r"\d{4}-.*\+08:00", done["data"]["createdAt"])


def test_bare_form_and_unknown_ids(sim: Simulator) -> None:
    task_id = sim.add_task(KEY, Timeline(invisible_for=0, form="bare"))
    body = feed(sim, task_id).json()
    assert body["task_id"] == task_id and "code" not in body
    assert feed(sim, "no-such-task").status == 400
    for raw in (b"nope", b'{"id": 1}', b'{"task_id": 5}', b""):
        answer = call(sim, "POST", "/runway/feed", raw=raw)
        assert answer.status == 400 and "invalid request body" in answer.json()["error"]["message"]


@pytest.mark.parametrize("location", ["result_url", "fail_reason", "output", "video_url", "kling"])
def test_result_locations(sim: Simulator, location: str) -> None:
    task_id = sim.add_task(KEY, instant(result_location=location))
    task = feed(sim, task_id).task()
    url = {"result_url": lambda: task["result_url"], "fail_reason": lambda: task["fail_reason"],
           "output": lambda: task["data"]["output"][0], "video_url": lambda: task["data"]["video_url"],
           "kling": lambda: task["data"]["task_result"]["videos"][0]["url"]}[location]()
    assert url.startswith("http://127.0.0.1:") and call(sim, "GET", url, key=None).status == 200
    if location != "result_url":
        assert "result_url" not in task


def test_invisible_then_visible_and_key_scoping(sim: Simulator) -> None:
    task_id = sim.add_task(KEY, Timeline(invisible_for=0.3, submitted_for=5))
    assert feed(sim, task_id).status == 400
    assert call(sim, "GET", f"/runwayml/v1/tasks/{task_id}").status == 404
    time.sleep(0.35)
    assert feed(sim, task_id).task()["status"] == "SUBMITTED"
    intruder = feed(sim, task_id, key=OTHER_KEY)
    assert intruder.status == 400 and intruder.json()["code"] == "task_not_exist"
    official = call(sim, "GET", f"/runwayml/v1/tasks/{task_id}", key=OTHER_KEY)
    assert official.status == 404 and official.json()["code"] == "task_not_exist"


def test_failure_cancel_and_hostile_values(sim: Simulator) -> None:
    failed = feed(sim, sim.add_task(KEY, instant(outcome="FAILURE")))
    task = failed.task()
    assert (task["status"], task["fail_reason"], task["progress"]) == (
        "FAILURE", "Content moderation: the prompt was rejected.", "100%")
    assert task["data"]["failureCode"] == "SAFETY.INPUT.TEXT" and "result_url" not in task
    cancelled = feed(sim, sim.add_task(KEY, instant(outcome="CANCELLED"))).task()
    assert (cancelled["status"], cancelled["data"]["status"]) == ("CANCELLED", "CANCELLED")
    hostile = instant(action="<img src=x onerror=alert(1)>",
                       result_url_override="javascript:alert(1)")
    task = feed(sim, sim.add_task(KEY, hostile)).task()
    assert task["action"] == hostile.action and task["result_url"] == "javascript:alert(1)"


def test_after_terminal_and_progress_values_over_http(sim: Simulator) -> None:
    task_id = sim.add_task(KEY, instant(after_terminal="IN_PROGRESS"))
    assert [feed(sim, task_id).task()["status"] for _ in range(3)] == ["SUCCESS", "IN_PROGRESS", "IN_PROGRESS"]
    task_id = sim.add_task(KEY, Timeline(invisible_for=0, submitted_for=0, queued_for=0, run_for=60,
                                         progress_style="values", progress_values=("abc", -5, None)))
    assert [feed(sim, task_id).task()["progress"] for _ in range(4)] == ["abc", -5, None, "abc"]


def test_official_endpoint(sim: Simulator) -> None:
    running = sim.add_task(KEY, Timeline(invisible_for=0, submitted_for=0, queued_for=0, run_for=60))
    obj = call(sim, "GET", f"/runwayml/v1/tasks/{running}", headers={"X-Runway-Version": "2024-11-06"}).json()
    assert obj["id"] == running and obj["status"] == "RUNNING" and isinstance(obj["progress"], float)
    assert obj["createdAt"].endswith("Z")
    done = sim.add_task(KEY, instant(result_location="kling"))
    obj = call(sim, "GET", f"/runwayml/v1/tasks/{done}").json()
    assert obj["status"] == "SUCCEEDED" and obj["output"][0].startswith(sim.base_url + "/media/")
    failed = sim.add_task(KEY, instant(outcome="FAILURE", fail_code="X.Y"))
    obj = call(sim, "GET", f"/runwayml/v1/tasks/{failed}").json()
    assert (obj["status"], obj["failureCode"]) == ("FAILED", "X.Y") and "output" not in obj


def test_unknown_paths_are_html_404(sim: Simulator) -> None:
    for method, path in (("GET", "/"), ("POST", "/v1/nope"), ("GET", "/runway/feed")):
        answer = call(sim, method, path, key=None)
        assert answer.status == 404 and answer.headers["content-type"].startswith("text/html")
        assert b"Not Found" in answer.body


def test_add_task_and_next_timelines(sim: Simulator) -> None:
    assert sim.add_task(KEY, task_id="fixed-id") == "fixed-id"
    with pytest.raises(ValueError):
        sim.add_task(KEY, task_id="fixed-id")
    sim.next_timelines(instant(form="bare"), instant(outcome="FAILURE"))
    ids = [create(sim).json()["data"]["task_id"] for _ in range(3)]
    bodies = [feed(sim, i).json() for i in ids]
    assert "code" not in bodies[0] and bodies[1]["data"]["status"] == "FAILURE"
    assert bodies[2]["data"]["status"] == "SUCCESS"


# ------------------------------------------------------------------ faults
def test_response_faults(sim: Simulator) -> None:
    task_id = sim.add_task(KEY)
    sim.inject(Fault("rate_limit", retry_after="2"))
    sim.inject(Fault("server_error_json"))
    sim.inject(Fault("server_error_html", status=504))
    sim.inject(Fault("malformed"))
    sim.inject(Fault("wrong_type"))
    sim.inject(Fault("wrong_type", body=b'"just a string"'))
    sim.inject(Fault("empty"))
    sim.inject(Fault("html200"))
    sim.inject(Fault("custom", status=418, body=b'{"teapot": true}'))
    answers = [feed(sim, task_id) for _ in range(10)]
    limited = answers[0]
    assert limited.status == 429 and limited.headers["retry-after"] == "2"
    assert limited.json()["error"]["type"] == "comet_api_error"
    assert answers[1].status == 503 and answers[1].json()["error"]["code"] == "model_not_found"
    assert answers[2].status == 504 and answers[2].headers["content-type"].startswith("text/html")
    assert answers[3].status == 200 and answers[3].body == b'{"code":"success","data":{"task_id":'
    with pytest.raises(ValueError):
        answers[3].json()
    assert answers[4].json() == [1, 2, 3] and answers[5].json() == "just a string"
    assert answers[6].status == 200 and answers[6].body == b""
    assert answers[7].status == 200 and answers[7].headers["content-type"].startswith("text/html")
    assert answers[8].status == 418 and answers[8].json() == {"teapot": True}
    assert answers[9].status == 200 and answers[9].task()["task_id"] == task_id  # all used up
    assert [r.status for r in sim.requests_for(task_id)] == [429, 503, 504, 200, 200, 200, 200, 200, 418, 200]


def test_fault_count_and_path(sim: Simulator) -> None:
    task_id = sim.add_task(KEY)
    sim.inject(Fault("server_error_json", count=2, path="/runwayml/"))
    assert feed(sim, task_id).status == 200  # path does not match
    official = [call(sim, "GET", f"/runwayml/v1/tasks/{task_id}").status for _ in range(3)]
    assert official == [503, 503, 200]
    sim.inject(Fault("empty", path=""))
    sim.clear_faults()
    assert feed(sim, task_id).status == 200


def test_echo_auth_and_redirect(sim: Simulator) -> None:
    sim.inject(Fault("echo_auth"))
    echoed = feed(sim, "x")
    assert echoed.status == 401 and f"Bearer {KEY}" in echoed.json()["error"]["message"]
    sim.inject(Fault("redirect"))
    moved = feed(sim, "x")
    assert moved.status == 302 and moved.headers["location"] == f"http://127.0.0.2:{sim.port}/runway/feed"


def test_connection_faults(sim: Simulator) -> None:
    task_id = sim.add_task(KEY)
    sim.inject(Fault("drop"))
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        feed(sim, task_id)
    sim.inject(Fault("reset"))
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        feed(sim, task_id)
    sim.inject(Fault("slow", delay=0.6))
    with pytest.raises(TimeoutError):
        feed(sim, task_id, timeout=0.2)
    sim.inject(Fault("slow", delay=0.2))
    assert feed(sim, task_id).status == 200
    statuses = [r.status for r in sim.requests_for(task_id)]
    assert statuses[:2] == [0, 0] and statuses[-1] == 200


def test_huge_fault_is_streamed(sim: Simulator) -> None:
    sim.inject(Fault("huge"))
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    conn.request("POST", "/runway/feed", body=b'{"task_id":"x"}', headers={"Authorization": f"Bearer {KEY}"})
    resp = conn.getresponse()
    assert resp.status == 200 and int(resp.getheader("Content-Length", "0")) == HUGE_SIZE
    total = 0
    while chunk := resp.read(1 << 20):
        total += len(chunk)
    conn.close()
    assert total == HUGE_SIZE


def test_stop_is_prompt_during_a_slow_fault() -> None:
    sim = Simulator(default_timeline=INSTANT).start()
    sim.inject(Fault("slow", delay=30))
    errors: list[BaseException] = []

    def client() -> None:
        try:
            feed(sim, "x", timeout=10)
        except BaseException as exc:  # record whatever happened
            errors.append(exc)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    deadline = time.monotonic() + 2
    while sim.pending_faults() and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 1.5
    thread.join(2)
    assert not thread.is_alive() and errors  # the stalled client saw its connection close
    sim.stop()  # idempotent
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", sim.port), timeout=0.5).close()


# ------------------------------------------------------------------- media
def _boxes(data: bytes) -> list[str]:
    names, pos = [], 0
    while pos + 8 <= len(data):
        size, name = struct.unpack(">I4s", data[pos:pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
        names.append(name.decode("latin-1"))
        if size < 8:
            break
        pos += size
    return names


def test_demo_mp4_is_small_and_faststart() -> None:
    data = DEMO_PATH.read_bytes()
    assert len(data) < 100_000 and data[4:8] == b"ftyp"
    boxes = _boxes(data)
    assert boxes.index("moov") < boxes.index("mdat")


def test_media_ranges(sim: Simulator) -> None:
    task = feed(sim, sim.add_task(KEY)).task()
    url, data = task["result_url"], DEMO_PATH.read_bytes()
    size = len(data)
    full = call(sim, "GET", url, key=None)
    assert full.status == 200 and full.body == data
    assert (full.headers["content-type"], full.headers["accept-ranges"]) == ("video/mp4", "bytes")
    part = call(sim, "GET", url, key=None, headers={"Range": "bytes=10-19"})
    assert (part.status, part.body, part.headers["content-range"]) == (206, data[10:20], f"bytes 10-19/{size}")
    tail = call(sim, "GET", url, key=None, headers={"Range": f"bytes={size - 5}-"})
    assert tail.status == 206 and tail.body == data[-5:]
    suffix = call(sim, "GET", url, key=None, headers={"Range": "bytes=-7"})
    assert suffix.body == data[-7:] and suffix.headers["content-range"] == f"bytes {size - 7}-{size - 1}/{size}"
    bad = call(sim, "GET", url, key=None, headers={"Range": f"bytes={size}-"})
    assert bad.status == 416 and bad.headers["content-range"] == f"bytes */{size}"
    head = call(sim, "HEAD", url, key=None)
    assert head.status == 200 and head.body == b"" and head.headers["content-length"] == str(size)
    record = sim.requests[-1]
    assert (record.method, record.task_id, record.key_ok, record.auth_sent) == ("HEAD", task["task_id"], False, False)


def test_synthetic_large_media(sim: Simulator) -> None:
    size = 3 * 1024 * 1024 + 5
    task = feed(sim, sim.add_task(KEY, instant(media_size=size))).task()
    full = call(sim, "GET", task["result_url"], key=None)
    assert len(full.body) == size and full.body[4:8] == b"ftyp" and full.body[28:32] == b"mdat"
    middle = call(sim, "GET", task["result_url"], key=None, headers={"Range": "bytes=1048570-1048600"})
    assert middle.body == full.body[1048570:1048601]


def test_url_expiry_and_fresh_url(sim: Simulator) -> None:
    task_id = sim.add_task(KEY, instant(url_ttl=0.1))
    first = feed(sim, task_id).task()["result_url"]
    exp = int(urllib.parse.parse_qs(urllib.parse.urlsplit(first).query)["exp"][0])
    time.sleep(max(0.0, exp - time.time()) + 0.05)
    expired = call(sim, "GET", first, key=None)
    assert expired.status == 403 and b"<Code>AccessDenied</Code>" in expired.body
    fresh = feed(sim, task_id).task()["result_url"]
    assert fresh != first and call(sim, "GET", fresh, key=None).status == 200
    forged = re.sub(r"sig=[0-9a-f]+", "sig=" + "0" * 32, fresh)
    assert call(sim, "GET", forged, key=None).status == 403
    assert call(sim, "GET", fresh.split("?")[0], key=None).status == 403


# ----------------------------------------------------------------- control
def test_control_endpoints(sim: Simulator) -> None:
    created = call(sim, "POST", "/_sim/tasks", {"key": KEY, "timeline": {"invisible_for": 0, "form": "bare"},
                                                "action": "ACT_ONE"}, key=None)
    task_id = created.json()["task_id"]
    assert feed(sim, task_id).json()["action"] == "ACT_ONE"
    injected = call(sim, "POST", "/_sim/faults", {"kind": "rate_limit", "retry_after": "1"}, key=None)
    assert injected.json() == {"ok": True}
    assert call(sim, "GET", "/_sim/faults", key=None).json()[0]["remaining"] == 1
    assert feed(sim, task_id).status == 429
    call(sim, "POST", "/_sim/faults", {"kind": "empty"}, key=None)
    assert call(sim, "DELETE", "/_sim/faults", key=None).json() == {"ok": True}
    assert feed(sim, task_id).status == 200
    records = call(sim, "GET", "/_sim/requests", key=None).json()
    assert [r["status"] for r in records] == [200, 429, 200] and records[0]["task_id"] == task_id
    for path, body in (("/_sim/tasks", {"key": KEY, "bogus": 1}), ("/_sim/tasks", {"key": KEY, "timeline": {"x": 1}}),
                       ("/_sim/faults", {"kind": "nope"}), ("/_sim/faults", {"kind": "drop", "x": 1})):
        assert call(sim, "POST", path, body, key=None).status == 400
    call(sim, "POST", "/_sim/default_timeline", instant(outcome="FAILURE").to_dict(), key=None)
    assert feed(sim, create(sim).json()["data"]["task_id"]).task()["status"] == "FAILURE"


# ----------------------------------------------------------- independence
def test_simulator_imports_nothing_else_from_the_package() -> None:
    for source in SIM_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                assert node.level <= 1, f"{source.name} imports from outside the simulator"
                assert node.level == 1 or not module.startswith("runway_widgets") or module.startswith(
                    "runway_widgets.simulator"), f"{source.name} imports {module}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("runway_widgets") or alias.name.startswith(
                        "runway_widgets.simulator"), f"{source.name} imports {alias.name}"


def _standalone(*args: str) -> subprocess.Popen:
    """``python -m runway_widgets.simulator --port 0 ARGS`` in its own process group, unbuffered."""
    return subprocess.Popen([sys.executable, "-m", "runway_widgets.simulator", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=SIM_DIR.parents[1], env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            start_new_session=True)


def test_standalone_refresh_period_option() -> None:
    proc = _standalone("--refresh-period", "20")
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        assert "every 20 s (phase " in lines[2], lines
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    bad = subprocess.run([sys.executable, "-m", "runway_widgets.simulator", "--refresh-period", "-3"],
                         capture_output=True, text=True, cwd=SIM_DIR.parents[1], timeout=30)
    assert bad.returncode == 2 and "--refresh-period must be" in bad.stderr


def test_standalone_main_prints_its_url_and_stops_on_sigint() -> None:
    proc = _standalone("--demo")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        assert match, line
        hint = proc.stdout.readline()
        assert "key" in hint
        answer = create(match.group(1), key="sk-anything")
        assert answer.status == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

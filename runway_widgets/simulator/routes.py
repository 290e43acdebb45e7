"""Request routing: the CometAPI endpoints, the media bucket and the control plane.

Every function here maps a parsed request to a
:class:`~runway_widgets.simulator.responses.Response`; none touches a socket.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from typing import Any

from .backend import ApiRequest, Backend
from .faults import Fault
from .media import demo_bytes, demo_reader, media_response, synthetic_chunks
from .render import feed_envelope, feed_task, official_task
from .responses import Response, gateway_error, json_response, not_found_html, s3_error, task_not_exist
from .runway_api import RUNWAY_TASKS, is_runway_format, route_runway_format
from .timeline import Timeline


__all__ = ["ApiRequest", "bearer_key", "guess_task_id", "route_api", "route_control"]

FEED_PATH = "/runway/feed"
OFFICIAL_PREFIX = "/runwayml/v1/tasks/"
MEDIA_PREFIX = "/media/"
#: Create endpoints -> the fields they require (beyond callback_url).
CREATE_PATHS = {
    "/runway/pro/generate": ("prompt",),
    "/runway/pro/video2video": ("video",),
    "/runway/pro/act_one": ("video", "image"),
}


def bearer_key(authorization: str | None) -> str | None:
    """Extract the key from an Authorization header.

    Like new-api, a "Bearer " prefix is stripped when present and a bare key is
    accepted too; blank values count as missing.
    """
    if authorization is None:
        return None
    parts = authorization.split(None, 1)
    if parts and parts[0].lower() == "bearer":
        parts = parts[1:]  # "Bearer" alone means no key at all
    value = parts[0].strip() if parts else ""
    return value or None


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _media_task_id(path: str) -> str | None:
    name = path[len(MEDIA_PREFIX):]
    if not name.endswith(".mp4") or "/" in name:
        return None
    return urllib.parse.unquote(name[:-4]) or None


def guess_task_id(path: str, body: bytes) -> str | None:
    """Best-effort task id of a request, for the log (even of faulted requests)."""
    for prefix in (OFFICIAL_PREFIX, RUNWAY_TASKS):
        if path.startswith(prefix):
            return urllib.parse.unquote(path[len(prefix):]) or None
    if path.startswith(MEDIA_PREFIX):
        return _media_task_id(path)
    if path == FEED_PATH and body:
        data = _json_object(body)
        task_id = data.get("task_id") if data is not None else None
        if isinstance(task_id, str) and task_id:
            return task_id
    return None


def _unauthorized() -> Response:
    return gateway_error(401, "invalid token")


def _invalid_body() -> Response:
    return gateway_error(400, "invalid request body")


def route_api(sim: Backend, req: ApiRequest) -> tuple[Response, str | None]:
    """Answer an API or media request; return the response and the task id concerned."""
    path, method = req.path, req.method
    if path.startswith(MEDIA_PREFIX) and method in ("GET", "HEAD"):
        return _media(sim, req)
    if is_runway_format(method, path):
        return route_runway_format(sim, req)
    is_api = ((method == "POST" and (path == FEED_PATH or path in CREATE_PATHS))
              or (method == "GET" and path.startswith(OFFICIAL_PREFIX)))
    if not is_api:
        # The gateway's router 404s before authenticating, with nginx's HTML page.
        return not_found_html(), None
    if not req.key_ok or req.key is None:
        return _unauthorized(), None
    if path == FEED_PATH:
        return _feed(sim, req)
    if path in CREATE_PATHS:
        return _create(sim, req)
    return _official(sim, req)


def _create(sim: Backend, req: ApiRequest) -> tuple[Response, str | None]:
    data = _json_object(req.body)
    if data is None:
        return _invalid_body(), None
    callback = data.get("callback_url")
    if not isinstance(callback, str) or not callback.strip():
        return json_response(400, {"code": "callback_url_empty", "message": "callback_url_empty", "data": None}), None

    def present(name: str) -> bool:
        value = data.get(name)
        return isinstance(value, str) and bool(value.strip())

    required = CREATE_PATHS[req.path]
    if req.path == "/runway/pro/generate" and present("image"):
        required, action = (), "IMAGE_TO_VIDEO"  # the prompt is optional with an image
    else:
        action = {"/runway/pro/generate": "TEXT_TO_VIDEO", "/runway/pro/video2video": "VIDEO_TO_VIDEO",
                  "/runway/pro/act_one": "ACT_ONE"}[req.path]
    for name in required:
        if not present(name):
            return gateway_error(400, f"{name} is required"), None
    assert req.key is not None
    task_id = sim._create_http(req.key, action)
    sim._remember_body(req.path, task_id, data)
    body = {"code": 200, "message": "", "msg": "success", "data": {"task_id": task_id}}
    return json_response(200, body), task_id


def _feed(sim: Backend, req: ApiRequest) -> tuple[Response, str | None]:
    data = _json_object(req.body)
    task_id = data.get("task_id") if data is not None else None
    if not isinstance(task_id, str) or not task_id:
        return _invalid_body(), None
    assert req.key is not None
    found = sim._poll(task_id, req.key)
    if found is None:
        return task_not_exist(400), task_id
    task, view, url = found
    obj = feed_task(task.task_id, task.action, task.created_unix, view, task.timeline, url)
    return json_response(200, feed_envelope(obj, task.timeline)), task_id


def _official(sim: Backend, req: ApiRequest) -> tuple[Response, str | None]:
    task_id = urllib.parse.unquote(req.path[len(OFFICIAL_PREFIX):])
    if not task_id or "/" in task_id:
        return task_not_exist(404), None
    assert req.key is not None
    found = sim._poll(task_id, req.key)
    if found is None:
        return task_not_exist(404), task_id
    task, view, url = found
    return json_response(200, official_task(task.task_id, task.created_unix, view, task.timeline, url)), task_id


def _media(sim: Backend, req: ApiRequest) -> tuple[Response, str | None]:
    task_id = _media_task_id(req.path)
    if task_id is None:
        return s3_error(404, "NoSuchKey", "The specified key does not exist."), None
    # Like S3: the signature is checked before the object is looked up.
    denied = sim._signer.check(task_id, req.query)
    if denied is not None:
        return denied, task_id
    timeline = sim._media_timeline(task_id)
    if timeline is None:
        return s3_error(404, "NoSuchKey", "The specified key does not exist."), task_id
    range_header = req.headers.get("Range")
    if timeline.media_size is None:
        data = demo_bytes()
        etag = '"' + hashlib.md5(data).hexdigest() + '"'  # an ETag, not security
        return media_response(len(data), demo_reader, range_header, etag), task_id
    size = timeline.media_size
    return media_response(size, lambda a, b: synthetic_chunks(size, a, b), range_header,
                          f'"synthetic-{size}"'), task_id


# ------------------------------------------------------------------- control
def route_control(sim: Backend, method: str, path: str, body: bytes) -> Response:
    """Answer a ``/_sim/*`` request (no auth, no faults, not logged)."""
    try:
        return _control(sim, method, path, body)
    except ValueError as exc:
        return json_response(400, {"error": str(exc)})


def _load(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8") or "null")
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"invalid JSON body: {exc}") from exc


def _control(sim: Backend, method: str, path: str, body: bytes) -> Response:
    ok = json_response(200, {"ok": True})
    if path == "/_sim/tasks" and method == "POST":
        data = _load(body)
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        unknown = sorted(set(data) - {"key", "timeline", "action", "task_id"})
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(unknown)}")
        raw = data.get("timeline")
        timeline = None if raw is None else Timeline.from_dict(raw)
        action = data.get("action", "TEXT_TO_VIDEO")
        if not isinstance(action, str):
            raise ValueError("action must be a str")
        task_id = sim.add_task(data.get("key"), timeline, data.get("task_id"), action)  # type: ignore[arg-type]
        return json_response(200, {"task_id": task_id})
    if path == "/_sim/faults" and method == "POST":
        sim.inject(Fault.from_dict(_load(body)))
        return ok
    if path == "/_sim/faults" and method == "DELETE":
        sim.clear_faults()
        return ok
    if path == "/_sim/faults" and method == "GET":
        return json_response(200, [{"fault": f.to_dict(), "remaining": n} for f, n in sim.pending_faults()])
    if path == "/_sim/requests" and method == "GET":
        return json_response(200, [r.to_dict() for r in sim.requests])
    if path == "/_sim/requests" and method == "DELETE":
        sim.clear_requests()
        return ok
    if path == "/_sim/default_timeline" and method in ("POST", "PUT"):
        sim.set_default_timeline(Timeline.from_dict(_load(body)))
        return ok
    if path == "/_sim/next_timelines" and method == "POST":
        data = _load(body)
        if not isinstance(data, list):
            raise ValueError("body must be a JSON list of timelines")
        sim.next_timelines(*(Timeline.from_dict(item) for item in data))
        return ok
    return json_response(404, {"error": f"unknown control endpoint {method} {path}"})

"""Runway-format routes: CometAPI's ``/runwayml/v1/`` create mirror, and Runway's own ``/v1/`` API.

* ``POST /runwayml/v1/{image_to_video,video_to_video,character_performance,video_upscale}``
  (CometAPI, its key): Runway's body, no ``callback_url``, answered ``{"id": ...}``; the id is
  pollable on ``POST /runway/feed`` and ``GET /runwayml/v1/tasks/{id}`` alike.  CometAPI's
  mirror has no documented text-only route, so ``/runwayml/v1/text_to_video`` is a 404 here.
* ``POST /v1/{image_to_video,text_to_video,video_to_video,character_performance,video_upscale}``
  and ``GET /v1/tasks/{id}`` (Runway's own API, its own keys): ``X-Runway-Version`` required,
  errors as ``{"error": "..."}``.

Bodies are checked the way the services document (models, ratios, durations, seeds, inline
image size), so a client that let a bad value through is caught here.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import TYPE_CHECKING, Any

from .render import official_task
from .responses import Response, gateway_error, json_response

if TYPE_CHECKING:  # pragma: no cover
    from .backend import ApiRequest, Backend

__all__ = ["MIRROR_PREFIX", "RUNWAY_PREFIX", "is_runway_format", "route_runway_format", "check_body", "IMAGE_DATA_MAX"]

MIRROR_PREFIX = "/runwayml/v1/"
RUNWAY_PREFIX = "/v1/"
RUNWAY_TASKS = "/v1/tasks/"
IMAGE_DATA_MAX = 5 * 1000 * 1000
PROMPT_MAX = 1000
SEED_MAX = 4_294_967_295
# The server's own tables (kept apart from the client's runway_widgets.models on purpose:
# a client table that drifted from what the service accepts then shows in the tests).
_GEN4 = ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672")
_GEN45 = (("1280:720", "720:1280", "1104:832", "832:1104", "960:960"), tuple(range(2, 11)))
IMAGE_MODELS = {"gen4_turbo": (_GEN4, (5, 10)), "gen4.5": _GEN45, "gen3a_turbo": (("1280:768", "768:1280"), (5, 10))}
TEXT_MODELS = {"gen4.5": _GEN45, "veo3.1": (("1280:720", "720:1280", "1080:1920", "1920:1080"), (4, 6, 8))}
_ACTIONS = {"image_to_video": "IMAGE_TO_VIDEO", "text_to_video": "TEXT_TO_VIDEO", "video_to_video": "VIDEO_TO_VIDEO",
            "character_performance": "ACT_ONE", "video_upscale": "VIDEO_UPSCALE"}
_MIRRORED = ("image_to_video", "video_to_video", "character_performance", "video_upscale")


def is_runway_format(method: str, path: str) -> bool:
    """True for the routes this module answers."""
    if method == "POST" and path.startswith(MIRROR_PREFIX):
        return path[len(MIRROR_PREFIX):] in _MIRRORED
    if path.startswith(RUNWAY_TASKS):
        return method == "GET"
    return method == "POST" and path.startswith(RUNWAY_PREFIX) and path[len(RUNWAY_PREFIX):] in _ACTIONS


def _runway_error(status: int, message: str) -> Response:
    return json_response(status, {"error": message})


def route_runway_format(sim: Backend, req: ApiRequest) -> tuple[Response, str | None]:
    """Answer a Runway-format request (the caller checked :func:`is_runway_format`)."""
    own = req.path.startswith(RUNWAY_PREFIX)
    if own:
        if not req.key or not sim._runway_key_accepted(req.key):
            return _runway_error(401, "Invalid API key."), None
        if not req.headers.get("X-Runway-Version"):
            return _runway_error(400, "The X-Runway-Version header is required."), None
    elif not req.key_ok or req.key is None:
        return gateway_error(401, "invalid token"), None
    if req.path.startswith(RUNWAY_TASKS):
        return _poll(sim, req)
    route = req.path.rsplit("/", 1)[-1]
    try:
        data = json.loads(req.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        return (_runway_error(400, "The body must be a JSON object.") if own
                else gateway_error(400, "invalid request body")), None
    problem = check_body(route, data)
    if problem is not None:
        return (_runway_error(400, problem) if own else gateway_error(400, problem)), None
    assert req.key is not None
    task_id = sim._create_http(req.key, _ACTIONS[route])
    sim._remember_body(req.path, task_id, data)
    return json_response(200, {"id": task_id}), task_id


def _poll(sim: Backend, req: ApiRequest) -> tuple[Response, str | None]:
    task_id = urllib.parse.unquote(req.path[len(RUNWAY_TASKS):])
    assert req.key is not None
    found = sim._poll(task_id, req.key) if task_id and "/" not in task_id else None
    if found is None:
        return _runway_error(404, "Task not found"), task_id or None
    task, view, url = found
    return json_response(200, official_task(task.task_id, task.created_unix, view, task.timeline, url)), task_id


def _uri_ok(value: object, kind: str) -> str | None:
    """None if ``value`` is an https URL (http on loopback, for tests) or a data URI of ``kind``."""
    if not isinstance(value, str) or not value:
        return f"a {kind} is required"
    if value.startswith("data:"):
        if not value.startswith(f"data:{kind}/") or ";base64," not in value[:64]:
            return f"the {kind} data URI is not a base64 {kind}"
        if kind == "image" and len(value) > IMAGE_DATA_MAX:
            return "the image data URI is larger than 5MB"
        return None
    parts = urllib.parse.urlsplit(value)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")):
        return None
    return f"the {kind} URL must be HTTPS"


def check_body(route: str, data: dict[str, Any]) -> str | None:
    """The reason a Runway-format body is refused, or None."""
    text = data.get("promptText")
    if text is not None and (not isinstance(text, str) or len(text) > PROMPT_MAX):
        return f"promptText must be a string of at most {PROMPT_MAX} characters"
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX):
        return f"seed must be an integer from 0 to {SEED_MAX}"
    if route in ("image_to_video", "text_to_video"):
        table = IMAGE_MODELS if route == "image_to_video" else TEXT_MODELS
        if route == "image_to_video":
            problem = _uri_ok(data.get("promptImage"), "image")
            if problem:
                return f"promptImage: {problem}"
        elif not text:
            return "promptText is required"
        spec = table.get(data.get("model"))  # type: ignore[arg-type]
        if spec is None:
            return f"model must be one of {', '.join(table)}"
        ratios, durations = spec
        if data.get("ratio") not in ratios:
            return f"ratio must be one of {', '.join(ratios)} for {data.get('model')}"
        if data.get("duration", durations[0]) not in durations:
            return f"duration must be one of {', '.join(map(str, durations))} for {data.get('model')}"
        return None
    if route == "character_performance":
        for name in ("character", "reference"):
            item = data.get(name)
            if not isinstance(item, dict) or _uri_ok(item.get("uri"), "image" if item.get("type") == "image" else "video"):
                return f"{name} must be an object with a type and an https uri"
        return None
    problem = _uri_ok(data.get("videoUri"), "video")
    return f"videoUri: {problem}" if problem else None


"""Wire shapes of a task: CometAPI's feed object and Runway's official object.

These are pure functions of a :func:`~runway_widgets.simulator.timeline.task_view`
result plus the task's identity, so the shapes can be tested without a server.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from .timeline import Timeline

__all__ = ["feed_task", "official_task", "feed_envelope", "iso_cometapi", "iso_runway"]

# CometAPI's verified sample shows createdAt in China time with an explicit
# offset ("2026-03-13T09:52:46+08:00"); Runway's own API writes UTC with
# milliseconds and "Z". Serving both makes clients parse both.
_CST = _dt.timezone(_dt.timedelta(hours=8))


def iso_cometapi(unix: float) -> str:
    """Format a Unix time the way CometAPI's inner ``data.createdAt`` does."""
    return _dt.datetime.fromtimestamp(int(unix), tz=_CST).isoformat()


def iso_runway(unix: float) -> str:
    """Format a Unix time the way Runway's API does (UTC, milliseconds, "Z")."""
    stamp = _dt.datetime.fromtimestamp(unix, tz=_dt.timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _runway_object(task_id: str, created_unix: float, view: dict[str, Any], timeline: Timeline,
                   created_at: str) -> dict[str, Any]:
    """Runway's task object without output (callers decide where the URL goes)."""
    obj: dict[str, Any] = {"id": task_id, "status": view["runway_status"], "createdAt": created_at}
    if view["runway_progress"] is not None:
        obj["progress"] = view["runway_progress"]
    if view["failed"]:
        obj["failure"] = timeline.fail_reason
        obj["failureCode"] = timeline.fail_code
    return obj


def feed_task(task_id: str, action: str, created_unix: float, view: dict[str, Any],
              timeline: Timeline, result_url: str | None) -> dict[str, Any]:
    """Return the new-api task object served by ``POST /runway/feed``.

    Parameters
    ----------
    task_id, action : str
        The task's identity (``timeline.action`` overrides ``action`` when set).
    created_unix : float
        Creation time, Unix seconds.
    view : dict
        A visible :func:`task_view` result.
    timeline : Timeline
        The task's script (result location, failure texts).
    result_url : str or None
        The URL to publish if the view succeeded.

    Returns
    -------
    dict
        The task object; the URL appears only at ``timeline.result_location`` so
        that each fallback of a client's parser is exercised on its own.
    """
    def offset(name: str) -> int:
        value = view[name]
        return 0 if value is None else int(created_unix + value)

    obj: dict[str, Any] = {
        "task_id": task_id,
        "action": timeline.action if timeline.action is not None else action,
        "status": view["status"],
        "fail_reason": timeline.fail_reason if view["failed"] else "",
        "submit_time": int(created_unix),
        "start_time": offset("start_offset"),
        "finish_time": offset("finish_offset"),
    }
    if "progress" in view:
        obj["progress"] = view["progress"]
    inner = _runway_object(task_id, created_unix, view, timeline, iso_cometapi(created_unix))
    if view["succeeded"] and result_url is not None:
        where = timeline.result_location
        if where == "result_url":
            obj["result_url"] = result_url
        elif where == "fail_reason":
            # Older new-api stored the success URL in fail_reason.
            obj["fail_reason"] = result_url
        elif where == "output":
            inner["output"] = [result_url]
        elif where == "video_url":
            inner["video_url"] = result_url
        elif where == "kling":
            inner["task_result"] = {"videos": [{"id": task_id, "url": result_url, "duration": "5"}]}
    obj["data"] = inner
    return obj


def feed_envelope(task: dict[str, Any], timeline: Timeline) -> Any:
    """Wrap ``task`` as the timeline's ``form`` says (envelope or bare)."""
    if timeline.form == "bare":
        return task
    return {"code": "success", "message": "", "data": task}


def official_task(task_id: str, created_unix: float, view: dict[str, Any], timeline: Timeline,
                  result_url: str | None) -> dict[str, Any]:
    """Return Runway's official task object served by ``GET /runwayml/v1/tasks/{id}``.

    Unlike the feed, this form always carries the URL in ``output`` (Runway's only
    place for it); ``result_location`` and ``progress_style`` do not apply.
    """
    obj = _runway_object(task_id, created_unix, view, timeline, iso_runway(created_unix))
    if view["succeeded"] and result_url is not None:
        obj["output"] = [result_url]
    return obj

"""Scripted life cycles of simulated tasks.

A :class:`Timeline` says how long a task spends in each phase and how it ends;
:func:`task_view` is the pure function that turns "seconds since creation" into
what a poll would see. Keeping it pure lets tests check the state machine
(refresh quantisation, progress styles, early failure, ...) without a server.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PROGRESS_STYLES",
    "RESULT_LOCATIONS",
    "FORMS",
    "RUNWAY_STATUS",
    "Timeline",
    "task_view",
]

PROGRESS_STYLES = ("percent", "jump", "fraction", "int", "none", "values")
RESULT_LOCATIONS = ("result_url", "fail_reason", "output", "video_url", "kling")
FORMS = ("envelope", "bare")

#: new-api task status -> Runway's own status, for the inner ``data`` object and
#: the official endpoint. Statuses not in this table are shown literally in both.
RUNWAY_STATUS: dict[str, str] = {
    "NOT_START": "PENDING", "SUBMITTED": "PENDING", "QUEUED": "PENDING", "IN_PROGRESS": "RUNNING",
    "SUCCESS": "SUCCEEDED", "FAILURE": "FAILED", "CANCELLED": "CANCELLED",
}

_FLOAT_FIELDS = ("invisible_for", "not_start_for", "submitted_for", "queued_for", "run_for", "refresh_period",
                 "refresh_phase")
_OPT_FLOAT_FIELDS = ("fail_at", "url_ttl")
_STR_FIELDS = ("outcome", "fail_reason", "fail_code", "progress_style", "form", "result_location")
_OPT_STR_FIELDS = ("after_terminal", "extra_status", "action", "result_url_override")


@dataclass(frozen=True)
class Timeline:
    """How a simulated task evolves: durations in seconds.

    The phases follow one another from the moment the task becomes visible:
    invisible, NOT_START, SUBMITTED, QUEUED, IN_PROGRESS, then the outcome.
    Refresh ticks are counted from the task's creation.

    Attributes
    ----------
    invisible_for : float
        The feed answers ``task_not_exist`` until then (``math.inf``: never visible).
    not_start_for, submitted_for, queued_for, run_for : float
        Durations of the consecutive phases NOT_START, SUBMITTED, QUEUED, IN_PROGRESS.
    outcome : str
        "SUCCESS", "FAILURE", "CANCELLED" or any other string, shown literally.
    fail_reason, fail_code : str
        Failure text (``fail_reason`` / inner ``failure``) and inner ``failureCode``.
    fail_at : float or None
        Fail this many seconds into the run instead of finishing (an early failure).
    refresh_period : float
        If > 0, status and progress only change at refresh ticks, ``refresh_period`` apart.
    refresh_phase : float
        How long before the task's creation the gateway's last tick was: ticks fall at
        ``k * refresh_period - refresh_phase`` seconds after creation.  (A
        :class:`~.server.Simulator` with a ``refresh_period`` sets it, so that all its
        tasks share one refresh loop.)
    progress_style : str
        One of :data:`PROGRESS_STYLES`.
    progress_values : tuple
        Raw ``progress`` values cycled per poll while running (style "values").
    form : str
        "envelope" or "bare".
    result_location : str
        Where the feed puts the video URL on success, one of :data:`RESULT_LOCATIONS`.
    after_terminal : str or None
        Status served by polls after the first terminal one (a status going backwards).
    extra_status : str or None
        Status shown during the first half of the queue phase instead of QUEUED.
    action, result_url_override : str or None
        Served verbatim instead of the real action / minted URL (hostile values).
    url_ttl : float or None
        Signed result URLs expire this many seconds after being served.
    media_size : int or None
        Serve a synthetic video of this many bytes instead of demo.mp4.
    """

    invisible_for: float = 0.5
    not_start_for: float = 0.0
    submitted_for: float = 0.5
    queued_for: float = 1.0
    run_for: float = 3.0
    outcome: str = "SUCCESS"
    fail_reason: str = "Content moderation: the prompt was rejected."
    fail_code: str = "SAFETY.INPUT.TEXT"
    fail_at: float | None = None
    refresh_period: float = 0.0
    refresh_phase: float = 0.0
    progress_style: str = "percent"
    progress_values: tuple[Any, ...] = ()
    form: str = "envelope"
    result_location: str = "result_url"
    after_terminal: str | None = None
    extra_status: str | None = None
    action: str | None = None
    result_url_override: str | None = None
    url_ttl: float | None = None
    media_size: int | None = None

    def __post_init__(self) -> None:
        # Validate eagerly: a typo in a test scenario should fail at construction,
        # not as a confusing poll result seconds later.
        for name in _FLOAT_FIELDS + _OPT_FLOAT_FIELDS:
            value = getattr(self, name)
            if not (value is None and name in _OPT_FLOAT_FIELDS) and (
                    not _is_number(value) or math.isnan(value) or value < 0):
                raise ValueError(f"Timeline.{name} must be a number >= 0, got {value!r}")
        for name in _STR_FIELDS + _OPT_STR_FIELDS:
            value = getattr(self, name)
            if not (value is None and name in _OPT_STR_FIELDS) and not isinstance(value, str):
                raise ValueError(f"Timeline.{name} must be a str, got {value!r}")
        if not self.outcome:
            raise ValueError("Timeline.outcome must not be empty")
        if self.progress_style not in PROGRESS_STYLES:
            raise ValueError(f"Timeline.progress_style must be one of {PROGRESS_STYLES}")
        if self.form not in FORMS:
            raise ValueError(f"Timeline.form must be one of {FORMS}")
        if self.result_location not in RESULT_LOCATIONS:
            raise ValueError(f"Timeline.result_location must be one of {RESULT_LOCATIONS}")
        if not isinstance(self.progress_values, tuple):
            # Lists are accepted for convenience but stored as a tuple to stay hashable.
            if not isinstance(self.progress_values, list):
                raise ValueError("Timeline.progress_values must be a tuple")
            object.__setattr__(self, "progress_values", tuple(self.progress_values))
        size = self.media_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise ValueError("Timeline.media_size must be None or an int >= 0")

    @classmethod
    def fast(cls, **changes: Any) -> Timeline:
        """Return a timeline that finishes 1.7 s after creation, for tests."""
        return cls(**{"invisible_for": 0.2, "submitted_for": 0.2, "queued_for": 0.3, "run_for": 1.0, **changes})

    @classmethod
    def demo(cls, **changes: Any) -> Timeline:
        """Return a leisurely timeline (13.5 s) that looks good in a live demo."""
        return cls(**{"invisible_for": 1.5, "submitted_for": 1.0, "queued_for": 3.0, "run_for": 8.0, **changes})

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-friendly dict (``progress_values`` as a list).

        Infinite durations stay ``float('inf')``; ``json.dumps`` writes them as
        ``Infinity``, which :meth:`from_dict` (through ``json.loads``) reads back.
        """
        out = dataclasses.asdict(self)
        out["progress_values"] = list(self.progress_values)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timeline:
        """Build a timeline from a dict such as :meth:`to_dict` returns.

        Raises
        ------
        ValueError
            On unknown fields or invalid values. The strings "inf"/"Infinity" are
            accepted for durations, for JSON encoders that refuse non-finite floats.
        """
        if not isinstance(data, dict):
            raise ValueError("a timeline must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown Timeline fields: {', '.join(map(str, unknown))}")
        values = dict(data)
        for name in _FLOAT_FIELDS + _OPT_FLOAT_FIELDS:
            if isinstance(values.get(name), str) and values[name].lower() in ("inf", "infinity"):
                values[name] = math.inf
        if isinstance(values.get("progress_values"), list):
            values["progress_values"] = tuple(values["progress_values"])
        return cls(**values)  # unknown names were refused above: no TypeError


def _is_number(value: object) -> bool:
    # bool is an int subclass; True seconds is almost certainly a mistake.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _quantise(elapsed: float, period: float, phase: float = 0.0) -> float:
    """Round ``elapsed`` down to the last refresh tick (identity when period is 0)."""
    if period <= 0:
        return elapsed
    return math.floor((elapsed + phase) / period) * period - phase


#: Sentinel: the feed leaves the ``progress`` field out (style "none").
_OMIT = object()


def _feed_progress(timeline: Timeline, fraction: float | None, terminal: bool, poll_index: int) -> Any:
    """Return the feed's ``progress`` value, or ``_OMIT`` when the field is left out.

    ``fraction`` is None before the run starts and the run's completion (0..1) during it.
    """
    style = timeline.progress_style
    if style == "none":
        return _OMIT
    # new-api writes "100%" on every terminal task (failure included); other
    # styles keep their own type so the parser sees a consistent field.
    if terminal:
        return {"fraction": 1.0, "int": 100}.get(style, "100%")
    running = fraction is not None
    f = fraction if fraction is not None else 0.0
    if style == "fraction":
        return round(f, 4)
    # The epsilon keeps 0.9 (stored as 0.8999...) from reading "89%".
    percent = int(f * 100 + 1e-9)
    if style == "int":
        return percent
    if style == "jump":
        return "0%"
    if style == "values" and running and timeline.progress_values:
        return timeline.progress_values[poll_index % len(timeline.progress_values)]
    return f"{percent}%"



def task_view(timeline: Timeline, elapsed: float, poll_index: int = 0, terminal_seen: int = 0) -> dict[str, Any]:
    """Compute what a poll sees ``elapsed`` seconds after the task's creation.

    Parameters
    ----------
    timeline : Timeline
        The task's script.
    elapsed : float
        Seconds since creation (real time; refresh quantisation is applied here).
    poll_index : int
        How many polls of this task were answered before, for ``progress_values``.
    terminal_seen : int
        How many polls already showed the terminal state, for ``after_terminal``.

    Returns
    -------
    dict
        ``visible`` (bool); ``phase`` ("invisible", "not_start", "submitted", "queued",
        "running", "terminal" or "regressed"); ``status`` (feed, new-api names);
        ``runway_status``; ``terminal`` (the state really is final, as served);
        ``succeeded``/``failed``; ``progress`` (feed value, key absent when omitted);
        ``runway_progress`` (0..1 while running, else None); ``start_offset`` and
        ``finish_offset`` (seconds from creation, None until reached).
    """
    view: dict[str, Any] = {
        "visible": False, "phase": "invisible", "status": None, "runway_status": None,
        "terminal": False, "succeeded": False, "failed": False, "runway_progress": None,
        "start_offset": None, "finish_offset": None,
    }
    # Visibility follows real time: the gateway's row exists or not, whatever
    # its refresh cadence; only status and progress are quantised.
    if not elapsed >= timeline.invisible_for:
        return view
    view["visible"] = True
    # Phases start when the task becomes visible, so every phase of a script is
    # observable. A refresh tick from before that moment shows the first phase.
    clock = max(_quantise(elapsed, timeline.refresh_period, timeline.refresh_phase), timeline.invisible_for)
    t_submit = timeline.invisible_for + timeline.not_start_for
    t_queue = t_submit + timeline.submitted_for
    t_run = t_queue + timeline.queued_for
    outcome = timeline.outcome
    if timeline.fail_at is not None:
        outcome, t_end = "FAILURE", t_run + timeline.fail_at
    else:
        t_end = t_run + timeline.run_for

    fraction: float | None = None
    if clock < t_submit:
        phase, status = "not_start", "NOT_START"
    elif clock < t_queue:
        phase, status = "submitted", "SUBMITTED"
    elif clock < t_run:
        phase, status = "queued", "QUEUED"
        if timeline.extra_status is not None and clock < t_queue + timeline.queued_for / 2:
            status = timeline.extra_status
    elif clock < t_end:
        phase, status = "running", "IN_PROGRESS"
        # Never 100% before the end: real gateways don't either, and a client
        # must not treat 100% as done.
        fraction = min((clock - t_run) / timeline.run_for, 0.99) if timeline.run_for > 0 else 0.0
        view["runway_progress"] = round(fraction, 4)
        view["start_offset"] = t_run
    else:
        phase, status = "terminal", outcome
        view.update(start_offset=t_run, finish_offset=t_end, terminal=True,
                    succeeded=outcome == "SUCCESS", failed=outcome == "FAILURE")
        if timeline.after_terminal is not None and terminal_seen > 0:
            phase, status = "regressed", timeline.after_terminal
            view.update(terminal=False, succeeded=False, failed=False)

    view["phase"] = phase
    view["status"] = status
    view["runway_status"] = RUNWAY_STATUS.get(status, status)
    progress = _feed_progress(timeline, fraction, phase in ("terminal", "regressed"), poll_index)
    if progress is not _OMIT:
        view["progress"] = progress
    return view

"""The learnt cadence of each gateway, remembered across processes in ``cadence.json``.

A watch alone in its process (``runway-watch TASK_ID``) rarely sees enough changes to learn
a gateway's ticks before a short task ends; the processes before it on the same machine
saw some too.  So what a process learns of a base URL is written next to the task journal
(``journal_home() / "cadence.json"``) and a later process starts from it::

    {"version": 1, "gateways": {"https://api.cometapi.com": {"seen": 1767000000.5,
        "continuous": false, "brackets": [[1766999981.2, 1766999987.0], ...],
        "period": 15.3, "start": 1766999990.1, "width": 0.4, "drift": 0.004, "span": 2.5,
        "sharp_at": 1766999990.5}}}

What is kept: the brackets (when a change was seen, between which two polls: the evidence
itself, so that the changes of many short single-watch processes add up to a period), and
once the ticks are known the period, where the ticks were (``start``, ``width``) and how
far off the period may be (``drift``); or the verdict that the server is continuous.
``seen`` is when a change last backed the entry.  Times are wall-clock seconds in the file
(the monotonic clocks of two processes share no origin) and monotonic in memory; the
conversion takes ``time.time() - time.monotonic()`` at that moment.  Nothing else: no key,
no task id, and the base URL without user name, password, query or fragment.

Ageing, because the phase drifts: on load the tick window is moved to the latest tick
before now and widened by ``drift`` per tick since it was pinned (what
:meth:`Cadence.window` does within one process); while that is still narrow enough to aim
at, the gateway starts phase-locked, else only the period is believed (as the prior that
backs a fit on two ticks instead of three) and the phase is learnt again.  Brackets older
than :data:`BRACKET_AGE` are dropped, and a whole entry after :data:`FORGET`.  A loaded
cadence then learns like any other: a bracket that fits no phase of a locked one drops
the old evidence (:func:`~.cadence.learn`), so a gateway that restarted is learnt again.

This module is pure (times are arguments); the file is :mod:`.cadence_store`.

Turned off by ``RUNWAY_WIDGETS_NO_CADENCE_MEMORY=1`` or ``configure(remember_cadence=False)``
(see :func:`~.config.remember_cadence`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Optional
from urllib.parse import urlsplit

from .cadence import _KEEP, MAX_PERIOD, MIN_PERIOD, Bracket, Cadence

__all__ = ["Recall", "memory_key", "encode", "decode", "entry_for", "reanchor", "signature", "finite",
           "FORGET", "BRACKET_AGE"]

FORGET = 24 * 3600.0  # s: an entry older than this says nothing any more
BRACKET_AGE = 6 * 3600.0  # s: older brackets are dropped on load (a loop that drifts or restarts puts them off any phase)
SKEW = 300.0  # s: an entry from further in the future than this is a clock gone wrong: ignored


# -- pure: keys, the wall-clock conversion, ageing -------------------------------------------


def memory_key(base_url: str) -> str:
    """The file's key for a base URL: scheme, host and port, and the path without a trailing '/'.

    User name, password, query and fragment are dropped, so that nothing secret a URL may
    carry ever reaches the file.
    """
    parts = urlsplit(base_url.strip())
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None else f"{host}:{port}"
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


def finite(value: Any) -> Optional[float]:
    """A finite JSON number as float; None for anything else (bool, string, nan, null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _wall(t: float, offset: float) -> Optional[float]:
    """A monotonic time on the wall clock, to the millisecond (finer is noise: bracket ends
    are off by half a round trip); None for -inf (never)."""
    return round(t + offset, 3) if math.isfinite(t) else None


@dataclass(frozen=True)
class Recall:
    """What a process starts from: a cadence (monotonic times), and a period to believe on thin
    evidence (0: none), and when the entry was last backed by evidence (wall-clock)."""

    cadence: Cadence
    prior: float
    seen: float


def encode(cadence: Cadence, seen: float, mono_now: float, wall_now: float) -> Optional[dict[str, Any]]:
    """The file entry for ``cadence`` (monotonic times) as of ``mono_now``/``wall_now``, in
    wall-clock times; None if it holds nothing worth keeping (no bracket, no verdict).  ``seen`` (wall-clock) is when
    evidence last backed it."""
    if cadence.continuous:
        return {"seen": round(seen, 3), "continuous": True}
    offset = wall_now - mono_now
    entry: dict[str, Any] = {"seen": round(seen, 3), "continuous": False,
                             "brackets": [[_wall(lo, offset), _wall(hi, offset)] for lo, hi in cadence.brackets]}
    if cadence.locked and cadence.period is not None:
        entry.update(period=cadence.period, start=_wall(cadence.start, offset), width=cadence.width, drift=cadence.drift,
                     span=cadence.span, sharp_at=_wall(cadence.sharp_at, offset))
    elif not cadence.brackets:
        return None
    return entry


def entry_for(cadence: Cadence, mono_now: float, wall_now: float,
              confirmed_at: Optional[float] = None) -> Optional[dict[str, Any]]:
    """The entry a process writes for what it learnt, or None when it learnt nothing new.

    ``seen`` is when evidence last backed the cadence: the newest bracket of a locked one, or
    ``confirmed_at`` (monotonic; default ``mono_now``) for a continuous verdict this process
    reached itself (``upper`` under :data:`~.cadence.MIN_PERIOD`).  A loaded cadence no
    change has backed since holds no bracket and is not written again: its age stays honest.
    """
    if cadence.continuous:
        if cadence.upper >= MIN_PERIOD:
            return None  # loaded, never confirmed here
        seen = (mono_now if confirmed_at is None else confirmed_at) + wall_now - mono_now
    elif cadence.brackets:
        seen = max(hi for _lo, hi in cadence.brackets) + wall_now - mono_now
    else:
        return None
    return encode(cadence, min(seen, wall_now), mono_now, wall_now)


def reanchor(cadence: Cadence, now: float) -> Optional[Cadence]:
    """The locked ``cadence`` with its window moved to the latest tick at or before ``now``,
    widened by the drift of the ticks in between; None when that is too wide to aim at.

    Windows from the new anchor widen further exactly as they would have from the old one
    (``span`` folds into the width), so a process that loads this predicts what the one
    that saved it would have.
    """
    if not cadence.locked or cadence.period is None:
        return None
    k = max(0, math.floor((now - cadence.start) / cadence.period))
    lo, hi = cadence.window(k)
    moved = replace(cadence, start=lo, width=hi - lo, span=0.0, since_fit=0)
    return moved if moved.locked else None


def _brackets(value: Any, offset: float, oldest: float) -> Optional[tuple[Bracket, ...]]:
    """The file's wall-clock brackets on the monotonic clock, those after ``oldest`` only;
    None when the value is not a list of ``[lo, hi]`` pairs."""
    if not isinstance(value, list):
        return None
    out = []
    for pair in value:
        if not isinstance(pair, list) or len(pair) != 2:
            return None
        lo, hi = finite(pair[0]), finite(pair[1])
        if lo is None or hi is None:
            return None
        if lo < hi and hi > oldest:
            out.append((lo - offset, hi - offset))
    out.sort(key=lambda b: b[1])
    return tuple(out[-_KEEP:])


def decode(entry: Any, mono_now: float, wall_now: float) -> Optional[Recall]:
    """The :class:`Recall` of one file entry as of ``mono_now``/``wall_now``, aged; None when it
    is forgotten (older than :data:`FORGET`), from the future, or not a valid entry.

    Brackets older than :data:`BRACKET_AGE` are dropped; a locked phase is re-anchored
    (:func:`reanchor`) and, when too wide by now, only its period is kept, as a prior.
    """
    if not isinstance(entry, dict):
        return None
    seen = finite(entry.get("seen"))
    if seen is None or wall_now - seen > FORGET or seen - wall_now > SKEW:
        return None
    if entry.get("continuous") is True:
        return Recall(Cadence(continuous=True), 0.0, seen)  # a server that ticks is learnt on its own
    offset = wall_now - mono_now
    brackets = _brackets(entry.get("brackets", []), offset, wall_now - BRACKET_AGE)
    if entry.get("continuous") is not False or brackets is None:
        return None
    if "period" not in entry:
        return Recall(Cadence(brackets=brackets), 0.0, seen) if brackets else None
    period, start, width = finite(entry.get("period")), finite(entry.get("start")), finite(entry.get("width"))
    drift, span = finite(entry.get("drift")), finite(entry.get("span"))
    if (period is None or start is None or width is None or drift is None or span is None
            or not MIN_PERIOD <= period <= MAX_PERIOD * 1.05 or width < 0 or drift < 0 or span < 0):
        return None
    sharp = finite(entry.get("sharp_at"))
    cadence = Cadence(brackets=brackets, period=period, start=start - offset, width=width, drift=drift, span=span,
                      sharp_at=-math.inf if sharp is None else sharp - offset)
    aged = reanchor(cadence, mono_now)
    # Too old to aim at: only the period is believed (the phase is learnt again, sooner).
    return Recall(aged if aged is not None else Cadence(brackets=brackets), period, seen)


def signature(cadence: Cadence) -> Optional[tuple[str, float]]:
    """The verdict a save at once is due for: continuous, or locked on a period."""
    if cadence.continuous:
        return ("continuous", 0.0)
    if cadence.locked and cadence.period is not None:
        return ("locked", cadence.period)
    return None

"""Static HTML for a watch: the card a saved notebook shows without a kernel.

Pure string building, no ipywidgets, so nbconvert, GitHub and nbviewer render it.  Every
piece of server text goes through :func:`html.escape`; URLs are used only if
:func:`~runway_widgets.snapshot.safe_url` accepts them (plain http(s), no quotes), and
are escaped again inside attributes.  The live widget reuses these fragments so the
two never disagree.
"""

from __future__ import annotations

import html
import os
from typing import Callable
from urllib.parse import quote

from ..snapshot import safe_url
from ..updates import Outcome, WatchUpdate
from .text import short_id, status_phrase

__all__ = ["COLORS", "color_for", "title_html", "eta_words", "video_html", "status_html", "card_html", "board_html",
           "board_header", "elapsed_words", "is_compact", "GRID_STYLE"]

# One colour per ending; danger red is never reused for anything hopeful.
COLORS = {
    "running": "#1e88e5",
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "cancelled": "#ef6c00",
    "timed_out": "#f9a825",
    "stopped": "#757575",
}

VIDEO_WIDTH = 480  # px: readable in a notebook column, shrinks on narrow screens
GRID_CELL = 280  # px: the narrowest column of a compact board (3 per row from 900 px, 2 below)
#: A board of finished videos lays its cards out in a grid: the players shrink to the column.
GRID_STYLE = f"display:grid;grid-template-columns:repeat(auto-fill,minmax({GRID_CELL}px,1fr));column-gap:12px"


def color_for(outcome: Outcome) -> str:
    """The colour name (a key of :data:`COLORS`) for an outcome."""
    if outcome is Outcome.WATCHING:
        return "running"
    if outcome is Outcome.SUCCEEDED:
        return "succeeded"
    if outcome is Outcome.CANCELLED:
        return "cancelled"
    if outcome is Outcome.STOPPED:
        return "stopped"
    if outcome is Outcome.TIMED_OUT:
        return "timed_out"  # the task may still finish: not the red of a failure
    return "failed"


def elapsed_words(seconds: float) -> str:
    """Elapsed time: seconds under two minutes ("42 s"), then whole minutes ("3 min").

    Minutes later on: a live card sends a message only when what it says changed, so a
    long task costs about one a minute for its clock (see benchmarks/kernel.py).
    """
    return f"{max(0, int(seconds))} s" if seconds < 120 else f"{int(seconds // 60)} min"


def eta_words(seconds: float) -> str:
    """Time left, as rough as the estimate: "about 20 s left" (5 s steps), "about 4 min left"."""
    if seconds < 120:
        return f"about {max(5, int(round(seconds / 5)) * 5)} s left"
    return f"about {int(round(seconds / 60))} min left"


def _local_src(path: str) -> str:
    """A relative URL for a saved file, so a saved notebook beside it can play it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        rel = path
    return quote(rel.replace(os.sep, "/"))


def video_html(update: WatchUpdate, show_video: bool = True, src: str | None = None) -> str:
    """The result area: a ``<video controls>`` (never autoplay) and a link, or ''.

    ``src`` overrides the player's source with one of our own making (an embedded copy);
    server-provided URLs never go there.
    """
    snap = update.snapshot
    if update.outcome is not Outcome.SUCCEEDED or snap is None:
        return ""
    url = safe_url(snap.result_url) if snap.result_url else None
    if url is None:
        reason = "the server sent a result URL that is not plain http(s), so it is not shown" if snap.rejected_url else "the server gave no video URL"
        return f'<div class="rw-result rw-no-url">Finished, but {html.escape(reason)}.</div>'
    href = html.escape(url, quote=True)
    embedded = src is not None and src.startswith("data:")
    # A saved copy outlives the signed URL (which expires within a day or two).
    if src is not None:
        src = html.escape(src, quote=True)
    else:
        src = html.escape(_local_src(update.saved_path), quote=True) if update.saved_path else href
    parts = ['<div class="rw-result">']
    if show_video:
        parts.append(
            f'<video class="rw-video" src="{src}" controls preload="metadata" playsinline '
            f'width="{VIDEO_WIDTH}" style="max-width:100%;height:auto;display:block;margin:4px 0"></video>'
        )
    service = f'<a class="rw-link" href="{href}" target="_blank" rel="noopener noreferrer">'
    if update.saved_path:
        # "Open video" names the copy that outlives the signed URL (and a demo's simulator);
        # an embedded copy plays (and downloads) from the player itself.
        where = html.escape(update.saved_path)
        if embedded:
            parts.append(f'<small class="rw-saved">saved to {where}, embedded in this notebook</small>')
        else:
            local = html.escape(_local_src(update.saved_path), quote=True)
            parts.append(f'<a class="rw-saved" href="{local}" target="_blank" rel="noopener noreferrer">Open video</a>'
                         f" <small>(saved to {where})</small>")
        parts.append(f" · {service}service link</a> <small>(expires within a day or two)</small>")
    else:
        parts.append(f"{service}Open video</a>"
                     " <small>(the service's links expire within a day or two; --save keeps a copy)</small>")
    parts.append("</div>")
    return "".join(parts)


def status_html(update: WatchUpdate, with_action: bool = False) -> str:
    """The status line: status, (action,) elapsed, time left, retry note (all escaped).

    The percent is not here: the bar shows it, so a progress step changes one widget.
    The live card shows the action here (its title never changes); the static card has
    it in the title.
    """
    color = COLORS[color_for(update.outcome)]
    bits = [f'<b style="color:{color}">{html.escape(status_phrase(update))}</b>']
    snap = update.snapshot
    if with_action and snap is not None and snap.action:
        bits.append(html.escape(snap.action))
    if update.outcome is Outcome.WATCHING:
        bits.append(elapsed_words(update.elapsed))
        if update.eta is not None:
            bits.append(eta_words(update.eta))
        if update.note and update.note != status_phrase(update):
            bits.append(f'<span class="rw-note">{html.escape(update.note)}</span>')
    elif update.note and update.outcome is Outcome.SUCCEEDED:
        bits.append(f'<span class="rw-note">{html.escape(update.note)}</span>')
    return '<span class="rw-status">' + " · ".join(bits) + "</span>"


def title_html(update: WatchUpdate) -> str:
    """"Runway task 3d957031… · ACTION" (the action once known)."""
    snap = update.snapshot
    action = f" · {html.escape(snap.action)}" if snap is not None and snap.action else ""
    return (f'<span class="rw-title">Runway task <code title="{html.escape(update.task_id, quote=True)}">'
            f"{html.escape(short_id(update.task_id))}</code>{action}</span>")


def _bar(update: WatchUpdate) -> str:
    fraction = update.progress if update.progress is not None else 0.0
    color = COLORS[color_for(update.outcome)]
    return (
        '<div style="display:flex;align-items:center;gap:6px;max-width:520px;margin:4px 0">'
        '<div class="rw-bar" style="flex:1;background:#e0e0e0;border-radius:3px;height:10px">'
        f'<div style="width:{fraction * 100:.0f}%;background:{color};height:100%;border-radius:3px"></div></div>'
        f'<small>{fraction * 100:.0f}%</small></div>'
    )


def card_html(update: WatchUpdate, show_video: bool = True, result: Callable[[WatchUpdate], str] | None = None,
              caption: str = "") -> str:
    """The whole static card for one task; ``result`` renders the result area (default :func:`video_html`).

    ``caption`` is ready HTML (already escaped, see :mod:`.gallery`) shown between the title and the bar.
    """
    result_area = result(update) if result is not None else video_html(update, show_video)
    return (
        f'<div class="rw-card rw-{color_for(update.outcome)}" data-outcome="{update.outcome.value}" '
        'style="font-family:sans-serif;font-size:13px;'
        f'border-left:4px solid {COLORS[color_for(update.outcome)]};padding:4px 8px;margin:4px 0">'
        f"{title_html(update)}{caption}{_bar(update)}{status_html(update)}{result_area}</div>"
    )


def board_html(updates: list[WatchUpdate], show_video: bool = True, result: Callable[[WatchUpdate], str] | None = None) -> str:
    """A static board: a header line (3/5 done, 1 failed) and a card per task.

    Several finished videos make a compact board: the cards stand in a grid (2-3 per row)
    and each player shrinks to its column (its full-screen button enlarges it).
    """
    grid = f' style="{GRID_STYLE}"' if is_compact(updates) else ""
    return (f'<div class="rw-board"><div class="rw-header"><b>{html.escape(board_header(updates))}</b></div>'
            f'<div class="rw-list"{grid}>' + "".join(card_html(u, show_video, result) for u in updates) + "</div></div>")


def is_compact(updates: list[WatchUpdate]) -> bool:
    """True for a finished board with two videos or more: it is shown as a grid."""
    videos = sum(1 for u in updates if u.outcome is Outcome.SUCCEEDED and u.snapshot is not None and u.snapshot.result_url)
    return videos >= 2 and all(u.done for u in updates)


# How each ending is counted in a board's header, in this order.
_ENDED = ((Outcome.FAILED, "failed"), (Outcome.CANCELLED, "cancelled"), (Outcome.TIMED_OUT, "timed out"),
          (Outcome.GAVE_UP, "gave up"), (Outcome.NOT_FOUND, "not found"), (Outcome.ERROR, "error"),
          (Outcome.STOPPED, "stopped"))


def board_header(updates: list[WatchUpdate]) -> str:
    """``3/5 done, 1 failed, 1 stopped`` for a board of watches: each ending said apart."""
    done = sum(1 for u in updates if u.done)
    counts = [(sum(1 for u in updates if u.outcome is outcome), words) for outcome, words in _ENDED]
    return ", ".join([f"{done}/{len(updates)} done"] + [f"{n} {words}" for n, words in counts if n])

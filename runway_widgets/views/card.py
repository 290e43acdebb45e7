"""Static HTML for a watch: the card a saved notebook shows without a kernel.

Pure string building, no ipywidgets, so nbconvert, GitHub and nbviewer render it.  Every
piece of server text goes through :func:`html.escape`; URLs are used only if
:func:`~runway_widgets.snapshot.safe_url` accepts them (plain http(s), no quotes), and
are escaped again inside attributes.  The live widget reuses these fragments so the
two never disagree.
"""

from __future__ import annotations

import html

from ..snapshot import safe_url
from ..updates import Outcome, WatchUpdate
from .media import local_href, video_source
from .text import short_id, status_phrase

__all__ = ["COLORS", "color_for", "title_html", "eta_words", "video_html", "status_html", "card_html", "elapsed_words"]

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


def video_html(update: WatchUpdate, show_video: bool = True) -> str:
    """The result area: a ``<video controls>`` (never autoplay) and a link, or ''.

    The player's source comes from :func:`~.media.video_source` (an embedded small copy,
    the saved file, or the service's URL); server-provided URLs are used only if
    :func:`~runway_widgets.snapshot.safe_url` accepts them.
    """
    snap = update.snapshot
    if update.outcome is not Outcome.SUCCEEDED or snap is None:
        return ""
    url = safe_url(snap.result_url) if snap.result_url else None
    if url is None:
        reason = "the server sent a result URL that is not plain http(s), so it is not shown" if snap.rejected_url else "the server gave no video URL"
        return f'<div class="rw-result rw-no-url">Finished, but {html.escape(reason)}.</div>'
    href = html.escape(url, quote=True)
    source = video_source(update, url, embed=show_video)
    parts = ['<div class="rw-result">']
    if show_video:
        parts.append(
            f'<video class="rw-video" src="{html.escape(source.src, quote=True)}" controls preload="metadata" playsinline '
            f'width="{VIDEO_WIDTH}" style="max-width:100%;height:auto;display:block;margin:4px 0"></video>'
        )
    service = f'<a class="rw-link" href="{href}" target="_blank" rel="noopener noreferrer">'
    if update.saved_path:
        # "Open video" names the copy that outlives the signed URL (and a demo's simulator);
        # an embedded copy plays (and downloads) from the player itself.
        where = html.escape(update.saved_path)
        if source.embedded:
            parts.append(f'<small class="rw-saved">saved to {where}, embedded in this notebook</small>')
        else:
            local = html.escape(local_href(update.saved_path), quote=True)
            parts.append(f'<a class="rw-saved" href="{local}" target="_blank" rel="noopener noreferrer">Open video</a>'
                         f" <small>(saved to {where})</small>")
        parts.append(f" · {service}service link</a> <small>(expires within a day or two)</small>")
    else:
        parts.append(f"{service}Open video</a>"
                     " <small>(the service's links expire within a day or two; --save keeps a copy)</small>")
    parts.append("</div>")
    return "".join(parts)


def status_html(update: WatchUpdate, with_action: bool = False, with_times: bool = True) -> str:
    """The status line: status, (action,) elapsed, time left, retry note (all escaped).

    The percent is not here: the bar shows it, so a progress step changes one widget.
    The live card shows the action here (its title never changes); the static card has
    it in the title.  ``with_times=False`` leaves out elapsed and time left (the live card
    compares lines without them to tell a clock-only change).
    """
    color = COLORS[color_for(update.outcome)]
    bits = [f'<b style="color:{color}">{html.escape(status_phrase(update))}</b>']
    snap = update.snapshot
    if with_action and snap is not None and snap.action:
        bits.append(html.escape(snap.action))
    if update.outcome is Outcome.WATCHING:
        if with_times:
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


def card_html(update: WatchUpdate, show_video: bool = True, caption: str = "", result: bool = True) -> str:
    """The whole static card for one task: title, caption, bar, status line and (``result``) the result area.

    ``caption`` is ready HTML (already escaped, see :mod:`.caption`) shown between the title
    and the bar.  A record of a running watch leaves the result area out (``result=False``).
    """
    result_area = video_html(update, show_video) if result else ""
    return (
        f'<div class="rw-card rw-{color_for(update.outcome)}" data-outcome="{update.outcome.value}" '
        'style="font-family:sans-serif;font-size:13px;'
        f'border-left:4px solid {COLORS[color_for(update.outcome)]};padding:4px 8px;margin:4px 0">'
        f"{title_html(update)}{caption}{_bar(update)}{status_html(update)}{result_area}</div>"
    )

"""A board: the cards of one or several tasks under a header, in one of three layouts.

Every notebook view is a board, live (:class:`~.widget.TaskBoard`) or static
(:func:`board_html`); both take the same layout and ask here for the header and the grid, so
the live board and the card that replaces it look alike:

* ``"card"``: a single task, a board of one with its header hidden: the card alone, with its
  own Stop button and its full-size (480 px) player;
* ``"list"``: several tasks, a card a row under ``3/5 done, 1 failed`` and a Stop-all button;
  once two videos or more have finished it packs into a compact grid (2-3 a row, each player
  shrinks to its column, its full-screen button enlarges it);
* ``"gallery"``: captioned cards side by side from the start, 2-3 a row (``rw.generate`` with
  several prompts or seeds, ``rw.gallery``).

Pure string building like :mod:`.card`: no ipywidgets.
"""

from __future__ import annotations

import html
from typing import Literal, Mapping, NamedTuple, Sequence

from ..updates import Outcome, WatchUpdate
from .caption import Caption, caption_html
from .card import card_html

__all__ = ["BoardLayout", "Grid", "GRID_CELL", "board_html", "board_header", "columns_for", "grid_for", "is_compact",
           "waiting"]

BoardLayout = Literal["card", "list", "gallery"]

GRID_CELL = 280  # px: the narrowest column of a compact board (3 per row from 900 px, 2 below)


class Grid(NamedTuple):
    """The CSS grid a board's cards stand in (the same values for the widget and the HTML)."""

    columns: str  # grid-template-columns
    gap: str  # row gap, column gap
    align: str  # align-items


def waiting(task_id: str) -> WatchUpdate:
    """What a board shows for a task before its first update."""
    return WatchUpdate(task_id, Outcome.WATCHING, None, 0.0, 0)


def columns_for(count: int) -> int:
    """A gallery's columns: 2 per row for 2 or 4 cards, else 3 (1 for a single card)."""
    if count <= 1:
        return 1
    return 2 if count in (2, 4) else 3


def is_compact(updates: Sequence[WatchUpdate]) -> bool:
    """True for a finished board with two videos or more: it is shown as a grid."""
    videos = sum(1 for u in updates if u.outcome is Outcome.SUCCEEDED and u.snapshot is not None and u.snapshot.result_url)
    return videos >= 2 and all(u.done for u in updates)


def grid_for(layout: BoardLayout, updates: Sequence[WatchUpdate]) -> Grid | None:
    """The grid of a board in ``layout`` showing ``updates``, or None while its cards stand in a column."""
    if layout == "gallery":
        return Grid(f"repeat({columns_for(len(updates))},minmax(0,1fr))", "8px", "flex-start")
    if layout == "list" and is_compact(updates):
        return Grid(f"repeat(auto-fill,minmax({GRID_CELL}px,1fr))", "0 12px", "stretch")
    return None


# How each ending is counted in a board's header, in this order.
_ENDED = ((Outcome.FAILED, "failed"), (Outcome.CANCELLED, "cancelled"), (Outcome.TIMED_OUT, "timed out"),
          (Outcome.GAVE_UP, "gave up"), (Outcome.NOT_FOUND, "not found"), (Outcome.ERROR, "error"),
          (Outcome.STOPPED, "stopped"))


def board_header(updates: Sequence[WatchUpdate]) -> str:
    """``3/5 done, 1 failed, 1 stopped`` for a board of watches: each ending said apart."""
    done = sum(1 for u in updates if u.done)
    counts = [(sum(1 for u in updates if u.outcome is outcome), words) for outcome, words in _ENDED]
    return ", ".join([f"{done}/{len(updates)} done"] + [f"{n} {words}" for n, words in counts if n])


def board_html(updates: Sequence[WatchUpdate], layout: BoardLayout = "list",
               captions: Mapping[str, Caption | None] | None = None, show_video: bool = True, result: bool = True) -> str:
    """The static board: header (unless ``layout`` is ``"card"``) and a card per task, in a grid if the layout says so.

    ``captions`` say how each task was made (prompt, parameters, input image); ``result=False``
    leaves the result areas out (the record of a running watch).
    """
    captions = captions or {}
    cards = [card_html(u, show_video, caption_html(captions.get(u.task_id)), result) for u in updates]
    grid = grid_for(layout, updates)
    style = (f' style="display:grid;grid-template-columns:{grid.columns};gap:{grid.gap};align-items:{grid.align}"'
             if grid else "")
    header = "" if layout == "card" else f'<div class="rw-header"><b>{html.escape(board_header(updates))}</b></div>'
    if layout == "gallery":
        # A cell that may shrink below its player's width keeps a fixed grid's columns even.
        cells = "".join(f'<div class="rw-cell" style="min-width:0">{card}</div>' for card in cards)
        return f'<div class="rw-gallery">{header}<div class="rw-grid"{style}>{cells}</div></div>'
    return f'<div class="rw-board">{header}<div class="rw-list"{style}>{"".join(cards)}</div></div>'

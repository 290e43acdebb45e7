"""The mimebundles a card leaves in a notebook: live, saved-state record, and final.

Pure string and dict building (no IPython, no widgets), so what a saved notebook holds can
be read and tested without a kernel.  ``notebook.NotebookView`` decides when each is shown.

* **live**: the widget view, with a one-line text stand-in;
* **record**: static HTML of the current state, for a notebook saved while the watch runs
  (the live widget hides it with :func:`hide_record_css`; where the widget is gone, the
  record hides the widget's "model not found" line itself);
* **final**: the static card or board that replaces the live one when every watch ended.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..updates import WatchUpdate
from .board import BoardLayout, board_html
from .caption import Caption
from .text import summary_line

__all__ = ["CARD_META", "RECORD_META", "record_class", "hide_record_css", "static_bundle", "live_bundle",
           "record_bundle"]

# Output metadata naming what each output is, for tools (and tests) reading a saved notebook.
CARD_META = {"runway_widgets": {"output": "card"}}
RECORD_META = {"runway_widgets": {"output": "record"}}

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def record_class(key: str) -> str:
    """The CSS class of one view's record outputs (``key``: hex, unique per view)."""
    return f"rw-record-{key}"


def hide_record_css(key: str) -> str:
    """A <style> for inside the live widget: while it renders, its record (and the record's
    output row, where :has() is supported) is hidden, so the card shows once."""
    cls = record_class(key)
    return f"<style>.{cls}{{display:none}} .jp-OutputArea-child:has(.{cls}){{display:none}}</style>"


def static_bundle(updates: list[WatchUpdate], layout: BoardLayout, captions: Mapping[str, Caption | None] | None = None,
                  show_video: bool = True, result: bool = True) -> dict[str, Any]:
    """The static board (a single task's: its card alone) and its ``text/plain`` summary.

    The arguments are :func:`~.board.board_html`'s; the record of a running watch passes
    ``result=False``.
    """
    page = board_html(updates, layout, captions, show_video, result)
    return {"text/html": page, "text/plain": "\n".join(summary_line(u) for u in updates)}


def live_bundle(model_id: str, task_ids: list[str]) -> dict[str, Any]:
    """The widget view, with a plain-text stand-in for front ends without widgets."""
    what = f"task {task_ids[0]}" if len(task_ids) == 1 else f"{len(task_ids)} tasks"
    return {
        WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": model_id},
        "text/plain": f"Live Runway card for {what} (it shows with the running kernel).",
    }


def record_bundle(static: dict[str, Any], key: str) -> dict[str, Any]:
    """``static`` (a view's static form of its current state) as the record a saved notebook
    shows if the kernel goes away."""
    cls = record_class(key)
    # Where the record shows, the live widget is gone: hide the widget's error line
    # ("model not found") in the output row just above this one.  JupyterLab's widget
    # renderer puts the class jupyter-widgets on its own node only on that error (a live
    # view carries it one level down).  :has() needs Chromium 105+, Firefox 121+, Safari 15.4+.
    css = (f"<style>.jp-OutputArea-child:has(+ .jp-OutputArea-child .{cls})"
           f":has(> .jp-OutputArea-output.jupyter-widgets){{display:none}}</style>")
    note = ('<div class="rw-saved-note" style="font-size:12px;color:#555">Saved while the watch was running; '
            "the watch stopped with its kernel. <code>%runway_watch --resume</code> picks it up.</div>")
    return {
        "text/html": f'<div class="rw-record {cls}">{css}{static["text/html"]}{note}</div>',
        "text/plain": static["text/plain"] + "\n(when saved; %runway_watch --resume picks it up)",
    }

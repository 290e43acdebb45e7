"""The live notebook view (ipywidgets): a board of cards, for one task or several.

A single task is a board of one with its header hidden; a gallery is a board in a grid of
captioned cards (the layouts are described in :mod:`.board`).  Created on the main thread;
afterwards :meth:`TaskBoard.render` only assigns traits, which
is safe from a background thread (ipywidgets sends a comm message per changed widget;
``hold_sync`` folds several trait changes of one widget into one message, and an
unchanged value sends nothing).  Works with ipywidgets 7.6+ and 8.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Mapping

from ..errors import ConfigError
from ..watch import Watch, WatchUpdate
from .board import BoardLayout, Grid, board_header, grid_for, waiting
from .caption import Caption, caption_html
from .card import color_for, status_html, title_html, video_html

__all__ = ["TaskCard", "TaskBoard", "require_ipywidgets"]

_HEADER_INTERVAL = 0.3  # s between board header updates
# s between status-line rewrites that only move its clock ("42 s · about 20 s left"): under
# two minutes the seconds change at every poll, and each rewrite is one more comm message
# on top of the bar's; anything else in the line shows at once.
_CLOCK_INTERVAL = 10.0
_BAR_STYLES = {"running": "info", "succeeded": "success", "failed": "danger", "cancelled": "warning",
               "timed_out": "warning", "stopped": ""}


def require_ipywidgets() -> Any:
    """Import ipywidgets or raise one clear sentence about installing it."""
    try:
        import ipywidgets  # type: ignore[import-untyped]  # ships no type information
    except ImportError:
        raise ConfigError("ipywidgets is not installed: run  %pip install 'ipywidgets>=7.6'  and restart the kernel.") from None
    major_minor = tuple(int(p) for p in ipywidgets.__version__.split(".")[:2] if p.isdigit())
    if major_minor < (7, 6):
        raise ConfigError(
            f"ipywidgets {ipywidgets.__version__} is too old: run  %pip install 'ipywidgets>=7.6'  and restart the kernel."
        )
    return ipywidgets


class TaskCard:
    """One task's live card on a :class:`TaskBoard`: title and Stop button, progress bar, then
    status line and video in one body.

    Status and result share one HTML widget and the title never changes, so the card
    costs about one comm message per visible change and two at the end (bar, body: the
    final body carries a style, scoped to this card's own DOM class, that hides the Stop
    button and the hint; hiding them through their layouts was a third message);
    benchmarks/kernel.py counts them.
    """

    def __init__(self, task_id: str, show_video: bool = True, foreground: bool = False, caption: str = "",
                 css: str = "") -> None:
        widgets = require_ipywidgets()
        self.task_id = task_id
        self.show_video = show_video
        # A class of this card alone: the final body's style hides this card's controls only.
        self.dom_class = f"runway-card-{uuid.uuid4().hex}"
        # Classes and layouts are given at construction: set afterwards, each would cost
        # one more comm message per card.
        # ``caption`` (escaped HTML: the prompt and parameters) and ``css`` (a <style> element)
        # ride in the title, which never changes: they cost no message.
        self.title = widgets.HTML(value=css + title_html(waiting(task_id)) + caption, _dom_classes=["runway-title"])
        self.stop_button = widgets.Button(description="Stop watching", icon="stop", _dom_classes=["runway-stop"],
                                          tooltip="Stop polling this task (the task itself goes on)",
                                          layout=widgets.Layout(width="auto", display="none" if foreground else None))
        # A click reaches the kernel only between cells: while a foreground cell polls, the
        # button could not work, so it gives way to a hint that does.
        self.hint = widgets.HTML(value='<small style="color:#757575">interrupt the kernel (&#9632;) to stop waiting</small>',
                                 _dom_classes=["runway-hint"], layout=widgets.Layout(display=None if foreground else "none"))
        self.bar = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, bar_style="info", description="",
                                         style={"description_width": "initial"}, _dom_classes=["runway-bar"],
                                         layout=widgets.Layout(width="360px", max_width="100%"))
        self.body = widgets.HTML(value=self._body_html(waiting(task_id)), _dom_classes=["runway-body"])
        top = widgets.HBox([self.title, self.stop_button, self.hint],
                           layout=widgets.Layout(align_items="center", flex_flow="row wrap", grid_gap="8px"))
        self.root = widgets.VBox([top, self.bar, self.body], _dom_classes=["runway-card", self.dom_class],
                                 layout=widgets.Layout(border_left="4px solid #cfd8dc", padding="2px 8px", margin="2px 0"))
        self._watch: Watch | None = None
        self.stop_button.on_click(lambda _button: self.stop())
        self.last: WatchUpdate | None = None
        self._line = ""  # the status line last sent, without its clock
        self._line_at = float("-inf")  # when the body was last rewritten (time.monotonic)

    def attach(self, watch: Watch) -> None:
        """Let the Stop button stop ``watch``."""
        self._watch = watch

    def stop(self) -> None:
        """Stop the attached watch (the Stop button, and a board's Stop all)."""
        if self._watch is not None:
            self._watch.stop("Stopped from the card.")

    def _body_html(self, update: WatchUpdate) -> str:
        # The result area decides where its player's video comes from (views/media.py).
        result = video_html(update, self.show_video) if update.done else ""
        # Once the watch has ended there is nothing to stop: its controls go with this message.
        hide = (f"<style>.{self.dom_class} .runway-stop,.{self.dom_class} .runway-hint{{display:none!important}}</style>"
                if update.done else "")
        return (f'{hide}<div class="runway-status">{status_html(update, with_action=True)}</div>'
                f'<div class="runway-result">{result}</div>')

    @property
    def controls_hidden(self) -> bool:
        """True once the card's body hides its Stop button and hint (the watch has ended)."""
        return f".{self.dom_class} .runway-stop," in self.body.value

    def render(self, update: WatchUpdate) -> None:
        """Show ``update``; safe to call from any thread (it only assigns traits)."""
        self.last = update
        # Unchanged values send nothing, and hold_sync folds the bar's changes into one
        # message: a progress step costs one message, a status change one more (a change of
        # the status line's clock alone waits up to _CLOCK_INTERVAL to ride along).
        with self.bar.hold_sync():
            if update.progress is not None:
                self.bar.value = update.progress
                self.bar.description = f"{update.percent}%"
            self.bar.bar_style = _BAR_STYLES[color_for(update.outcome)]
        body = self._body_html(update)
        line = status_html(update, with_action=True, with_times=False)
        now = time.monotonic()
        if body != self.body.value and (update.done or line != self._line or now - self._line_at >= _CLOCK_INTERVAL):
            self.body.value = body
            self._line, self._line_at = line, now

    __call__ = render


class TaskBoard:
    """The cards of one or several tasks under a header line (``3/5 done, 1 failed``) with a Stop-all button.

    ``layout`` (see :mod:`.board`): ``"card"`` is a single task's card alone, with no header
    row (the card has its own Stop button), ``"list"`` stands the cards in a column that packs
    into a compact grid once the videos are in, ``"gallery"`` sets them in a grid from the
    start.  ``captions`` say how each task was made.  ``css`` (a <style> element) rides in the
    header, or in a lone card's title: a style applies wherever it stands in the page.
    """

    def __init__(self, task_ids: list[str], layout: BoardLayout = "list", captions: Mapping[str, Caption | None] | None = None,
                 show_video: bool = True, foreground: bool = False, css: str = "") -> None:
        widgets = require_ipywidgets()
        captions = captions or {}
        self.layout = layout
        initial = [waiting(t) for t in task_ids]
        self._css = css  # kept in the header (a few bytes more per header change)
        self._lock = threading.Lock()
        self._header_at = float("-inf")
        if layout == "card":
            # A board of one is its card alone: no header row, Stop-all or grid box is even
            # created (each widget would cost its comm messages, for every watch).
            (task_id,) = task_ids
            card = TaskCard(task_id, show_video, foreground, caption_html(captions.get(task_id)), css)
            self.cards = {task_id: card}
            self.root = card.root
            return
        self.cards = {t: TaskCard(t, show_video, foreground, caption=caption_html(captions.get(t))) for t in task_ids}
        self.header = widgets.HTML(value=f"{css}<b>{board_header(initial)}</b>",
                                   _dom_classes=["runway-board-header"])
        self.stop_all = widgets.Button(description="Stop all", icon="stop", _dom_classes=["runway-stop-all"],
                                       layout=widgets.Layout(width="auto", display="none" if foreground else None))
        self.stop_all.on_click(self._stop_all)
        top = widgets.HBox([self.header, self.stop_all], layout=widgets.Layout(align_items="center"))
        # The cards sit in a box of their own: a gallery's is a grid from the start, a list's
        # becomes one when the board is finished and compact.
        gallery = layout == "gallery"
        grid = grid_for(layout, initial)
        self.grid = widgets.Box([card.root for card in self.cards.values()],
                                _dom_classes=["runway-cards"] + (["runway-gallery-grid"] if gallery else []),
                                layout=widgets.Layout(display="flex", flex_flow="column") if grid is None
                                else widgets.Layout(display="grid", width="100%", **_grid_traits(grid)))
        self.root = widgets.VBox([top, self.grid], _dom_classes=["runway-gallery" if gallery else "runway-board"])

    def _stop_all(self, _button: Any) -> None:
        for card in self.cards.values():
            card.stop()

    def render(self, update: WatchUpdate) -> None:
        """Show ``update`` on its card and refresh the header; safe from any thread."""
        card = self.cards.get(update.task_id)
        if card is None:
            return
        card.render(update)
        if self.layout == "card":
            return  # its header is hidden: nothing to count, nothing to pack
        with self._lock:  # several workers may finish cards at once
            updates = [c.last or waiting(c.task_id) for c in self.cards.values()]
            finished = all(u.done for u in updates)
            now = time.monotonic()
            # Many cards finishing together would change the header many times a second:
            # at most every 0.3 s, except the final count, which always shows.
            if finished or now - self._header_at >= _HEADER_INTERVAL:
                self._header_at = now
                self.header.value = f"{self._css}<b>{board_header(updates)}</b>"
            if finished and self.stop_all.layout.display != "none":
                self.stop_all.layout.display = "none"
            grid = grid_for(self.layout, updates) if finished else None
            if grid is not None and self.grid.layout.display != "grid":
                with self.grid.layout.hold_sync():  # one message
                    for name, value in _grid_traits(grid).items():
                        setattr(self.grid.layout, name, value)
                    self.grid.layout.display = "grid"

    __call__ = render


def _grid_traits(grid: Grid) -> dict[str, str]:
    """``grid`` as ipywidgets Layout traits."""
    return {"grid_template_columns": grid.columns, "grid_gap": grid.gap, "align_items": grid.align}

"""Results side by side: a gallery of captioned cards, live while tasks run, static at the end.

:class:`GalleryView` is a :class:`~runway_widgets.notebook.NotebookView` whose widget is a
grid of cards (2-3 per row) and whose static form is :func:`~runway_widgets.views.gallery.gallery_html`:
the same card/record outputs, the same replacement by static HTML when every watch has
ended, so a saved notebook shows the finished videos side by side without a widget model.
:func:`gallery` builds one from watches or task-journal records.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from .notebook import NotebookView
from .records import TaskRecord
from .snapshot import TaskSnapshot, TaskState
from .updates import Outcome, WatchUpdate
from .views.card import board_header
from .views.gallery import Caption, caption_html, columns_for, gallery_html
from .views.outputs import hide_record_css
from .views.text import summary_line
from .views.widget import TaskCard, require_ipywidgets
from .watch import Watch

__all__ = ["GalleryView", "Gallery", "gallery", "caption_for"]


class GalleryWidget:
    """Captioned live cards in a grid under a header and a Stop-all button."""

    def __init__(self, task_ids: list[str], captions: dict[str, Caption | None], video_source: Callable[[WatchUpdate], str],
                 foreground: bool, css: str) -> None:
        widgets = require_ipywidgets()
        self.cards = {t: TaskCard(t, True, video_source, foreground, caption=caption_html(captions.get(t)))
                      for t in task_ids}
        self._css = css
        self.header = widgets.HTML(value=f"{css}<b>0/{len(task_ids)} done</b>", _dom_classes=["runway-board-header"])
        self.stop_all = widgets.Button(description="Stop all", icon="stop", _dom_classes=["runway-stop-all"],
                                       layout=widgets.Layout(width="auto", display="none" if foreground else None))
        self.stop_all.on_click(self._stop_all)
        columns = columns_for(len(task_ids))
        grid = widgets.GridBox([card.root for card in self.cards.values()], _dom_classes=["runway-gallery-grid"],
                               layout=widgets.Layout(grid_template_columns=f"repeat({columns}, minmax(0, 1fr))",
                                                     grid_gap="8px", width="100%"))
        top = widgets.HBox([self.header, self.stop_all], layout=widgets.Layout(align_items="center"))
        self.root = widgets.VBox([top, grid], _dom_classes=["runway-gallery"])

    def _stop_all(self, _button: Any) -> None:
        for card in self.cards.values():
            card._on_stop(None)

    def render(self, update: WatchUpdate) -> None:
        """Show ``update`` on its card and recount the header; safe from any thread."""
        card = self.cards.get(update.task_id)
        if card is None:
            return
        card.render(update)
        updates = [c.last or WatchUpdate(c.task_id, Outcome.WATCHING, None, 0.0, 0) for c in self.cards.values()]
        self.header.value = f"{self._css}<b>{board_header(updates)}</b>"  # unchanged text sends nothing
        if all(u.done for u in updates) and self.stop_all.layout.display != "none":
            self.stop_all.layout.display = "none"

    __call__ = render


class GalleryView(NotebookView):
    """A notebook view of several tasks as a captioned grid (also for one task)."""

    def _make_widget(self, task_ids: list[str], show_video: bool, foreground: bool) -> Any:
        return GalleryWidget(task_ids, self.captions, self._result_html, foreground, hide_record_css(self.display_key))

    def _static(self, updates: list[WatchUpdate], result: Callable[[WatchUpdate], str]) -> dict[str, Any]:
        return {"text/html": gallery_html(updates, self.captions, result),
                "text/plain": "\n".join(summary_line(u) for u in updates)}


def caption_for(handle: Watch) -> Caption | None:
    """The caption of a watch started by ``generate()`` (None for any other watch)."""
    from .generation import caption_of

    plan = caption_of(handle)
    if plan is None:
        return None
    image = plan.image
    return Caption(plan.prompt, plan.parameters, image.label if image else None, image.thumbnail if image else None)


def _record_update(record: TaskRecord) -> WatchUpdate:
    """A record's last known state as a view update (an unfinished record reads as stopped)."""
    try:
        outcome = Outcome(record.outcome)
    except ValueError:
        outcome = Outcome.STOPPED
    if outcome is Outcome.WATCHING:
        outcome = Outcome.STOPPED
    try:
        state = TaskState(record.state) if record.state else TaskState.UNKNOWN
    except ValueError:
        state = TaskState.UNKNOWN
    snap = TaskSnapshot(record.task_id, state, record.status or "UNKNOWN",
                        progress=(record.progress / 100) if isinstance(record.progress, int) else None,
                        result_url=record.result_url, fail_reason=record.fail_reason or "", fail_code=record.fail_code or "")
    note = "" if record.finished else "not being watched here"
    return WatchUpdate(record.task_id, outcome, snap, 0.0, 0, note=note, saved_path=record.saved_path)


def _record_caption(record: TaskRecord) -> Caption:
    params = dict(record.parameters or {})
    raw = params.get("options")
    options = raw if isinstance(raw, dict) else {}
    params.setdefault("duration", options.get("seconds"))
    image = params.get("promptImage") or params.get("image")
    return Caption(record.prompt or "", params, str(image)[:80] if image else None,
                   image if isinstance(image, str) and image.startswith("http") else None)


class Gallery:
    """Watches and/or journal records shown side by side.  Display it (last line of a cell).

    Running watches make it live (a grid of cards that become static at the end);
    otherwise it is static HTML at once.  ``html()`` returns that static HTML.
    """

    def __init__(self, items: Iterable[Watch | TaskRecord]) -> None:
        self.watches: list[Watch] = []
        self.records: list[TaskRecord] = []
        self.order: list[Watch | TaskRecord] = []
        for item in items:
            if isinstance(item, Watch):
                self.watches.append(item)
            elif isinstance(item, TaskRecord):
                self.records.append(item)
            else:
                from .errors import ConfigError

                raise ConfigError(f"A gallery shows watches or task records, not {type(item).__name__}.")
            self.order.append(item)
        if not self.order:
            from .errors import ConfigError

            raise ConfigError("A gallery needs at least one watch or task record.")

    def _parts(self) -> tuple[list[WatchUpdate], dict[str, Caption | None]]:
        updates, captions = [], {}
        for item in self.order:
            if isinstance(item, Watch):
                updates.append(item.update())
                captions[item.task_id] = caption_for(item)
            else:
                updates.append(_record_update(item))
                captions[item.task_id] = _record_caption(item)
        return updates, captions

    def html(self) -> str:
        """The static gallery as it stands now."""
        from .views.outputs import result_html

        updates, captions = self._parts()
        return gallery_html(updates, captions, lambda u: result_html(u, True))

    def _repr_html_(self) -> str:
        return self.html()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        updates, captions = self._parts()
        live = [w for w in self.watches if not w.done()]
        if not live or self.records:
            display({"text/html": self.html(), "text/plain": "\n".join(summary_line(u) for u in updates)}, raw=True)
            return
        view = GalleryView([u.task_id for u in updates], captions=captions)
        view.show()
        for handle in self.watches:
            view.attach(handle)


def gallery(items: Iterable[Watch | TaskRecord]) -> Gallery:
    """A gallery of ``items`` (watches from :func:`generate`/:func:`watch`, or ``history()`` records).

    >>> rw.gallery(rw.generate(["a boat", "a ship"], seed=[1, 2], confirm=True))  # doctest: +SKIP
    >>> rw.gallery(rw.history(status="succeeded", limit=6))                        # doctest: +SKIP
    """
    return Gallery(items)

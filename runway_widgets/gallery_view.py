"""Results side by side: a gallery of captioned cards, live while tasks run, static at the end.

A gallery is a board in the ``"gallery"`` layout (captioned cards, 2-3 per row; see
``views/board.py``) on a :class:`~runway_widgets.notebook.NotebookView`: the same card/record
outputs, the same replacement by static HTML when every watch has ended, so a saved notebook
shows the finished videos side by side without a widget model.  :func:`gallery` builds one
from watches or task-journal records.
"""

from __future__ import annotations

from typing import Iterable

from .notebook import NotebookView
from .records import TaskRecord
from .snapshot import TaskSnapshot, TaskState
from .updates import Outcome, WatchUpdate
from .views.board import board_html
from .views.caption import Caption
from .views.outputs import static_bundle
from .watch import Watch

__all__ = ["Gallery", "gallery", "caption_for"]


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
        updates, captions = self._parts()
        return board_html(updates, "gallery", captions)

    def _repr_html_(self) -> str:
        return self.html()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        updates, captions = self._parts()
        live = [w for w in self.watches if not w.done()]
        if not live or self.records:
            display(static_bundle(updates, "gallery", captions), raw=True)
            return
        view = NotebookView([u.task_id for u in updates], captions=captions, layout="gallery")
        view.show()
        for handle in self.watches:
            view.attach(handle)


def gallery(items: Iterable[Watch | TaskRecord]) -> Gallery:
    """A gallery of ``items`` (watches from :func:`generate`/:func:`watch`, or ``history()`` records).

    >>> rw.gallery(rw.generate(["a boat", "a ship"], seed=[1, 2], confirm=True))  # doctest: +SKIP
    >>> rw.gallery(rw.history(status="succeeded", limit=6))                        # doctest: +SKIP
    """
    return Gallery(items)

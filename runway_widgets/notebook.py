"""Putting watches on a notebook page: display once, update from the poller, leave a static result.

Rules this module keeps (see PITFALLS.md):

* Widgets are created and displayed on the main thread, here; the poller's threads only
  assign traits.  Nothing here calls ``display``/``print`` from a background thread.
* The displayed mimebundle carries the live widget *and* a static ``text/html`` card and
  ``text/plain`` summary.  When every watch on it has ended, the bundle is replaced (by
  its display id) with the final static card, so a saved notebook shows the result, not
  the 0 % it had when first displayed.  That replacement is an ``update_display_data``
  message, which frontends route by display id, from whichever thread.
* ipykernel 7.0.0/7.0.1 kill a thread that sends comm messages outside a copied context
  (ipykernel#1450); on exactly those versions renders run in a copy of the main thread's
  context.  On 7.1+ a copied context would pin messages to the originating cell, so not there.
* In foreground mode (Colab, terminal IPython, ``--wait``) the poller's updates are queued
  and applied by the main thread while the cell runs.
"""

from __future__ import annotations

import base64
import contextvars
import functools
import os
import queue
import sys
import threading
import time
import uuid
import weakref
from typing import Any, Callable

from .views.card import board_html, card_html, video_html
from .views.gallery import Caption, caption_html
from .views.text import summary_line
from .views.widget import TaskBoard, TaskCard
from .watch import Outcome, Watch, WatchUpdate

__all__ = ["NotebookView", "WatchList", "in_kernel", "in_colab", "colab_secret", "display_watch", "EMBED_LIMIT"]

EMBED_LIMIT = 2 * 1024 * 1024  # saved videos up to this size are embedded, so the notebook carries them
RECORD_INTERVAL = 2.0  # s between rewrites of a live card's saved-state record
_views: "weakref.WeakKeyDictionary[Watch, NotebookView]" = weakref.WeakKeyDictionary()
# Output metadata naming what each output is, for tools (and tests) reading a saved notebook.
_META_CARD = {"runway_widgets": {"output": "card"}}
_META_RECORD = {"runway_widgets": {"output": "record"}}


def in_colab() -> bool:
    """True inside Google Colab (its module is loaded in every Colab kernel)."""
    return "google.colab" in sys.modules


def in_kernel(shell: Any) -> bool:
    """True when IPython runs in a Jupyter kernel (a frontend can show widgets)."""
    return getattr(shell, "kernel", None) is not None


def colab_secret(name: str) -> str | None:
    """Read a Colab secret; call on the main thread only (``userdata`` is not thread-safe)."""
    if not in_colab():
        return None
    try:
        from google.colab import userdata  # type: ignore[import-not-found]

        value = userdata.get(name)
    except Exception:  # not granted, not defined, or an older Colab: fall through to the usual error
        return None
    return value or None


def _needs_context_copy() -> bool:
    # Private test toggle, not a user setting: RUNWAY_WIDGETS_CONTEXT_FIX=0 turns the
    # ipykernel 7.0.x workaround off, so tests/test_colab_env.py can show (negative control)
    # that without it, on 7.0.1, the card's first trait set from the poller thread raises
    # LookupError (ipykernel#1450), the watch detaches the card, and it never reaches its end.
    # Unset or any other value: the normal behaviour below.
    if os.environ.get("RUNWAY_WIDGETS_CONTEXT_FIX") == "0":
        return False
    try:
        import ipykernel
    except ImportError:
        return False
    return ipykernel.__version__.split(".")[:2] == ["7", "0"]  # fixed in 7.1


# ipykernel 7.0.x: the context of the cell running *now*, refreshed by a pre_run_cell hook
# on the main thread.  Background renders run in a copy of it, so their messages carry the
# current cell's parent, as they would on other kernels (and nbclient records them).
_cell_context: contextvars.Context | None = None


def _remember_cell_context(*_info: Any) -> None:
    global _cell_context
    _cell_context = contextvars.copy_context()


def track_cell_context(shell: Any) -> None:
    """On ipykernel 7.0.x, keep :data:`_cell_context` current (called on ``%load_ext``)."""
    if _needs_context_copy():
        _remember_cell_context()
        if _remember_cell_context not in shell.events.callbacks["pre_run_cell"]:
            shell.events.register("pre_run_cell", _remember_cell_context)


def untrack_cell_context(shell: Any) -> None:
    """Undo :func:`track_cell_context` (called on ``%unload_ext``)."""
    if _remember_cell_context in shell.events.callbacks["pre_run_cell"]:
        shell.events.unregister("pre_run_cell", _remember_cell_context)


@functools.lru_cache(maxsize=8)
def _data_uri(path: str, size: int, mtime: float) -> str:
    # Cached: the live card and the final static bundle both need it (size and mtime in
    # the key, so a rewritten file is read again).
    with open(path, "rb") as handle:
        return "data:video/mp4;base64," + base64.b64encode(handle.read()).decode("ascii")


def _embed_or_local(update: WatchUpdate, show_video: bool) -> str:
    """Result HTML; a small saved file is embedded so the saved notebook plays it anywhere."""
    path = update.saved_path
    if show_video and path and os.path.isfile(path):
        stat = os.stat(path)
        if stat.st_size <= EMBED_LIMIT:
            # Our own bytes from disk, not a server-provided URL: a data: URI is safe here.
            return video_html(update, show_video, src=_data_uri(path, stat.st_size, stat.st_mtime))
    return video_html(update, show_video)


class NotebookView:
    """One card (one task) or one board (several) on the page, in as many places as it is shown.

    Each showing is two outputs (a *slot*): the **card** (the live widget) and the
    **record** (static HTML of the current state).  While the widget is alive, a style
    inside it hides the record, so the page shows the card once.  If the notebook is
    saved now and reopened without this kernel, the widget cannot come back (JupyterLab
    and Notebook 7 then show "Error displaying widget: model not found", whatever else
    the output holds), but the record can: it reads "45 % when saved" and says how to
    resume.  When every watch on the view has ended, each card output is replaced by the
    final static card and each record by an empty output: what stays in the notebook
    needs no widget model anywhere it is opened.
    """

    def __init__(self, task_ids: list[str], show_video: bool = True, foreground: bool = False,
                 captions: dict[str, Caption | None] | None = None) -> None:
        self.display_key = uuid.uuid4().hex
        self.captions = dict(captions or {})  # task id -> how it was made (prompt, parameters, input image)
        self.show_video = show_video
        self.widget: Any = self._make_widget(task_ids, show_video, foreground)
        self.task_ids = task_ids
        self.foreground = foreground
        self._updates: dict[str, WatchUpdate] = {t: WatchUpdate(t, Outcome.WATCHING, None, 0.0, 0) for t in task_ids}
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[WatchUpdate] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._finalized = False
        self._slots: list[tuple[str, str]] = []  # (card display id, record display id) per showing
        self._record_shown: tuple[Any, ...] | None = None
        self._record_at = float("-inf")
        self._fix_context = _needs_context_copy()
        if self._fix_context and _cell_context is None:
            _remember_cell_context()  # we are on the main thread, inside the cell
        self.watches: list[Watch] = []

    def _make_widget(self, task_ids: list[str], show_video: bool, foreground: bool) -> Any:
        """The live widget: a card for one task, a board for several (a gallery overrides this)."""
        if len(task_ids) == 1:
            return TaskCard(task_ids[0], show_video, self._result_html, foreground, css=self._hide_record_css(),
                            caption=caption_html(self.captions.get(task_ids[0])))
        return TaskBoard(task_ids, show_video, self._result_html, foreground, css=self._hide_record_css())

    def _static(self, updates: list[WatchUpdate], result: Callable[[WatchUpdate], str]) -> dict[str, Any]:
        """The static form of this view for ``updates`` (a gallery overrides this)."""
        return static_bundle(updates, result, self.captions)

    @property
    def record_class(self) -> str:
        """The CSS class of this view's record outputs."""
        return f"rw-record-{self.display_key}"

    def _hide_record_css(self) -> str:
        # Inside the live widget: while it renders, its record (and the record's output
        # row, where :has() is supported) is hidden, so the card shows once.
        cls = self.record_class
        return f"<style>.{cls}{{display:none}} .jp-OutputArea-child:has(.{cls}){{display:none}}</style>"

    def _result_html(self, update: WatchUpdate) -> str:
        return _embed_or_local(update, self.show_video)

    # -- bundles --------------------------------------------------------------------------------

    def _current(self) -> list[WatchUpdate]:
        return [self._updates[t] for t in self.task_ids]

    def final_bundle(self) -> dict[str, Any]:
        """The static card (or board) and its text summary: needs no widget model."""
        updates = self._current()
        return self._static(updates, self._result_html)

    def live_bundle(self) -> dict[str, Any]:
        """The widget view, with a plain-text stand-in for front ends without widgets."""
        what = f"task {self.task_ids[0]}" if len(self.task_ids) == 1 else f"{len(self.task_ids)} tasks"
        return {
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2, "version_minor": 0, "model_id": self.widget.root.model_id,
            },
            "text/plain": f"Live Runway card for {what} (it shows with the running kernel).",
        }

    def record_bundle(self) -> dict[str, Any]:
        """The current state as a saved notebook should show it if the kernel goes away."""
        updates = self._current()
        cls = self.record_class
        # Where the record shows, the live widget is gone: hide the widget's error line
        # ("model not found") in the output row just above this one.  JupyterLab's widget
        # renderer puts the class jupyter-widgets on its own node only on that error (a live
        # view carries it one level down).  :has() needs Chromium 105+, Firefox 121+, Safari 15.4+.
        css = (f"<style>.jp-OutputArea-child:has(+ .jp-OutputArea-child .{cls})"
               f":has(> .jp-OutputArea-output.jupyter-widgets){{display:none}}</style>")
        note = ('<div class="rw-saved-note" style="font-size:12px;color:#555">Saved while the watch was running; '
                "the watch stopped with its kernel. <code>%runway_watch --resume</code> picks it up.</div>")
        inner = self._static(updates, lambda u: "")["text/html"]
        return {
            "text/html": f'<div class="rw-record {cls}">{css}{inner}{note}</div>',
            "text/plain": "\n".join(summary_line(u) for u in updates)
            + "\n(when saved; %runway_watch --resume picks it up)",
        }

    # -- main thread ----------------------------------------------------------------------------

    def show(self) -> None:
        """Display the card (main thread only); a view shown again updates every showing."""
        from IPython.display import display

        with self._lock:
            finalized = self._finalized
            if not finalized:
                slot = (f"runway-{uuid.uuid4().hex}", f"runway-{uuid.uuid4().hex}")
                self._slots.append(slot)
        if finalized:
            display(self.final_bundle(), raw=True, metadata=_META_CARD)
            return
        display(self.live_bundle(), raw=True, display_id=slot[0], metadata=_META_CARD)
        display(self.record_bundle(), raw=True, display_id=slot[1], metadata=_META_RECORD)

    def take(self, update: WatchUpdate) -> None:
        """Replace what the view knows of one task without rendering (a refreshed result
        of an ended watch; the next :meth:`show` uses it)."""
        with self._lock:
            self._updates[update.task_id] = update

    def attach(self, watch: Watch) -> None:
        """Subscribe to ``watch`` (main thread); the card's Stop button stops it."""
        self.watches.append(watch)
        _views[watch] = self
        if isinstance(self.widget, TaskCard):
            self.widget.attach(watch)  # a board or a gallery has a card per task
        else:
            self.widget.cards[watch.task_id].attach(watch)
        watch.on_update(self._receive)

    def drive(self) -> None:
        """Foreground mode: apply updates on this (main) thread until every watch has ended.

        Ctrl-C stops the watches, shows that on the card, and re-raises so "Run All" stops too.
        """
        try:
            while True:
                self._wake.wait(0.25)
                self._wake.clear()
                self._drain()
                # A watch is done only after its last update was queued: nothing is left behind.
                if all(w.done() for w in self.watches):
                    self._drain()
                    break
        except KeyboardInterrupt:
            for watch in self.watches:
                watch.stop("Interrupted: stopped watching (the task goes on on the server).")
            self._drain()
            raise

    # -- any thread -------------------------------------------------------------------------------

    def _receive(self, update: WatchUpdate) -> None:
        if self.foreground:
            self._queue.put(update)
            self._wake.set()
        elif self._fix_context:
            # Copied per call: one Context cannot be entered by two threads at once.
            context = _cell_context
            assert context is not None
            context.copy().run(self._apply, update)
        else:
            self._apply(update)

    def _drain(self) -> None:
        while True:
            try:
                update = self._queue.get_nowait()
            except queue.Empty:
                return
            self._apply(update)

    def _apply(self, update: WatchUpdate) -> None:
        self.widget.render(update)
        with self._lock:
            self._updates[update.task_id] = update
            finished = not self._finalized and all(u.done for u in self._updates.values())
            if finished:
                self._finalized = True
            record_due = not finished and self._record_due()
            slots = list(self._slots)
        if finished:
            self._finalize(slots)
        elif record_due:
            self._refresh_records(slots)

    def _record_due(self) -> bool:
        # Called under the lock.  A record update is one display message (not a comm
        # message) and rewrites the record's HTML: only when what it says changed, and at
        # most every RECORD_INTERVAL seconds (the next poll carries a skipped change).
        key = tuple((u.snapshot.status, u.snapshot.percent) if u.snapshot else None for u in self._current())
        now = time.monotonic()
        if key == self._record_shown or now - self._record_at < RECORD_INTERVAL:
            return False
        self._record_shown, self._record_at = key, now
        return True

    def _refresh_records(self, slots: list[tuple[str, str]]) -> None:
        from IPython.display import update_display

        bundle = self.record_bundle()
        for _card, record in slots:
            update_display(bundle, raw=True, display_id=record, metadata=_META_RECORD)

    def _finalize(self, slots: list[tuple[str, str]]) -> None:
        # Every showing of the card becomes the final static card; every record empties.
        from IPython.display import update_display

        final = self.final_bundle()
        for card, record in slots:
            update_display(final, raw=True, display_id=card, metadata=_META_CARD)
            update_display({}, raw=True, display_id=record, metadata=_META_RECORD)


def static_bundle(updates: list[WatchUpdate], result: Callable[[WatchUpdate], str],
                  captions: dict[str, Caption | None] | None = None) -> dict[str, Any]:
    """The static card (one update) or board (several) and its ``text/plain`` summary."""
    if len(updates) == 1:
        page = card_html(updates[0], result=result, caption=caption_html((captions or {}).get(updates[0].task_id)))
    else:
        page = board_html(updates, result=result)
    return {"text/html": page, "text/plain": "\n".join(summary_line(u) for u in updates)}


class WatchList(list):  # type: ignore[type-arg]
    """The handles ``%runway_watch a b c`` returns; displays like a Watch does."""

    def wait(self, timeout: float | None = None) -> list[Any]:
        """Wait for every watch; returns their final snapshots (raises the first failure)."""
        return [w.wait(timeout) for w in self]

    def _ipython_display_(self) -> None:
        if self and all(_quiet(w) for w in self):
            return
        from IPython.display import display

        display({"text/plain": "[" + ", ".join(repr(w) for w in self) + "]"}, raw=True)


def _quiet(watch: Watch) -> bool:
    """True while still in the cell whose magic displayed this watch's card."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return False
    shown_in = getattr(watch, "_shown_in", None)
    return shell is not None and shown_in is not None and shown_in == shell.execution_count


def display_watch(watch: Watch) -> None:
    """How a :class:`Watch` displays in IPython.

    In the cell whose magic displayed its card: nothing (no second card, no ``Out[n]``
    noise).  Later: its card again -- live while it runs (and it reaches its final state
    in this output too), static once ended -- else its one-line repr.
    """
    if _quiet(watch):
        return
    from IPython.display import display

    view = _views.get(watch)
    if view is not None:
        from .api import refresh_result

        if refresh_result(watch):  # its signed URL had expired: show the fresh one
            view.take(watch.update())
        view.show()
    else:
        display({"text/plain": repr(watch)}, raw=True)

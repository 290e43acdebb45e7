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
import uuid
import weakref
from typing import Any

from .views.card import board_html, card_html, video_html
from .views.text import summary_line
from .views.widget import TaskBoard, TaskCard
from .watch import Outcome, Watch, WatchUpdate

__all__ = ["NotebookView", "WatchList", "in_kernel", "in_colab", "colab_secret", "display_watch", "EMBED_LIMIT"]

EMBED_LIMIT = 2 * 1024 * 1024  # saved videos up to this size are embedded, so the notebook carries them
_views: "weakref.WeakKeyDictionary[Watch, NotebookView]" = weakref.WeakKeyDictionary()


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
    """One card (one task) or one board (several) in one output area."""

    def __init__(self, task_ids: list[str], show_video: bool = True, foreground: bool = False) -> None:
        self.widget: TaskCard | TaskBoard = (
            TaskCard(task_ids[0], show_video, self._result_html, foreground) if len(task_ids) == 1
            else TaskBoard(task_ids, show_video, self._result_html, foreground)
        )
        self.task_ids = task_ids
        self.show_video = show_video
        self.foreground = foreground
        self.display_id = f"runway-{uuid.uuid4().hex}"
        self._updates: dict[str, WatchUpdate] = {t: WatchUpdate(t, Outcome.WATCHING, None, 0.0, 0) for t in task_ids}
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[WatchUpdate] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._finalized = False
        self._fix_context = _needs_context_copy()
        if self._fix_context and _cell_context is None:
            _remember_cell_context()  # we are on the main thread, inside the cell
        self.watches: list[Watch] = []

    def _result_html(self, update: WatchUpdate) -> str:
        return _embed_or_local(update, self.show_video)

    # -- main thread ----------------------------------------------------------------------------

    def bundle(self) -> dict[str, Any]:
        """The live widget plus its static card and summary, as a raw mimebundle."""
        updates = [self._updates[t] for t in self.task_ids]
        result = self._result_html
        static = card_html(updates[0], result=result) if len(updates) == 1 else board_html(updates, result=result)
        return {
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2, "version_minor": 0, "model_id": self.widget.root.model_id,
            },
            "text/html": static,
            "text/plain": "\n".join(summary_line(u) for u in updates),
        }

    def show(self) -> None:
        """Display the card (main thread only)."""
        from IPython.display import display

        display(self.bundle(), raw=True, display_id=self.display_id)

    def attach(self, watch: Watch) -> None:
        """Subscribe to ``watch`` (main thread); the card's Stop button stops it."""
        self.watches.append(watch)
        _views[watch] = self
        if isinstance(self.widget, TaskCard):
            self.widget.attach(watch)
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
        if finished:
            self._finalize()

    def _finalize(self) -> None:
        # Replace the output's bundle: same live widget, final static card and summary.
        from IPython.display import update_display

        update_display(self.bundle(), raw=True, display_id=self.display_id)


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
    noise).  Later: the live card again if it has one, else its one-line repr.
    """
    if _quiet(watch):
        return
    from IPython.display import display

    view = _views.get(watch)
    if view is not None:
        display(view.bundle(), raw=True)
    else:
        display({"text/plain": repr(watch)}, raw=True)


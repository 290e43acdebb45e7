"""Putting watches on a notebook page: display once, update from the poller, leave a static result.

Rules this module keeps (see docs/environment.md):

* Widgets are created and displayed on the main thread, here; the poller's threads only
  assign traits.  Nothing here calls ``display``/``print`` from a background thread.
* Each showing of a card is two outputs, the live widget and a static record of its state
  (``views/outputs.py`` builds them).  When every watch on it has ended, both are replaced
  (by display id) so that what stays needs no widget model: a saved notebook shows the
  result wherever it is opened.  Those replacements are ``update_display_data`` messages,
  which front ends route by display id, from whichever thread.
* ipykernel 7.0.0/7.0.1 kill a thread that sends comm messages outside a copied context
  (ipykernel#1450); on exactly those versions renders run in a copy of the current cell's
  context (``cellcontext.py``).
* In foreground mode (Colab, terminal IPython, ``--wait``) the poller's updates are queued
  and applied by the main thread while the cell runs.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
import uuid
import weakref
from typing import Any, Mapping

from .cellcontext import needs_context_copy, run_in_cell_context
from .views.board import BoardLayout, waiting
from .views.caption import Caption
from .views.outputs import CARD_META, RECORD_META, hide_record_css, live_bundle, record_bundle, static_bundle
from .views.widget import TaskBoard
from .watch import Watch, WatchUpdate

__all__ = ["NotebookView", "WatchList", "in_kernel", "in_colab", "colab_secret", "notebook_key", "display_watch"]

RECORD_INTERVAL = 2.0  # s between rewrites of a live card's saved-state record
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


def notebook_key(provider: Any) -> Any:
    """The API key for ``provider`` in a notebook: its environment variable, else (in Colab) the
    secret of that name, read here on the main thread.  Raises :class:`ConfigError` with the
    provider's no-key sentence."""
    from .config import resolve_key
    from .errors import ConfigError

    key = resolve_key(None, provider.key_env)
    if key is None:
        secret = colab_secret(provider.key_env)  # on the main thread, as Colab requires
        key = resolve_key(secret) if secret else None
    if key is None:
        raise ConfigError(provider.no_key("magic"))
    return key


class NotebookView:
    """One board on the page (a single task's: its card alone), in as many places as it is shown.

    ``layout`` (see ``views/board.py``): by default ``"card"`` for one task, ``"list"`` for
    several; ``"gallery"`` sets captioned cards side by side.  The live widget and the static
    HTML are made from the same layout, captions and ``show_video``.

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
                 captions: Mapping[str, Caption | None] | None = None, layout: BoardLayout | None = None) -> None:
        self.display_key = uuid.uuid4().hex
        self.layout: BoardLayout = layout or ("card" if len(task_ids) == 1 else "list")
        self.captions = dict(captions or {})  # task id -> how it was made (prompt, parameters, input image)
        self.show_video = show_video
        self.widget = TaskBoard(task_ids, self.layout, self.captions, show_video, foreground,
                                css=hide_record_css(self.display_key))
        self.task_ids = task_ids
        self.foreground = foreground
        self._updates: dict[str, WatchUpdate] = {t: waiting(t) for t in task_ids}
        self._lock = threading.Lock()
        # Orders what is published: a record one poll thread decided to write must not land
        # after another thread's final card emptied it (never taken while holding _lock).
        self._publish = threading.Lock()
        self._queue: queue.SimpleQueue[WatchUpdate] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._finalized = False
        self._slots: list[tuple[str, str]] = []  # (card display id, record display id) per showing
        self._record_shown: tuple[Any, ...] | None = None
        self._record_at = float("-inf")
        self._fix_context = needs_context_copy()
        if self._fix_context:
            run_in_cell_context(lambda: None)  # on the main thread, inside the cell: remember it
        self.watches: list[Watch] = []

    def _static(self, result: bool = True) -> dict[str, Any]:
        """The static form of the current state (without the result areas for a record)."""
        return static_bundle(self._current(), self.layout, self.captions, self.show_video, result)

    def _current(self) -> list[WatchUpdate]:
        return [self._updates[t] for t in self.task_ids]

    def final_bundle(self) -> dict[str, Any]:
        """The static card (or board) and its text summary: needs no widget model."""
        return self._static()

    def live_bundle(self) -> dict[str, Any]:
        """The widget view, with a plain-text stand-in for front ends without widgets."""
        return live_bundle(self.widget.root.model_id, self.task_ids)

    def record_bundle(self) -> dict[str, Any]:
        """The current state as a saved notebook should show it if the kernel goes away."""
        return record_bundle(self._static(result=False), self.display_key)

    # -- main thread ----------------------------------------------------------------------------

    def show(self) -> None:
        """Display the card (main thread only); a view shown again updates every showing."""
        from IPython.display import display

        with self._publish:  # a final card for this slot comes after its outputs exist
            with self._lock:
                finalized = self._finalized
                if not finalized:
                    slot = (f"runway-{uuid.uuid4().hex}", f"runway-{uuid.uuid4().hex}")
                    self._slots.append(slot)
            if finalized:
                display(self.final_bundle(), raw=True, metadata=CARD_META)
                return
            display(self.live_bundle(), raw=True, display_id=slot[0], metadata=CARD_META)
            display(self.record_bundle(), raw=True, display_id=slot[1], metadata=RECORD_META)

    def take(self, update: WatchUpdate) -> None:
        """Replace what the view knows of one task without rendering (a refreshed result
        of an ended watch; the next :meth:`show` uses it)."""
        with self._lock:
            self._updates[update.task_id] = update

    def attach(self, watch: Watch) -> None:
        """Subscribe to ``watch`` (main thread); the card's Stop button stops it."""
        self.watches.append(watch)
        _views[watch] = self
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
            run_in_cell_context(self._apply, update)
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

        with self._publish:
            if self._finalized:  # the final card came first: the record stays empty
                return
            bundle = self.record_bundle()
            for _card, record in slots:
                update_display(bundle, raw=True, display_id=record, metadata=RECORD_META)

    def _finalize(self, slots: list[tuple[str, str]]) -> None:
        # Every showing of the card becomes the final static card; every record empties.
        from IPython.display import update_display

        with self._publish:
            final = self.final_bundle()
            for card, record in slots:
                update_display(final, raw=True, display_id=card, metadata=CARD_META)
                update_display({}, raw=True, display_id=record, metadata=RECORD_META)



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

"""ipykernel 7.0.0/7.0.1: widget messages from a thread need the current cell's context.

On those two versions, setting a trait from a plain thread raises ``LookupError`` for the
``shell_parent`` context variable and kills the thread (ipykernel#1450, fixed in 7.1).
Running the thread's work in a copy of the *current* cell's context avoids it: a
``pre_run_cell`` hook keeps that context fresh.  Only on those versions: on 7.1+ a copied
context would pin the messages to the cell that started the watch, and a headless run
(nbclient) would miss them.  See docs/environment.md.
"""

from __future__ import annotations

import contextvars
import os
from typing import Any, Callable

__all__ = ["needs_context_copy", "track_cell_context", "untrack_cell_context", "run_in_cell_context"]


def needs_context_copy() -> bool:
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
    if needs_context_copy():
        _remember_cell_context()
        if _remember_cell_context not in shell.events.callbacks["pre_run_cell"]:
            shell.events.register("pre_run_cell", _remember_cell_context)


def untrack_cell_context(shell: Any) -> None:
    """Undo :func:`track_cell_context` (called on ``%unload_ext``)."""
    if _remember_cell_context in shell.events.callbacks["pre_run_cell"]:
        shell.events.unregister("pre_run_cell", _remember_cell_context)


def run_in_cell_context(func: Callable[..., Any], *args: Any) -> Any:
    """Run ``func(*args)`` in a copy of the current cell's context (from any thread)."""
    if _cell_context is None:
        _remember_cell_context()  # a view made before any hook ran: the caller's context
    context = _cell_context
    assert context is not None
    # Copied per call: one Context cannot be entered by two threads at once.
    return context.copy().run(func, *args)

"""``%load_ext runway_widgets``: register the magics and how a Watch displays; undo it all at unload.

One module above both magic modules (``magic.py``, ``generate_magic.py``), so neither has to
import the other to be registered.
"""

from __future__ import annotations

from typing import Any

from . import api
from .cellcontext import track_cell_context, untrack_cell_context
from .generate_magic import GenerateMagics
from .magic import RunwayMagics
from .notebook import display_watch
from .scheduler import shutdown_scheduler
from .watch import Watch

__all__ = ["load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics and how a :class:`Watch` displays (idempotent: loading twice registers once)."""
    ipython.register_magics(RunwayMagics)
    ipython.register_magics(GenerateMagics)
    track_cell_context(ipython)
    # The watch module knows nothing of IPython: its card is this formatter's business, so
    # a handle evaluated in a later cell (``h``) shows its card again.
    ipython.display_formatter.ipython_display_formatter.for_type(Watch, display_watch)


def unload_ipython_extension(ipython: Any) -> None:
    """Stop every watch, the poller thread and the demo simulator (``%reload_ext`` does this too)."""
    from .demo import stop_demo

    untrack_cell_context(ipython)
    ipython.display_formatter.ipython_display_formatter.pop(Watch, None)
    api.stop_all("The extension was unloaded.")
    shutdown_scheduler()
    api.shutdown_downloads()
    api.close_clients()
    stop_demo()

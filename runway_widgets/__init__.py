"""runway_widgets: watch CometAPI / Runway video tasks from a notebook or a terminal.

>>> import runway_widgets as rw
>>> task_id = rw.create_text_to_video("a paper boat in the rain", callback_url="https://example.com/hook")
>>> rw.watch(task_id).wait().result_url

In IPython or Jupyter: ``%load_ext runway_widgets`` then ``%runway_watch TASK_ID``
(or ``%runway_watch --demo`` to try the built-in simulator without a key).

Importing this package loads neither IPython, ipywidgets nor requests: each public name
loads its module when first used, so ``import runway_widgets`` costs a few milliseconds.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names for type checkers and IDEs; at run time __getattr__ loads them
    from .api import (
        create_act_one,
        create_image_to_video,
        create_text_to_video,
        create_video_to_video,
        get_client,
        live_watches,
        recent_watches,
        refresh_result,
        stop_all,
        wait_all,
        watch,
    )
    from .budget import RequestBudget
    from .client import Client
    from .config import configure
    from .generation import generate
    from .errors import (
        ApiError,
        AuthenticationError,
        BadRequestError,
        ConfigError,
        DownloadError,
        GaveUpError,
        ProtocolError,
        RateLimitedError,
        RunwayWidgetsError,
        ServerError,
        TaskFailedError,
        TaskNotFoundError,
        TransportError,
        WatchStoppedError,
        WatchTimeoutError,
    )
    from .policy import PacingConfig
    from .records import TaskRecord
    from .resuming import history, resume
    from .scheduler import set_request_budget
    from .snapshot import TaskSnapshot, TaskState, parse_task
    from .watch import Outcome, Watch, WatchUpdate

# `import runway_widgets` stays cheap (requests, the poller and the journal load on first use):
# each public name maps to the module that defines it (PEP 562).
_LAZY: dict[str, str] = {
    "create_act_one": "api",
    "create_image_to_video": "api",
    "create_text_to_video": "api",
    "create_video_to_video": "api",
    "get_client": "api",
    "live_watches": "api",
    "recent_watches": "api",
    "refresh_result": "api",
    "stop_all": "api",
    "wait_all": "api",
    "watch": "api",
    "RequestBudget": "budget",
    "Client": "client",
    "configure": "config",
    "generate": "generation",
    "ApiError": "errors",
    "AuthenticationError": "errors",
    "BadRequestError": "errors",
    "ConfigError": "errors",
    "DownloadError": "errors",
    "GaveUpError": "errors",
    "ProtocolError": "errors",
    "RateLimitedError": "errors",
    "RunwayWidgetsError": "errors",
    "ServerError": "errors",
    "TaskFailedError": "errors",
    "TaskNotFoundError": "errors",
    "TransportError": "errors",
    "WatchStoppedError": "errors",
    "WatchTimeoutError": "errors",
    "PacingConfig": "policy",
    "TaskRecord": "records",
    "history": "resuming",
    "resume": "resuming",
    "set_request_budget": "scheduler",
    "TaskSnapshot": "snapshot",
    "TaskState": "snapshot",
    "parse_task": "snapshot",
    "Outcome": "watch",
    "Watch": "watch",
    "WatchUpdate": "watch",
}

__version__ = "0.1.0"

__all__ = [
    "watch",
    "generate",
    "gallery",
    "Watch",
    "WatchUpdate",
    "Outcome",
    "Client",
    "get_client",
    "configure",
    "live_watches",
    "recent_watches",
    "refresh_result",
    "stop_all",
    "wait_all",
    "resume",
    "history",
    "TaskRecord",
    "create_text_to_video",
    "create_image_to_video",
    "create_video_to_video",
    "create_act_one",
    "TaskSnapshot",
    "TaskState",
    "parse_task",
    "PacingConfig",
    "RequestBudget",
    "set_request_budget",
    "RunwayWidgetsError",
    "ConfigError",
    "ApiError",
    "AuthenticationError",
    "BadRequestError",
    "TaskNotFoundError",
    "RateLimitedError",
    "ServerError",
    "ProtocolError",
    "TransportError",
    "TaskFailedError",
    "WatchTimeoutError",
    "GaveUpError",
    "WatchStoppedError",
    "DownloadError",
    "load_ipython_extension",
    "unload_ipython_extension",
    "__version__",
]


def __getattr__(name: str) -> Any:
    """Load a public name's module on first access and cache the name here."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """This package's module type: a loaded submodule never shadows a public name.

    The import system binds every loaded submodule on its package, and the submodule
    ``runway_widgets.watch`` shares its name with the function ``rw.watch``; once the names
    are loaded lazily, whichever came first would win.  The submodule stays reachable
    through ``sys.modules`` and ``from runway_widgets.watch import ...``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in _LAZY:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def gallery(items: Any) -> Any:
    """Watches or task records side by side: a captioned grid, live while tasks run, static HTML
    in a saved notebook.  See :func:`runway_widgets.gallery.gallery`."""
    from .gallery_view import gallery as build

    return build(items)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext runway_widgets``: register the magics (IPython is imported only now)."""
    from .extension import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext runway_widgets``: stop every watch and the poller thread."""
    from .extension import unload_ipython_extension as unload

    unload(ipython)

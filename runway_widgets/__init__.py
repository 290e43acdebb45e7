"""runway_widgets: watch CometAPI / Runway video tasks from a notebook or a terminal.

>>> import runway_widgets as rw
>>> task_id = rw.create_text_to_video("a paper boat in the rain", callback_url="https://example.com/hook")
>>> rw.watch(task_id).wait().result_url

In IPython or Jupyter: ``%load_ext runway_widgets`` then ``%runway_watch TASK_ID``
(or ``%runway_watch --demo`` to try the built-in simulator without a key).

Importing this package loads neither IPython nor ipywidgets; the notebook parts load
them when first used.
"""

from __future__ import annotations

from typing import Any

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

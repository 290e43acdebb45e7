"""One exception tree for everything runway_widgets raises.

Every error carries a one-sentence, human message (never the API key), whether it is
*transient* (the scheduler may try again) and the exit code the ``runway-watch`` CLI uses
for it.  The scheduler decides retries from ``transient`` alone; nothing else inspects
HTTP status codes.
"""

from __future__ import annotations

__all__ = [
    "RunwayWidgetsError",
    "ConfigError",
    "ApiError",
    "AuthenticationError",
    "TaskNotFoundError",
    "RateLimitedError",
    "ServerError",
    "BadRequestError",
    "ProtocolError",
    "TransportError",
    "TaskFailedError",
    "WatchTimeoutError",
    "GaveUpError",
    "WatchStoppedError",
    "DownloadError",
    "ExpiredUrlError",
    "EXIT_OK",
    "EXIT_TASK_FAILED",
    "EXIT_USAGE",
    "EXIT_AUTH",
    "EXIT_TIMEOUT",
    "EXIT_NOT_FOUND",
    "EXIT_GAVE_UP",
    "EXIT_DESCRIPTIONS",
]

# Exit codes of the ``runway-watch`` CLI (documented in the README).
EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_TIMEOUT = 4
EXIT_NOT_FOUND = 5
EXIT_GAVE_UP = 6
#: What each code means, in words: the CLI's help and module docstring are made from this.
EXIT_DESCRIPTIONS = {
    EXIT_OK: "all succeeded",
    EXIT_TASK_FAILED: "a task failed or was cancelled",
    EXIT_USAGE: "usage or configuration error",
    EXIT_AUTH: "authentication error",
    EXIT_TIMEOUT: "timed out",
    EXIT_NOT_FOUND: "task not found",
    EXIT_GAVE_UP: "gave up after repeated transport/server errors, or the video could not be saved",
}


class RunwayWidgetsError(Exception):
    """Root of every error raised by runway_widgets.

    Attributes
    ----------
    transient:
        True when trying the same request again later may succeed.
    exit_code:
        The CLI exit code for a watch that ends with this error.
    """

    transient: bool = False
    exit_code: int = EXIT_GAVE_UP

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(RunwayWidgetsError, ValueError):
    """Bad input from the user: a task id, a base URL, a missing key, an option.

    In IPython and Jupyter it shows as its one sentence: a traceback into this package
    would not help anyone fix a missing key.
    """

    exit_code = EXIT_USAGE

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class ApiError(RunwayWidgetsError):
    """The server answered, and the answer is an error.

    ``status_code`` is the HTTP status (0 when there was none).
    """

    def __init__(self, message: str, status_code: int = 0) -> None:
        super().__init__(message)
        self.status_code = status_code


class AuthenticationError(ApiError):
    """401/403: the key is wrong, missing, or not allowed to do this."""

    exit_code = EXIT_AUTH


class TaskNotFoundError(ApiError):
    """``task_not_exist``: unknown id, another account's id, or a fresh id not yet visible.

    Transient: CometAPI documents that a fresh id can briefly read ``task_not_exist``;
    the scheduler tolerates it for a grace window before giving up.
    """

    transient = True
    exit_code = EXIT_NOT_FOUND


class RateLimitedError(ApiError):
    """429: the gateway is saturated.  ``retry_after`` is in seconds (None if not given)."""

    transient = True

    def __init__(self, message: str, status_code: int = 429, retry_after: float | None = None) -> None:
        super().__init__(message, status_code)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx from the gateway or a proxy in front of it (JSON or HTML)."""

    transient = True


class BadRequestError(ApiError):
    """Any other 4xx: the request itself is wrong; trying again will not help."""

    exit_code = EXIT_USAGE


class ProtocolError(ApiError):
    """The answer is not what the protocol promises: not JSON, wrong shape, too big.

    Transient, because a proxy hiccup looks exactly like this; repeated ones end the watch.
    """

    transient = True


class TransportError(RunwayWidgetsError):
    """No answer at all: connection refused or reset, DNS failure, timeout."""

    transient = True
    #: No connection could be made, to a host that has not answered once in this process
    #: (a typo in the base URL, no network): a watch gives up on it sooner.
    unreached = False


class TaskFailedError(RunwayWidgetsError):
    """The task itself ended in failure or was cancelled (``Watch.wait`` raises this)."""

    exit_code = EXIT_TASK_FAILED

    def __init__(self, message: str, snapshot: object = None) -> None:
        super().__init__(message)
        self.snapshot = snapshot


class WatchTimeoutError(RunwayWidgetsError, TimeoutError):
    """The watch's own deadline passed before the task finished."""

    exit_code = EXIT_TIMEOUT


class GaveUpError(RunwayWidgetsError):
    """Too many transient errors in a row; ``last_error`` is the final one."""

    exit_code = EXIT_GAVE_UP

    def __init__(self, message: str, last_error: RunwayWidgetsError | None = None) -> None:
        super().__init__(message)
        self.last_error = last_error


class WatchStoppedError(RunwayWidgetsError):
    """The watch was stopped (by the user, or superseded) before the task finished."""

    exit_code = EXIT_TASK_FAILED


class DownloadError(RunwayWidgetsError):
    """Saving the result failed; nothing half-written is left behind."""

    exit_code = EXIT_GAVE_UP


class ExpiredUrlError(DownloadError):
    """The signed result URL answered 403/404/410: poll the task again for a fresh one."""


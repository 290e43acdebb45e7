"""Where settings come from, and the checks every input gets before it is used.

Explicit arguments win, then ``COMETAPI_KEY`` / ``COMETAPI_BASE_URL``, then defaults.
The key is wrapped in :class:`Secret` as soon as it is read so that no repr, f-string or
log line can show it by accident.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from urllib.parse import urlsplit

from .errors import ConfigError

__all__ = [
    "DEFAULT_BASE_URL",
    "Secret",
    "resolve_key",
    "resolve_base_url",
    "validate_task_id",
    "validate_base_url",
    "is_loopback_host",
    "check_key_transport",
    "missing_key_help",
    "SAVE_ENV",
    "DEFAULT_SAVE_DIR",
    "configure",
    "default_save",
    "validate_save",
    "NO_CADENCE_MEMORY_ENV",
    "remember_cadence",
]

DEFAULT_BASE_URL = "https://api.cometapi.com"
KEY_ENV = "COMETAPI_KEY"
BASE_URL_ENV = "COMETAPI_BASE_URL"
SAVE_ENV = "RUNWAY_WIDGETS_SAVE"
NO_CADENCE_MEMORY_ENV = "RUNWAY_WIDGETS_NO_CADENCE_MEMORY"
DEFAULT_SAVE_DIR = "runway_videos/"  # save=True, and a bare --save
_DEMO_HINTS = {"python": "", "cli": ", or try the built-in simulator with --demo",
               "magic": ", or try the built-in simulator with %runway_watch --demo"}


def seconds(text: str) -> float:
    """An option's number of seconds, 0 or more (an argparse ``type``: nan and -1 are refused)."""
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise ValueError("must be 0 or more")
    return value


def positive_seconds(text: str) -> float:
    """An option's positive number of seconds (an argparse ``type``)."""
    value = seconds(text)
    if not value > 0:
        raise ValueError("must be positive")
    return value


# argparse names the type in its message: "argument --timeout: invalid positive seconds value: '-3'".
seconds.__name__ = "seconds"
positive_seconds.__name__ = "positive seconds"


def missing_key_help(surface: str = "python") -> str:
    """The no-key sentence for where it is shown: ``"python"``, ``"cli"`` or ``"magic"``.

    The Colab secret is named only in Colab, and ``--demo`` only where a demo exists (the
    CLI and the magic; plain Python has none).
    """
    if "google.colab" in sys.modules:
        where = ("add a Colab secret named COMETAPI_KEY (the key icon in the left bar) and give this notebook "
                 "access to it")
    else:
        where = "set the COMETAPI_KEY environment variable"
    if surface == "python":
        where += " or pass api_key=..."
    return f"No API key: {where}{_DEMO_HINTS[surface]}."


class Secret:
    """A string that refuses to show itself: repr and str print a placeholder."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value; call only where it goes into an HTTP header."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple:  # never pickle the key into a file by accident
        raise TypeError("a Secret cannot be pickled")


def resolve_key(explicit: str | Secret | None = None, env: str = KEY_ENV) -> Secret | None:
    """The API key from the argument, else the variable ``env`` (``COMETAPI_KEY``); None when neither is set."""
    if isinstance(explicit, Secret):
        value = explicit.reveal().strip()
    else:
        value = explicit if explicit is not None else os.environ.get(env, "")
        value = value.strip()
    if not value:
        return None
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ConfigError("The API key contains spaces or control characters; check how it was copied.")
    if not value.isascii():
        # API keys are ASCII.  A pasted smart quote or similar would otherwise fail deep
        # inside http.client with a UnicodeEncodeError whose repr holds the whole header.
        raise ConfigError("The API key contains non-ASCII characters; check how it was copied.")
    return explicit if isinstance(explicit, Secret) and explicit.reveal() == value else Secret(value)


def resolve_base_url(explicit: str | None = None, env: str = BASE_URL_ENV, default: str = DEFAULT_BASE_URL) -> str:
    """The base URL from the argument, else the variable ``env`` (``COMETAPI_BASE_URL``), else ``default``."""
    value = explicit if explicit else os.environ.get(env, "") or default
    return validate_base_url(value)


def validate_base_url(value: str) -> str:
    """Check that ``value`` is an absolute http(s) URL with a host; return it without a trailing '/'."""
    text = (value or "").strip()
    if any(ord(ch) < 32 or ch.isspace() for ch in text):
        raise ConfigError("The base URL contains spaces or control characters.")
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"The base URL {text[:80]!r} is not a valid URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"The base URL {text[:80]!r} must start with https:// (or http:// for a local server)."
        )
    if parts.username or parts.password:
        raise ConfigError("The base URL must not carry a user name or password; use COMETAPI_KEY.")
    if parts.query or parts.fragment:
        raise ConfigError("The base URL must not have a query string or fragment.")
    del port
    return text.rstrip("/")


def is_loopback_host(host: str | None) -> bool:
    """True for localhost and addresses in 127.0.0.0/8 or ::1.

    ``*.localhost`` names are not accepted: unless the resolver special-cases them
    (glibc with plain ``files dns`` does not), they go to DNS, which may answer anything.
    """
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_key_transport(base_url: str) -> None:
    """Refuse to send a key over plain http to anything but a loopback host."""
    parts = urlsplit(base_url)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(
            f"Refusing to send the API key over plain http to {parts.hostname}; use https://."
        )


_ID_OK = re.compile(r"^[A-Za-z0-9._:\-]+$")


def validate_task_id(value: object) -> str:
    """Return a clean task id or raise :class:`ConfigError` with one sentence saying why."""
    if not isinstance(value, str):
        raise ConfigError(f"A task id must be a string, not {type(value).__name__}.")
    text = value.strip()
    if not text:
        raise ConfigError("The task id is empty; pass the id that the create call returned.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise ConfigError("The task id contains control characters; copy it again from the create response.")
    if len(text) > 128:
        raise ConfigError(f"The task id is {len(text)} characters long; task ids are at most 128.")
    if not _ID_OK.match(text):
        raise ConfigError(
            f"The task id {text[:40]!r} has characters a task id never has (letters, digits, '-', '_', '.', ':' only)."
        )
    return text


# Process-wide defaults set with configure(); a key absent means "not configured here".
_configured: dict[str, str | bool | None] = {}


def validate_save(value: object) -> str | None:
    """Check a save destination (a folder, or a file name); return it as a string, or None.

    ``None``/``False`` mean "do not save".  Raises :class:`ConfigError` with one sentence
    for something that cannot be a destination.
    """
    if value is None or value is False:
        return None
    if value is True:
        raise ConfigError("save=True means the default folder; pass a folder name to configure() instead.")
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"save must be a folder or file name, not {type(value).__name__}.")
    text = os.fspath(value)
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("The save folder is empty; give a folder name such as runway_videos/.")
    if any(ord(ch) < 32 for ch in text):
        raise ConfigError("The save folder name contains control characters.")
    path = os.path.expanduser(text).rstrip("/" + os.sep) or text
    if text.endswith(("/", os.sep)) and os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"The save folder {text!r} is a file, not a folder.")
    return text


def _as_folder(text: str | None) -> str | None:
    # A default applies to every task: it is always a folder (one file per task id).
    return text if text is None or text.endswith(("/", os.sep)) else text + os.sep


def configure(*, save: object = ..., remember_cadence: object = ...) -> None:
    """Set defaults for every later watch in this process.

    Parameters
    ----------
    save:
        A folder every watch saves its video to (as ``<task id>.mp4``) unless told otherwise, so a
        class or a Colab notebook keeps every result without ``--save`` on each call;
        ``None`` turns the default off.  Without a call, ``$RUNWAY_WIDGETS_SAVE`` is used
        when set.
    remember_cadence:
        ``False`` keeps gateways from starting with the refresh cadence earlier processes
        learnt (``cadence.json`` next to the task journal) and from writing what this one
        learns; ``True`` turns it back on.  Without a call it is on unless
        ``$RUNWAY_WIDGETS_NO_CADENCE_MEMORY`` is set (to anything but ``0`` or empty).
        Applies to gateways first used after the call.

    >>> import runway_widgets as rw
    >>> rw.configure(save="runway_videos/")
    """
    if save is not ...:
        _configured["save"] = _as_folder(validate_save(save))
    if remember_cadence is not ...:
        if not isinstance(remember_cadence, bool):
            raise ConfigError(f"remember_cadence must be True or False, not {type(remember_cadence).__name__}.")
        _configured["remember_cadence"] = remember_cadence


def remember_cadence() -> bool:
    """Whether gateways remember their cadence across processes: :func:`configure`'s
    ``remember_cadence``, else on unless ``$RUNWAY_WIDGETS_NO_CADENCE_MEMORY`` is set."""
    if "remember_cadence" in _configured:
        return bool(_configured["remember_cadence"])
    return os.environ.get(NO_CADENCE_MEMORY_ENV, "").strip() in ("", "0")


def default_save() -> str | None:
    """Where a watch saves when not told: :func:`configure`'s folder, else ``$RUNWAY_WIDGETS_SAVE``."""
    if "save" in _configured:
        value = _configured["save"]
        return value if isinstance(value, str) else None
    env = os.environ.get(SAVE_ENV, "").strip()
    if not env:
        return None
    try:
        return _as_folder(validate_save(env))
    except ConfigError as exc:
        raise ConfigError(f"{SAVE_ENV}: {exc}") from None

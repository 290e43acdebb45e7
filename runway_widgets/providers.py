"""The two services a task can live on: CometAPI's gateway, and Runway's own API.

A provider says where its key and base URL come from and how a task is polled; the
:class:`~runway_widgets.client.Client` asks it, nothing else branches on the provider.
Pure: reads the environment only when asked (:func:`choose_provider`), never the network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from .config import BASE_URL_ENV, DEFAULT_BASE_URL, KEY_ENV, missing_key_help
from .errors import ConfigError

__all__ = ["Provider", "PROVIDERS", "COMETAPI", "RUNWAY", "RUNWAY_KEY_ENV", "RUNWAY_BASE_URL_ENV",
           "RUNWAY_DEFAULT_BASE_URL", "get_provider", "choose_provider", "task_id_of"]

RUNWAY_KEY_ENV = "RUNWAYML_API_SECRET"  # the variable Runway's own SDK reads
RUNWAY_BASE_URL_ENV = "RUNWAYML_BASE_URL"  # likewise
RUNWAY_DEFAULT_BASE_URL = "https://api.dev.runwayml.com"


@dataclass(frozen=True)
class Provider:
    """Where a provider's key and base URL come from, and its poll and create paths.

    Attributes
    ----------
    name:
        ``"cometapi"`` or ``"runway"``.
    key_env, base_url_env, default_base_url:
        The environment variables read when no key or base URL is passed, and the default.
    official_prefix:
        Where Runway-format create routes live: ``/runwayml/v1/`` on CometAPI, ``/v1/`` on Runway.
    feed:
        The :class:`Client` feed that polls it (``"runway"`` for CometAPI's ``POST /runway/feed``,
        ``"runway_api"`` for Runway's ``GET /v1/tasks/{id}``).
    no_key:
        The sentence shown when no key is found, for a surface (``"python"``, ``"cli"``,
        ``"magic"``: CometAPI's names the Colab secret only in Colab, ``--demo`` only where
        a demo exists).
    """

    name: str
    key_env: str
    base_url_env: str
    default_base_url: str
    official_prefix: str
    feed: str
    no_key: Callable[[str], str]


COMETAPI = Provider("cometapi", KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, "/runwayml/v1/", "runway", missing_key_help)
RUNWAY = Provider(
    "runway", RUNWAY_KEY_ENV, RUNWAY_BASE_URL_ENV, RUNWAY_DEFAULT_BASE_URL, "/v1/", "runway_api",
    lambda _surface: ("No Runway API key: set the RUNWAYML_API_SECRET environment variable (Runway's developer "
                      "portal issues it), or use a CometAPI key in COMETAPI_KEY."),
)
PROVIDERS = {"cometapi": COMETAPI, "runway": RUNWAY}


def get_provider(name: str | None) -> Provider:
    """The provider called ``name`` (None: CometAPI); one sentence for an unknown name."""
    if name is None:
        return COMETAPI
    found = PROVIDERS.get(str(name).strip().lower())
    if found is None:
        raise ConfigError(f"provider must be 'cometapi' or 'runway', not {name!r}.")
    return found


def choose_provider(explicit: str | None = None, *, api_key: object = None, base_url: str | None = None) -> Provider:
    """Which provider to talk to when the caller did not say.

    An explicit name wins; then a base URL on Runway's host; then, with no key passed,
    Runway when ``RUNWAYML_API_SECRET`` is set and ``COMETAPI_KEY`` is not.  Otherwise CometAPI.
    """
    if explicit is not None:
        return get_provider(explicit)
    host = (urlsplit(base_url).hostname or "") if base_url else ""
    if host == "runwayml.com" or host.endswith(".runwayml.com"):
        return RUNWAY
    if api_key is None and not os.environ.get(KEY_ENV, "").strip() and os.environ.get(RUNWAY_KEY_ENV, "").strip():
        return RUNWAY
    return COMETAPI


def task_id_of(task: Any) -> Any:
    """The id of ``task``: a string as it is, or anything with a string ``.id`` (a task object
    from Runway's Python SDK, ``client.image_to_video.create(...)``).  Anything else is
    returned unchanged for :func:`~runway_widgets.config.validate_task_id` to refuse."""
    if isinstance(task, str):
        return task
    value = getattr(task, "id", None)
    return value if isinstance(value, str) else task

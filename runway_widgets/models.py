"""What each create route accepts: models, ratios, durations, seeds.  Pure data and checks.

Runway-format routes (CometAPI's ``/runwayml/v1/`` mirror and Runway's own ``/v1/``) take
Runway's ratios (``"1280:720"``); CometAPI's ``/runway/pro/generate`` takes ``"16:9"``-style
ratios and ``options.seconds``.  The tables follow Runway's API reference (version
2024-11-06) as read when this was written; the service is the final judge, and its
reason for a refusal is shown as it says it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["ModelSpec", "IMAGE_MODELS", "TEXT_MODELS", "VIDEO_MODELS", "ACT_MODELS", "PRO_MODELS", "PRO_RATIOS", "SEED_MAX",
           "PROMPT_MAX", "check_seed", "check_model", "check_duration", "runway_ratio", "check_pro_ratio"]

SEED_MAX = 4_294_967_295  # Runway: 0 .. 2**32 - 1
PROMPT_MAX = 1000  # Runway: promptText is at most 1000 characters


@dataclass(frozen=True)
class ModelSpec:
    """A model's accepted ``ratio`` values and ``duration`` seconds on one route."""

    ratios: tuple[str, ...]
    durations: tuple[int, ...]


_GEN4 = ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672")
#: POST .../image_to_video (the default model first).
IMAGE_MODELS: dict[str, ModelSpec] = {
    "gen4_turbo": ModelSpec(_GEN4, (5, 10)),
    "gen4.5": ModelSpec(("1280:720", "720:1280", "1104:832", "832:1104", "960:960"), tuple(range(2, 11))),
    "gen3a_turbo": ModelSpec(("1280:768", "768:1280"), (5, 10)),
}
#: POST /v1/text_to_video on Runway's own API (CometAPI's mirror has no text-only route).
TEXT_MODELS: dict[str, ModelSpec] = {
    "gen4.5": ModelSpec(("1280:720", "720:1280", "1104:832", "832:1104", "960:960"), tuple(range(2, 11))),
    "veo3.1": ModelSpec(("1280:720", "720:1280", "1080:1920", "1920:1080"), (4, 6, 8)),
}
#: POST /v1/video_to_video on Runway's own API (the output's length follows the video: no durations).
VIDEO_MODELS: dict[str, ModelSpec] = {
    "gen4_aleph": ModelSpec(_GEN4 + ("848:480", "640:480"), ()),
}
#: POST /v1/character_performance (Act-Two) on Runway's own API (length follows the reference video).
ACT_MODELS: dict[str, ModelSpec] = {"act_two": ModelSpec(_GEN4, ())}
#: CometAPI's POST /runway/pro/generate (None: the gateway's default model).
PRO_MODELS = ("gen4", "gen4_turbo")
PRO_RATIOS = ("16:9", "9:16", "1:1")
_PIXELS = re.compile(r"^[1-9][0-9]{1,4}:[1-9][0-9]{1,4}$")
# "16:9" written for a Runway-format route means the model's nearest pixel ratio.
_FRIENDLY = {"16:9": 0, "9:16": 1, "1:1": 4}


def check_seed(seed: object) -> int | None:
    """A seed as an int in 0..2**32-1, or None; one sentence otherwise."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"A seed is a whole number from 0 to {SEED_MAX}, not {seed!r}.")
    return seed


def check_model(model: str | None, table: dict[str, ModelSpec], route: str) -> str:
    """The model to use on ``route`` (the table's first when None); one sentence if unknown there."""
    if model is None:
        return next(iter(table))
    if model not in table:
        raise ConfigError(f"The model {model!r} is not available for {route}; choose one of {', '.join(table)}.")
    return model


def runway_ratio(ratio: str | None, model: str, spec: ModelSpec, route: str) -> str:
    """A Runway ratio for ``model`` ("16:9" becomes the model's 16:9 size); one sentence if not accepted."""
    if ratio is None:
        return spec.ratios[0]
    text = str(ratio).strip()
    if text in _FRIENDLY and text not in spec.ratios:
        index = _FRIENDLY[text]
        if text == "1:1" and not any(r.split(":")[0] == r.split(":")[1] for r in spec.ratios):
            raise ConfigError(f"{model} on {route} has no square ratio; choose one of {', '.join(spec.ratios)}.")
        text = spec.ratios[index] if index < len(spec.ratios) else spec.ratios[0]
    if text not in spec.ratios:
        raise ConfigError(f"The ratio {ratio!r} is not available for {model} on {route}; "
                          f"choose one of {', '.join(spec.ratios)}.")
    return text


def check_pro_ratio(ratio: str | None) -> str:
    """A ratio for ``/runway/pro/generate``: 16:9, 9:16, 1:1 or a pixel ratio such as 1280:720."""
    if ratio is None:
        return "16:9"
    text = str(ratio).strip()
    if text in PRO_RATIOS or _PIXELS.match(text):
        return text
    raise ConfigError(f"The ratio {ratio!r} is not available for /runway/pro/generate; "
                      f"use 16:9, 9:16, 1:1 or a pixel ratio such as 1280:720.")


def check_duration(duration: object, allowed: tuple[int, ...], what: str) -> int | None:
    """Seconds as one of ``allowed`` (None stays None); one sentence otherwise."""
    if duration is None:
        return None
    if isinstance(duration, bool) or not isinstance(duration, int) or duration not in allowed:
        choices = f"{allowed[0]} to {allowed[-1]}" if len(allowed) > 3 else " or ".join(str(d) for d in allowed)
        raise ConfigError(f"The duration for {what} is {choices} seconds, not {duration!r}.")
    return duration

"""From a prompt to a watched task: pick the route, check every input, create, watch.

Routes (see the README, "Generating"):

* an image, on CometAPI: ``POST /runwayml/v1/image_to_video`` with Runway's body
  (``promptImage``, ``promptText``, ``model``, ``ratio``, ``duration``, ``seed``), no
  ``callback_url``; on Runway's own API the same body to ``POST /v1/image_to_video``;
* text only, on CometAPI: ``POST /runway/pro/generate``, which requires a ``callback_url``:
  the caller's (``callback_url=`` / ``$COMETAPI_CALLBACK_URL``), never one made up here,
  since whoever owns that URL receives the task's result URLs; on Runway's own API
  ``POST /v1/text_to_video``;
* a video (video-to-video) or a video and an image (Act-One): CometAPI's
  ``/runway/pro/video2video`` and ``/runway/pro/act_one`` (callback URL as above); on
  Runway's own API ``POST /v1/video_to_video`` (``videoUri``, ``promptText``, ``gen4_aleph``)
  and ``POST /v1/character_performance`` (``character`` image, ``reference`` video, ``act_two``).

Every request is checked before anything is sent: with several prompts or seeds, one bad
value sends nothing.
"""

from __future__ import annotations

import itertools
import logging
import os
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from .client import Client
from .errors import ConfigError, RunwayWidgetsError
from .inputs import ImageInput, load_image, media_url
from .models import (ACT_MODELS, IMAGE_MODELS, PRO_MODELS, PROMPT_MAX, TEXT_MODELS, VIDEO_MODELS, check_duration,
                     check_model, check_pro_ratio, check_seed, runway_ratio)
from .watch import Watch

__all__ = ["generate", "plan_requests", "send", "check_count", "CreatePlan", "CreatedSome", "caption_of",
           "CONFIRM_ABOVE", "CALLBACK_ENV", "NEEDS_CALLBACK"]

log = logging.getLogger("runway_widgets")

CALLBACK_ENV = "COMETAPI_CALLBACK_URL"
CONFIRM_ABOVE = 4  # creating more tasks than this at once needs confirm=True (each costs credits)
NEEDS_CALLBACK = (
    "Text-only generation on CometAPI goes through POST /runway/pro/generate, which requires a callback_url "
    "that receives the task's result URLs: pass callback_url= (--callback-url) or set COMETAPI_CALLBACK_URL "
    "to a URL you control, or give an image to use the route that needs none."
)


@dataclass(frozen=True)
class CreatePlan:
    """One create request, checked and ready to send.

    ``route`` is an official route name (``"image_to_video"``...) sent with
    :meth:`Client.create_official`, or ``"pro/generate"``, ``"pro/video2video"``,
    ``"pro/act_one"`` sent with CometAPI's create calls.  ``caption`` is what a card says.
    """

    route: str
    body: dict[str, Any]
    prompt: str
    parameters: dict[str, Any] = field(default_factory=dict)
    image: ImageInput | None = None


_captions: "weakref.WeakKeyDictionary[Watch, CreatePlan]" = weakref.WeakKeyDictionary()


def caption_of(handle: Watch) -> CreatePlan | None:
    """The create request behind a watch started by :func:`generate` (None for others)."""
    return _captions.get(handle)


def _as_list(value: Any, name: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if not value:
            raise ConfigError(f"{name} is an empty list.")
        return list(value)
    return [value]


def _prompt(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"A prompt is text, not {type(value).__name__}.")
    text = value.strip()
    if len(text) > PROMPT_MAX:
        raise ConfigError(f"The prompt is {len(text)} characters long; Runway takes at most {PROMPT_MAX}.")
    return text


def _callback(explicit: str | None) -> str:
    value = explicit if explicit is not None else os.environ.get(CALLBACK_ENV, "")
    if not value or not value.strip():
        raise ConfigError(NEEDS_CALLBACK)
    return media_url(value, "callback")


def plan_requests(prompt: str | Sequence[str] = "", *, image: Any = None, video: str | None = None,
                  model: str | None = None, ratio: str | None = None, duration: int | None = None,
                  seed: int | Sequence[int] | None = None, provider: str = "cometapi",
                  callback_url: str | None = None, pair: bool = False) -> list[CreatePlan]:
    """Check the inputs and return the create requests, one per prompt x seed (or per pair).

    Raises :class:`ConfigError` with one sentence for the first bad input; nothing is sent.
    """
    prompts = [_prompt(p) for p in _as_list(prompt, "prompt")]
    seeds = [check_seed(s) for s in _as_list(seed, "seed")]
    if pair and len(prompts) != len(seeds):
        raise ConfigError(f"With pairing, give as many seeds as prompts ({len(prompts)} prompts, {len(seeds)} seeds).")
    combos = list(zip(prompts, seeds)) if pair else list(itertools.product(prompts, seeds))
    picture = load_image(image) if image is not None else None
    if video is not None and not isinstance(video, str):
        raise ConfigError(f"The video is an https:// URL, not {type(video).__name__}.")
    clip = media_url(video, "video") if video is not None else None
    runway = provider == "runway"
    plans = []
    for text, one_seed in combos:
        if not text and picture is None and clip is None:
            raise ConfigError("Give a prompt, an image, or both: there is nothing to generate from.")
        plans.append(_plan_one(text, picture, clip, model, ratio, duration, one_seed, runway, callback_url))
    return plans


def _plan_one(text: str, picture: ImageInput | None, clip: str | None, model: str | None, ratio: str | None,
              duration: int | None, seed: int | None, runway: bool, callback_url: str | None) -> CreatePlan:
    if clip is not None and runway:
        return _plan_runway_video(text, picture, clip, model, ratio, duration, seed)
    if clip is not None:
        return _plan_video(text, picture, clip, model, callback_url, seed)
    if picture is not None or runway:
        route = "image_to_video" if picture is not None else "text_to_video"
        table = IMAGE_MODELS if picture is not None else TEXT_MODELS
        where = f"{route} ({'Runway' if runway else 'CometAPI'})"
        name = check_model(model, table, where)
        spec = table[name]
        chosen_ratio = runway_ratio(ratio, name, spec, where)
        seconds = check_duration(duration, spec.durations, f"{name} on {route}")
        seconds = seconds if seconds is not None else (5 if 5 in spec.durations else spec.durations[0])
        body = {"promptImage": picture.uri if picture else None, "promptText": text or None, "model": name,
                "ratio": chosen_ratio, "duration": seconds, "seed": seed}
        params = {"model": name, "ratio": chosen_ratio, "duration": seconds, "seed": seed}
        return CreatePlan(route, body, text, params, picture)
    if model is not None and model not in PRO_MODELS:
        raise ConfigError(f"The model {model!r} is not available for /runway/pro/generate; choose one of {', '.join(PRO_MODELS)}.")
    chosen_ratio = check_pro_ratio(ratio)
    seconds = check_duration(duration, (5, 10), "/runway/pro/generate")
    body = {"prompt": text, "ratio": chosen_ratio, "model": model, "seconds": seconds,
            "callback_url": _callback(callback_url), "seed": seed}
    params = {"model": model, "ratio": chosen_ratio, "duration": seconds, "seed": seed}
    return CreatePlan("pro/generate", body, text, params, None)


def _plan_runway_video(text: str, picture: ImageInput | None, clip: str, model: str | None, ratio: str | None,
                       duration: int | None, seed: int | None) -> CreatePlan:
    """Runway's own ``/v1/video_to_video`` or ``/v1/character_performance`` (Act-Two) body."""
    if duration is not None:
        raise ConfigError("Video-to-video and Act-One take their length from the video; leave out the duration.")
    route = "character_performance" if picture is not None else "video_to_video"
    table = ACT_MODELS if picture is not None else VIDEO_MODELS
    name = check_model(model, table, f"{route} (Runway)")
    # ratio only when asked for: Runway then picks one that fits the input video
    chosen = runway_ratio(ratio, name, table[name], f"{route} (Runway)") if ratio is not None else None
    params = {"model": name, "ratio": chosen, "video": clip, "seed": seed}
    if picture is not None:  # Act-Two: the reference video's performance drives the image's character
        body: dict[str, Any] = {"character": {"type": "image", "uri": picture.uri},
                                "reference": {"type": "video", "uri": clip}, "model": name, "ratio": chosen,
                                "seed": seed}
        return CreatePlan(route, body, text, params, picture)
    if not text:
        raise ConfigError("Video-to-video needs a prompt that says how to redraw the video.")
    body = {"videoUri": clip, "promptText": text, "model": name, "ratio": chosen, "seed": seed}
    return CreatePlan(route, body, text, params, None)


def _plan_video(text: str, picture: ImageInput | None, clip: str, model: str | None,
                callback_url: str | None, seed: int | None) -> CreatePlan:
    if picture is not None:  # Act-One: the video drives the image's character
        if not picture.uri.startswith(("https://", "http://")):
            raise ConfigError("Act-One takes the character image as an https:// URL, not a local file.")
        act: dict[str, Any] = {"video": clip, "image": picture.uri, "callback_url": _callback(callback_url)}
        return CreatePlan("pro/act_one", act, text, {"video": clip}, picture)
    if not text:
        raise ConfigError("Video-to-video needs a prompt that says how to redraw the video.")
    body: dict[str, Any] = {"video": clip, "prompt": text, "model": model, "callback_url": _callback(callback_url),
                            "seed": seed}
    return CreatePlan("pro/video2video", body, text, {"model": model, "video": clip, "seed": seed}, None)


def send(client: Client, plan: CreatePlan) -> str:
    """Create the task ``plan`` describes; returns its id (journaled with prompt and parameters)."""
    body = dict(plan.body)
    if plan.route == "pro/generate":
        seed = body.pop("seed")
        extra = {"seed": seed} if seed is not None else None  # not in CometAPI's docs for this route
        return client.create_text_to_video(body["prompt"], callback_url=body["callback_url"], ratio=body["ratio"],
                                           model=body["model"], seconds=body["seconds"], extra=extra)
    if plan.route == "pro/video2video":
        seed = body.pop("seed")
        return client.create_video_to_video(body["video"], body["prompt"], callback_url=body["callback_url"],
                                            model=body["model"], extra={"seed": seed} if seed is not None else None)
    if plan.route == "pro/act_one":
        return client.create_act_one(body["video"], body["image"], callback_url=body["callback_url"])
    return client.create_official(plan.route, body)


def check_count(count: int, confirm: bool) -> None:
    """The cost guard: more than :data:`CONFIRM_ABOVE` tasks at once need ``confirm``."""
    if count > CONFIRM_ABOVE and not confirm:
        raise ConfigError(f"This would create {count} tasks, and each one costs credits; "
                          f"pass --yes (confirm=True in Python) to create them.")


def generate(prompt: str | Sequence[str] = "", *, image: Any = None, video: str | None = None,
             model: str | None = None, ratio: str | None = None, duration: int | None = None,
             seed: int | Sequence[int] | None = None, callback_url: str | None = None,
             provider: str | None = None, api_key: Any = None, base_url: str | None = None,
             client: Client | None = None, confirm: bool = False, pair: bool = False,
             demo: bool = False, **watch_options: Any) -> Any:
    """Create a video task from a prompt (and/or an image) and return its :class:`Watch`.

    Several prompts or seeds (lists) create one task per combination (``pair=True``: per
    position) and return a list of watches; more than four at once need ``confirm=True``.
    ``demo=True`` creates them on the built-in simulator (no key, no credits).
    ``watch_options`` go to :func:`runway_widgets.watch` (``save``, ``timeout``...).

    >>> w = rw.generate("a paper boat", image="boat.png", seed=7)      # doctest: +SKIP
    >>> ws = rw.generate(["a boat", "a ship"], seed=[1, 2], confirm=True)  # doctest: +SKIP
    """
    from . import api

    if demo:
        from .demo import demo_callback_url, demo_client, queue_demo_timelines

        client = demo_client()
    elif client is None:
        client = api.get_client(api_key, base_url, provider=provider)
    if demo and callback_url is None:
        callback_url = demo_callback_url()  # the demo simulator's own address, on this machine
    plans = plan_requests(prompt, image=image, video=video, model=model, ratio=ratio, duration=duration,
                          seed=seed, provider=client.provider, callback_url=callback_url, pair=pair)
    check_count(len(plans), confirm or demo)
    _check_watch_options(watch_options)  # before anything is created: a bad option must not strand a task
    if demo:
        queue_demo_timelines(len(plans))
    watches = _create_all(client, plans, watch_options)
    many = isinstance(prompt, (list, tuple)) or isinstance(seed, (list, tuple))
    return watches if many else watches[0]


_WATCH_OPTIONS = {"timeout", "interval", "pacing", "not_found_grace", "give_up_after", "save", "on_update", "scheduler"}


def _check_watch_options(options: dict[str, Any]) -> None:
    from .config import validate_save

    unknown = sorted(set(options) - _WATCH_OPTIONS)
    if unknown:
        raise ConfigError(f"generate() got an unexpected option {unknown[0]!r}.")
    for name in ("timeout", "interval"):
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
            raise ConfigError(f"{name} must be a positive number of seconds.")
    if options.get("save") not in (None, True, False):
        validate_save(options["save"])


class CreatedSome(list):  # type: ignore[type-arg]
    """The watches of the tasks created before a create call failed; ``.error`` says why it stopped."""

    error: RunwayWidgetsError | None = None


def _create_all(client: Client, plans: Iterable[CreatePlan], watch_options: dict[str, Any]) -> CreatedSome:
    from . import api

    watches = CreatedSome()
    for plan in plans:
        try:
            task_id = send(client, plan)
        except RunwayWidgetsError as exc:
            if not watches:
                raise  # nothing was created: the caller sees the server's reason
            log.warning("runway_widgets: created %d task(s); the next create failed: %s", len(watches), exc)
            watches.error = exc
            break
        handle = api.watch(task_id, client=client, **watch_options)
        _captions[handle] = plan
        watches.append(handle)
    return watches

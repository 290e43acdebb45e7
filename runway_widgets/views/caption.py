"""A generated task's caption: its prompt, parameters and a thumbnail of the input image.

Pure string building like :mod:`.card`: everything a user or a server wrote is escaped, and
an image source is used only when it is plain http(s) or a base64 ``data:image/`` URI.  The
live card and the static card show the same caption (a gallery is a board of captioned cards).
"""

from __future__ import annotations

import html
import re
from typing import Any, Mapping

from ..snapshot import safe_url

__all__ = ["Caption", "caption_html", "params_words"]

_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|webp|gif);base64,[A-Za-z0-9+/=]+$")
THUMB_HEIGHT = 56  # px


class Caption:
    """What a card says about how its task was made."""

    __slots__ = ("prompt", "parameters", "image_label", "thumbnail")

    def __init__(self, prompt: str = "", parameters: Mapping[str, Any] | None = None,
                 image_label: str | None = None, thumbnail: str | None = None) -> None:
        self.prompt = prompt or ""
        self.parameters = dict(parameters or {})
        self.image_label = image_label
        self.thumbnail = thumbnail


def params_words(parameters: Mapping[str, Any]) -> str:
    """``gen4_turbo · 1280:720 · 5 s · seed 7`` from the parameters that are set."""
    words = []
    for name in ("model", "ratio", "duration", "seed"):
        value = parameters.get(name)
        if value is None or value == "":
            continue
        words.append(f"{value} s" if name == "duration" else f"seed {value}" if name == "seed" else str(value))
    return " · ".join(words)


def _image_src(value: str | None) -> str | None:
    if not value:
        return None
    if _DATA_IMAGE.match(value):
        return value
    return safe_url(value)


def caption_html(caption: Caption | None) -> str:
    """The caption block: a thumbnail of the input image, the prompt, the parameters ('' if none)."""
    if caption is None:
        return ""
    parts = []
    src = _image_src(caption.thumbnail)
    if src is not None:
        alt = html.escape(caption.image_label or "input image", quote=True)
        parts.append(f'<img class="rw-thumb" src="{html.escape(src, quote=True)}" alt="{alt}" '
                     f'style="height:{THUMB_HEIGHT}px;max-width:96px;object-fit:cover;float:left;margin:0 6px 2px 0;border-radius:3px">')
    elif caption.image_label:
        parts.append(f'<div class="rw-image-label">image: {html.escape(caption.image_label)}</div>')
    if caption.prompt:
        parts.append(f'<div class="rw-prompt" style="font-style:italic">“{html.escape(caption.prompt)}”</div>')
    words = params_words(caption.parameters)
    if words:
        parts.append(f'<div class="rw-params" style="color:#555;font-size:12px">{html.escape(words)}</div>')
    if not parts:
        return ""
    return '<div class="rw-caption" style="margin:2px 0;overflow:hidden">' + "".join(parts) + "</div>"

"""The built-in demo: a simulator in this process, and tasks created on it.

Used by ``runway-watch --demo`` and ``%runway_watch --demo``; needs no key and no network
beyond 127.0.0.1.  One simulator per process, started on first use.
"""

from __future__ import annotations

import secrets
import threading

from .client import Client

__all__ = ["demo_client", "create_demo_tasks", "stop_demo"]

_lock = threading.Lock()
_sim = None
_client: Client | None = None

PROMPTS = (
    "A paper boat sailing down a rainy street at dusk, cinematic",
    "A hummingbird hovering over a neon flower, slow motion",
    "Waves rolling over a glass beach at sunrise, aerial shot",
    "A tiny robot watering a bonsai tree, macro lens",
    "Lanterns rising over a mountain lake, long exposure",
)
FAIL_REASON = "Content moderation rejected the prompt (simulated failure)."


def demo_client() -> Client:
    """A client for the process's demo simulator (started on first call)."""
    global _sim, _client
    from .simulator import Simulator, Timeline

    with _lock:
        if _sim is None:
            _sim = Simulator(default_timeline=Timeline.demo()).start()
            # A made-up key: the simulator accepts any, and it scopes tasks to it.
            _client = Client(f"demo-{secrets.token_hex(8)}", _sim.base_url)
        assert _client is not None
        return _client


def create_demo_tasks(count: int = 1, fail: bool = False) -> tuple[Client, list[str]]:
    """Create ``count`` demo tasks of staggered lengths; with ``fail`` the last one fails."""
    from .simulator import Timeline

    client = demo_client()
    assert _sim is not None
    timelines = []
    for i in range(count):
        changes: dict = {"run_for": 8.0 + 3.0 * i}
        if fail and i == count - 1:
            changes.update(outcome="FAILURE", fail_reason=FAIL_REASON, fail_at=3.0)
        timelines.append(Timeline.demo(**changes))
    _sim.next_timelines(*timelines)
    callback = f"{_sim.base_url}/callback"
    ids = [client.create_text_to_video(PROMPTS[i % len(PROMPTS)], callback_url=callback) for i in range(count)]
    return client, ids


def stop_demo() -> None:
    """Stop the demo simulator (``%unload_ext`` calls this)."""
    global _sim, _client
    with _lock:
        sim, client, _sim, _client = _sim, _client, None, None
    if client is not None:
        client.close()
    if sim is not None:
        sim.stop()

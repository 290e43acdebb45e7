"""The built-in demo: a simulator in this process, and tasks created on it.

Used by ``runway-watch --demo`` and ``%runway_watch --demo``; needs no key and no network
beyond 127.0.0.1.  One simulator per process, started on first use.
"""

from __future__ import annotations

import atexit
import secrets
import shutil
import tempfile
import threading

from .client import Client

__all__ = ["demo_client", "create_demo_tasks", "demo_save_dir", "stop_demo", "is_demo_client",
           "running_demo_client", "demo_callback_url", "queue_demo_timelines"]

_lock = threading.Lock()
_sim = None
_client: Client | None = None
_save_dir: str | None = None

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


def is_demo_client(client: object) -> bool:
    """True for the client of this process's running demo simulator."""
    return client is not None and client is _client


def running_demo_client() -> Client | None:
    """The demo simulator's client if it runs in this process (never starts one)."""
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


def demo_callback_url() -> str:
    """The demo simulator's own callback address (on this machine; nobody else receives anything)."""
    demo_client()
    assert _sim is not None
    return f"{_sim.base_url}/callback"


def queue_demo_timelines(count: int) -> None:
    """Script the next ``count`` tasks created on the demo simulator (staggered lengths)."""
    from .simulator import Timeline

    demo_client()
    assert _sim is not None
    _sim.next_timelines(*(Timeline.demo(run_for=8.0 + 3.0 * i) for i in range(count)))


def demo_save_dir() -> str:
    """One temporary folder per process for demo videos, removed at unload or exit.

    The demo's video URL points at the kernel's loopback, which a remote browser (Binder,
    Colab) cannot reach; saved here, the small file is embedded in the card instead.
    """
    global _save_dir
    with _lock:
        if _save_dir is None:
            _save_dir = tempfile.mkdtemp(prefix="runway-demo-")
            atexit.register(shutil.rmtree, _save_dir, True)
        return _save_dir


def stop_demo() -> None:
    """Stop the demo simulator and remove its videos (``%unload_ext`` calls this)."""
    global _sim, _client, _save_dir
    with _lock:
        sim, client, folder, _sim, _client, _save_dir = _sim, _client, _save_dir, None, None, None
    if client is not None:
        client.close()
    if sim is not None:
        sim.stop()
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)

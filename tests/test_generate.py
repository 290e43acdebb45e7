"""rw.generate() end to end through the simulator: routes, bodies, the callback rule, the cost
guard, the journal, and every bad input (one sentence, nothing sent)."""

from __future__ import annotations

import base64
import json
import os
import types
from pathlib import Path

import pytest

import runway_widgets as rw
from runway_widgets.generation import NEEDS_CALLBACK
from runway_widgets.journal import journal_path
from runway_widgets.simulator import Fault, Simulator, Timeline

KEY = "sk-test-123"
IMAGE_URL = "https://images.example.com/boat.png"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # a PNG signature is all the client checks


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COMETAPI_KEY", "COMETAPI_BASE_URL", "COMETAPI_CALLBACK_URL", "RUNWAYML_API_SECRET",
                 "RUNWAYML_BASE_URL", "RUNWAY_WIDGETS_SAVE"):
        monkeypatch.delenv(name, raising=False)


def gen(sim: Simulator, *args: object, **kwargs: object) -> object:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("base_url", sim.base_url)
    return rw.generate(*args, **kwargs)


def journal() -> list[dict]:
    path = journal_path()
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def api_requests(sim: Simulator) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in sim.requests]


def test_image_url_takes_the_official_route_without_a_callback(sim: Simulator) -> None:
    handle = gen(sim, "a paper boat", image=IMAGE_URL, seed=7, ratio="16:9")
    assert isinstance(handle, rw.Watch) and handle.wait(10).status == "SUCCESS"
    [(path, task_id, body)] = sim.created_bodies
    assert path == "/runwayml/v1/image_to_video" and task_id == handle.task_id
    assert body == {"promptImage": IMAGE_URL, "promptText": "a paper boat", "model": "gen4_turbo",
                    "ratio": "1280:720", "duration": 5, "seed": 7}
    # The id the official-format create returned is polled on CometAPI's own feed.
    assert ("POST", "/runway/feed") in api_requests(sim)
    created = [r for r in journal() if r.get("outcome") == "created"]
    assert created[0]["task_id"] == task_id and created[0]["prompt"] == "a paper boat"
    assert created[0]["kind"] == "image_to_video" and created[0]["parameters"]["seed"] == 7


def test_a_local_image_is_sent_inline_and_not_kept_in_the_journal(sim: Simulator, tmp_path: Path) -> None:
    picture = tmp_path / "boat.png"
    picture.write_bytes(PNG)
    gen(sim, "a paper boat", image=str(picture)).wait(10)
    body = sim.created_bodies[0][2]
    head, data = body["promptImage"].split(",", 1)
    assert head == "data:image/png;base64" and base64.b64decode(data) == PNG
    text = journal_path().read_text()
    assert data[:40] not in text and "not kept" in text


def test_text_only_never_invents_a_callback(sim: Simulator) -> None:
    with pytest.raises(rw.ConfigError) as caught:
        gen(sim, "a paper boat")
    assert str(caught.value) == NEEDS_CALLBACK and "callback_url" in str(caught.value)
    assert api_requests(sim) == []  # nothing was sent


def test_text_only_uses_the_callers_callback_url(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMETAPI_CALLBACK_URL", "https://hooks.example.org/mine")
    gen(sim, "a paper boat", seed=3, duration=10).wait(10)
    [(path, _id, body)] = sim.created_bodies
    assert path == "/runway/pro/generate" and body["callback_url"] == "https://hooks.example.org/mine"
    assert body["prompt"] == "a paper boat" and body["seed"] == 3 and body["options"] == {"seconds": 10}
    gen(sim, "a ship", callback_url="https://hooks.example.org/other").wait(10)  # the argument wins
    assert sim.created_bodies[-1][2]["callback_url"] == "https://hooks.example.org/other"


def test_several_prompts_and_seeds_make_their_product(sim: Simulator) -> None:
    handles = gen(sim, ["a boat", "a ship"], image=IMAGE_URL, seed=[1, 2])
    assert isinstance(handles, list) and len(handles) == 4
    pairs = sorted((b["promptText"], b["seed"]) for _p, _i, b in sim.created_bodies)
    assert pairs == [("a boat", 1), ("a boat", 2), ("a ship", 1), ("a ship", 2)]
    paired = gen(sim, ["a boat", "a ship"], image=IMAGE_URL, seed=[5, 6], pair=True)
    assert len(paired) == 2 and [b["seed"] for _p, _i, b in sim.created_bodies[-2:]] == [5, 6]
    assert all(h.wait(10).status == "SUCCESS" for h in handles + paired)


def test_the_cost_guard_names_the_count_and_sends_nothing(sim: Simulator) -> None:
    with pytest.raises(rw.ConfigError, match=r"would create 6 tasks.*--yes \(confirm=True"):
        gen(sim, ["a", "b", "c"], image=IMAGE_URL, seed=[1, 2])
    assert api_requests(sim) == []
    handles = gen(sim, ["a", "b", "c"], image=IMAGE_URL, seed=[1, 2], confirm=True)
    assert len(handles) == 6 and len(sim.created_bodies) == 6
    rw.wait_all(10)


BAD = [
    (dict(prompt=""), "nothing to generate from"),
    (dict(prompt="x", image=IMAGE_URL, model="gen9_ultra"), "not available for image_to_video"),
    (dict(prompt="x", image=IMAGE_URL, ratio="4:1"), "ratio '4:1' is not available for gen4_turbo"),
    (dict(prompt="x", image=IMAGE_URL, model="gen3a_turbo", ratio="1:1"), "no square ratio"),
    (dict(prompt="x", image=IMAGE_URL, duration=7), "5 or 10 seconds"),
    (dict(prompt="x", image=IMAGE_URL, seed=-1), "A seed is a whole number"),
    (dict(prompt="x", image=IMAGE_URL, seed=2**32), "A seed is a whole number"),
    (dict(prompt="x", image=IMAGE_URL, seed="7"), "A seed is a whole number"),
    (dict(prompt=["a", "b"], image=IMAGE_URL, seed=[1, 2, 3], pair=True), "2 prompts, 3 seeds"),
    (dict(prompt="x" * 1001, image=IMAGE_URL), "at most 1000"),
    (dict(prompt="x", image="no/such/file.png"), "does not exist"),
    (dict(prompt="x", image="http://images.example.com/a.png"), "must be https://"),
    (dict(prompt="x", image="ftp://images.example.com/a.png"), "https:// URL or a local file"),
    (dict(prompt="x", image="data:text/html;base64,PGI+"), "base64 data URI of a PNG"),
    (dict(prompt="x", model="gen4.5", callback_url="https://hooks.example.org/x"), "not available for /runway/pro/generate"),
    (dict(prompt="x", ratio="wide", callback_url="https://hooks.example.org/x"), "ratio 'wide'"),
    (dict(prompt=["a", "b"], seed=[]), "seed is an empty list"),
    (dict(prompt="x", image=IMAGE_URL, timeout=-1), "timeout must be a positive"),
    (dict(prompt="x", image=IMAGE_URL, colour="red"), "unexpected option 'colour'"),
    (dict(prompt="x", video="https://v.example.com/a.mp4", callback_url="https://hooks.example.org/x",
          image="/etc/hostname"), "not a PNG"),
]


@pytest.mark.parametrize("kwargs, words", BAD, ids=[w for _k, w in BAD])
def test_bad_input_is_one_sentence_and_sends_nothing(sim: Simulator, kwargs: dict, words: str) -> None:
    with pytest.raises(rw.ConfigError) as caught:
        gen(sim, **kwargs)
    message = str(caught.value)
    assert words in message and message.count("\n") == 0 and message.endswith(".")
    assert api_requests(sim) == []


def test_image_files_that_cannot_be_sent(sim: Simulator, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    with open(big, "wb") as handle:  # 3.9 MB: 5.2 MB as a data URI, over Runway's 5 MB
        handle.write(PNG)
        handle.truncate(3_900_000)
    with pytest.raises(rw.ConfigError, match="big.png.*at most 5 MB inline"):
        gen(sim, "x", image=str(big))
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(rw.ConfigError, match="not a PNG, JPEG, WebP or GIF"):
        gen(sim, "x", image=str(text))
    with pytest.raises(rw.ConfigError, match="is not a file"):
        gen(sim, "x", image=str(tmp_path))
    assert api_requests(sim) == []
    fits = tmp_path / "fits.png"
    with open(fits, "wb") as handle:  # 3.7 MB: 4.9 MB inline, accepted by client and server
        handle.write(PNG)
        handle.truncate(3_700_000)
    assert gen(sim, "x", image=str(fits)).wait(10).status == "SUCCESS"


@pytest.mark.parametrize("status, body, words", [
    (400, {"error": {"message": "ratio <b>1280:720</b> is invalid (request id: 1)", "type": "comet_api_error"}},
     "HTTP 400): ratio <b>1280:720</b> is invalid"),
    (401, {"error": {"message": "invalid token", "type": "comet_api_error"}}, "rejected the API key"),
    (429, {"error": {"message": "daily generation limit reached", "type": "comet_api_error"}}, "daily generation limit reached"),
])
def test_gateway_create_errors_carry_the_servers_reason(sim: Simulator, status: int, body: dict, words: str) -> None:
    sim.inject(Fault("custom", path="/runwayml/v1/image_to_video", status=status, body=json.dumps(body).encode()))
    with pytest.raises(rw.RunwayWidgetsError) as caught:
        gen(sim, "x", image=IMAGE_URL)
    assert words in str(caught.value)
    assert rw.live_watches() == []


def test_callback_url_empty_from_the_gateway_is_explained(sim: Simulator) -> None:
    reply = {"code": "callback_url_empty", "message": "callback_url_empty", "data": None}
    sim.inject(Fault("custom", path="/runway/pro/generate", status=400, body=json.dumps(reply).encode()))
    with pytest.raises(rw.BadRequestError, match="requires a callback_url"):
        gen(sim, "x", callback_url="https://hooks.example.org/x")


def test_a_failed_second_create_keeps_the_first_task_and_sends_no_more(sim: Simulator) -> None:
    path = "/runwayml/v1/image_to_video"
    sim.inject(Fault("slow", path=path, delay=0.0))  # the first create passes untouched
    sim.inject(Fault("custom", path=path, status=429, body=b'{"error":{"message":"daily limit reached"}}'))
    made = gen(sim, ["a", "b", "c"], image=IMAGE_URL)
    assert len(made) == 1 and isinstance(made.error, rw.RateLimitedError) and "daily limit reached" in str(made.error)
    assert len(sim.created_bodies) == 1 and [r.path for r in sim.requests].count(path) == 2  # "c" never sent
    assert made[0].wait(10).status == "SUCCESS"


def test_video_to_video_and_act_one_use_cometapis_create_calls(sim: Simulator) -> None:
    hook = "https://hooks.example.org/x"
    gen(sim, "make it claymation", video="https://v.example.com/a.mp4", callback_url=hook).wait(10)
    gen(sim, video="https://v.example.com/a.mp4", image=IMAGE_URL, callback_url=hook).wait(10)
    paths = [p for p, _i, _b in sim.created_bodies]
    assert paths == ["/runway/pro/video2video", "/runway/pro/act_one"]
    assert sim.created_bodies[1][2]["image"] == IMAGE_URL


def test_watch_takes_a_task_object_with_an_id(sim: Simulator) -> None:
    task_id = sim.add_task(KEY, Timeline.fast())
    sdk_task = types.SimpleNamespace(id=task_id, status="PENDING")  # what Runway's SDK returns
    assert rw.watch(sdk_task, api_key=KEY, base_url=sim.base_url).wait(10).status == "SUCCESS"
    with pytest.raises(rw.ConfigError, match="must be a string"):
        rw.watch(types.SimpleNamespace(id=42), api_key=KEY, base_url=sim.base_url)


def test_generated_watches_know_their_prompt(sim: Simulator) -> None:
    from runway_widgets.gallery_view import caption_for

    handle = gen(sim, "a paper boat", image=IMAGE_URL, seed=9)
    caption = caption_for(handle)
    assert caption is not None and caption.prompt == "a paper boat" and caption.parameters["seed"] == 9
    assert caption.thumbnail == IMAGE_URL
    handle.wait(10)


def test_demo_generates_on_the_built_in_simulator() -> None:
    from runway_widgets.demo import stop_demo

    try:
        handles = rw.generate(["a boat", "a ship"], seed=[1, 2, 3], demo=True, timeout=60)
        assert len(handles) == 6  # the demo costs nothing: no confirm needed
        assert all(h.client.base_url.startswith("http://127.0.0.1:") for h in handles)
    finally:
        rw.stop_all()
        stop_demo()


def test_env_key_is_read_when_none_is_passed(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMETAPI_KEY", KEY)
    monkeypatch.setenv("COMETAPI_BASE_URL", sim.base_url)
    assert rw.generate("x", image=IMAGE_URL).wait(10).status == "SUCCESS"
    assert os.environ["COMETAPI_KEY"] == KEY

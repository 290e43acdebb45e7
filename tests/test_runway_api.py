"""Runway-format routes of the simulator over real sockets, and the ``provider="runway"`` switch:
CometAPI's /runwayml/v1/ create mirror, Runway's own /v1/ API with its own keys and
X-Runway-Version, and the same secret hygiene for RUNWAYML_API_SECRET."""

from __future__ import annotations

import http.client
import json
import types
from typing import Any, Iterator

import pytest

import runway_widgets as rw
from runway_widgets.journal import journal_path
from runway_widgets.simulator import Simulator, Timeline

COMET_KEY = "sk-test-123"
RUNWAY_KEY = "rw-test-456"
BODY = {"promptImage": "https://images.example.com/a.png", "promptText": "a boat", "model": "gen4_turbo",
        "ratio": "1280:720", "duration": 5, "seed": 1}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COMETAPI_KEY", "COMETAPI_BASE_URL", "RUNWAYML_API_SECRET", "RUNWAYML_BASE_URL",
                 "COMETAPI_CALLBACK_URL", "RUNWAY_WIDGETS_SAVE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def two_keys() -> Iterator[Simulator]:
    """CometAPI accepts only COMET_KEY, Runway's own API only RUNWAY_KEY."""
    server = Simulator(keys=[COMET_KEY], runway_keys=[RUNWAY_KEY], default_timeline=Timeline.fast()).start()
    try:
        yield server
    finally:
        server.stop()


def call(sim: Simulator, method: str, path: str, body: Any = None, key: str | None = COMET_KEY,
         version: bool = True) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        if version:
            headers["X-Runway-Version"] = "2024-11-06"
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        answer = conn.getresponse()
        raw = answer.read()
        try:
            return answer.status, json.loads(raw)
        except ValueError:
            return answer.status, raw.decode("utf-8", "replace")
    finally:
        conn.close()


def test_official_format_create_answers_an_id_pollable_both_ways(two_keys: Simulator) -> None:
    status, reply = call(two_keys, "POST", "/runwayml/v1/image_to_video", BODY)
    assert status == 200 and set(reply) == {"id"}
    task_id = reply["id"]
    status, feed = call(two_keys, "POST", "/runway/feed", {"task_id": task_id})
    assert status in (200, 400)  # visible after the timeline's first instant, like the gateway
    client = rw.Client(COMET_KEY, two_keys.base_url)
    official = rw.Client(COMET_KEY, two_keys.base_url, feed="official")
    try:
        assert rw.watch(task_id, client=client).wait(10).status == "SUCCESS"
        assert official.fetch(task_id).status == "SUCCEEDED"  # Runway's word, on the official poll
    finally:
        client.close()
        official.close()


@pytest.mark.parametrize("change, words", [
    ({"promptImage": None}, "promptImage: a image is required"),
    ({"promptImage": "http://images.example.com/a.png"}, "must be HTTPS"),
    ({"promptImage": "data:image/png;base64," + "A" * 5_000_000}, "larger than 5MB"),
    ({"model": "gen9"}, "model must be one of"),
    ({"ratio": "16:9"}, "ratio must be one of"),
    ({"duration": 7}, "duration must be one of"),
    ({"seed": -1}, "seed must be an integer"),
    ({"promptText": "x" * 1001}, "at most 1000"),
])
def test_the_mirror_validates_runways_body(two_keys: Simulator, change: dict, words: str) -> None:
    status, reply = call(two_keys, "POST", "/runwayml/v1/image_to_video", {**BODY, **change})
    assert status == 400 and words in reply["error"]["message"]
    assert two_keys.created_bodies == []


def test_the_mirror_has_no_text_only_route_and_wants_cometapis_key(two_keys: Simulator) -> None:
    status, page = call(two_keys, "POST", "/runwayml/v1/text_to_video", {"promptText": "x"})
    assert status == 404 and "404 Not Found" in page
    assert call(two_keys, "POST", "/runwayml/v1/image_to_video", BODY, key=RUNWAY_KEY)[0] == 401


def test_runways_own_api_needs_its_key_and_version_header(two_keys: Simulator) -> None:
    assert call(two_keys, "POST", "/v1/image_to_video", BODY, key=COMET_KEY) == (401, {"error": "Invalid API key."})
    status, reply = call(two_keys, "POST", "/v1/image_to_video", BODY, key=RUNWAY_KEY, version=False)
    assert status == 400 and "X-Runway-Version" in reply["error"]
    status, reply = call(two_keys, "POST", "/v1/text_to_video", {"promptText": "a boat", "model": "gen4.5",
                                                                 "ratio": "1280:720", "duration": 5}, key=RUNWAY_KEY)
    assert status == 200 and reply["id"]
    status, task = call(two_keys, "GET", f"/v1/tasks/{reply['id']}", key=RUNWAY_KEY)
    assert status in (200, 404)
    assert call(two_keys, "GET", "/v1/tasks/no-such-task", key=RUNWAY_KEY)[0] == 404
    # Tasks belong to the key that created them: CometAPI's key does not see it.
    assert call(two_keys, "GET", f"/runwayml/v1/tasks/{reply['id']}", key=COMET_KEY)[0] in (400, 404)


def test_provider_runway_creates_and_polls_on_runways_api(two_keys: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNWAYML_API_SECRET", RUNWAY_KEY)
    monkeypatch.setenv("RUNWAYML_BASE_URL", two_keys.base_url)
    # Only RUNWAYML_API_SECRET is set: Runway's own API is chosen by itself.
    handle = rw.generate("a paper boat", image=BODY["promptImage"], seed=4)
    assert handle.client.provider == "runway" and handle.client.feed == "runway_api"
    assert handle.wait(10).status == "SUCCEEDED"
    paths = {r.path for r in two_keys.requests}
    assert "/v1/image_to_video" in paths and f"/v1/tasks/{handle.task_id}" in paths
    assert not any(p.startswith(("/runway/", "/runwayml/")) for p in paths)
    text = rw.generate("a ship at dawn", model="gen4.5")  # text only: Runway has a route, no callback needed
    assert text.wait(10).status == "SUCCEEDED" and two_keys.created_bodies[-1][0] == "/v1/text_to_video"


def test_explicit_provider_and_a_runway_sdk_task_object(two_keys: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMETAPI_KEY", COMET_KEY)  # both set: CometAPI unless told otherwise
    monkeypatch.setenv("RUNWAYML_API_SECRET", RUNWAY_KEY)
    status, reply = call(two_keys, "POST", "/v1/image_to_video", BODY, key=RUNWAY_KEY)
    sdk_task = types.SimpleNamespace(id=reply["id"])
    handle = rw.watch(sdk_task, provider="runway", base_url=two_keys.base_url)
    assert handle.wait(10).status == "SUCCEEDED"
    with pytest.raises(rw.ConfigError, match="provider must be 'cometapi' or 'runway'"):
        rw.watch(sdk_task, provider="openai", base_url=two_keys.base_url)
    with pytest.raises(rw.ConfigError, match="Runway's own API has no /runway/pro/generate route"):
        rw.Client(RUNWAY_KEY, two_keys.base_url, provider="runway").create_text_to_video(
            "x", callback_url="https://hooks.example.org/x")


def test_no_runway_key_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(rw.ConfigError, match="set the RUNWAYML_API_SECRET environment variable"):
        rw.generate("x", image=BODY["promptImage"], provider="runway")


def test_the_runway_key_never_shows(two_keys: Simulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    secret = "rw-sentinel-7f3a9c"
    sim = Simulator(runway_keys=[secret], default_timeline=Timeline.fast()).start()
    try:
        monkeypatch.setenv("RUNWAYML_API_SECRET", secret)
        handle = rw.generate(f"a boat named {secret}", image=BODY["promptImage"], base_url=sim.base_url)
        handle.wait(10)
        seen = [repr(handle), repr(handle.client), str(vars(handle.client)), repr(handle.snapshot),
                journal_path().read_text(), capsys.readouterr().out]
        assert not any(secret in text for text in seen)
        bad = rw.Client("rw-wrong-key-000", sim.base_url, provider="runway")
        with pytest.raises(rw.AuthenticationError) as caught:
            bad.create_official("image_to_video", BODY)
        assert "rw-wrong-key-000" not in str(caught.value) and "HTTP 401" in str(caught.value)
        assert "check RUNWAYML_API_SECRET" in str(caught.value)
        bad.close()
    finally:
        rw.stop_all()
        sim.stop()


def test_watch_magic_and_cli_poll_runways_api(shell: Any, sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_cli import run

    monkeypatch.setenv("RUNWAYML_API_SECRET", RUNWAY_KEY)
    first = call(sim, "POST", "/v1/image_to_video", BODY, key=RUNWAY_KEY)[1]["id"]
    handle = shell.run_line_magic("runway_watch", f"{first} --provider runway --base-url {sim.base_url}")
    assert handle.client.provider == "runway" and handle.outcome is rw.Outcome.SUCCEEDED
    assert f"/v1/tasks/{first}" in {r.path for r in sim.requests}
    second = call(sim, "POST", "/v1/image_to_video", BODY, key=RUNWAY_KEY)[1]["id"]
    result = run([second, "--provider", "runway", "--base-url", sim.base_url, "--json"], key=None)
    assert result.code == 0 and json.loads(result.out)["status"] == "SUCCEEDED", result.err
    monkeypatch.delenv("RUNWAYML_API_SECRET")
    result = run([second, "--provider", "runway", "--base-url", sim.base_url], key=None)
    assert result.code == 2 and "RUNWAYML_API_SECRET" in result.err


VIDEO = "https://videos.example.com/dance.mp4"


def test_provider_runway_sends_video_to_video_and_act_two_to_runways_routes(
        two_keys: Simulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from runway_widgets.generation import caption_of

    monkeypatch.setenv("RUNWAYML_API_SECRET", RUNWAY_KEY)
    monkeypatch.setenv("RUNWAYML_BASE_URL", two_keys.base_url)
    redraw = rw.generate("make it claymation", video=VIDEO, seed=5, ratio="16:9")
    assert redraw.wait(10).status == "SUCCEEDED"
    assert two_keys.created_bodies[-1] == ("/v1/video_to_video", redraw.task_id, {
        "videoUri": VIDEO, "promptText": "make it claymation", "model": "gen4_aleph", "ratio": "1280:720", "seed": 5})
    act = rw.generate(video=VIDEO, image=BODY["promptImage"])
    assert act.wait(10).status == "SUCCEEDED"
    assert two_keys.created_bodies[-1] == ("/v1/character_performance", act.task_id, {
        "character": {"type": "image", "uri": BODY["promptImage"]}, "reference": {"type": "video", "uri": VIDEO},
        "model": "act_two"})  # no ratio or seed asked for: none sent
    face = tmp_path / "face.png"
    face.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    inline = rw.generate(video=VIDEO, image=str(face), ratio="720:1280")
    assert inline.wait(10).status == "SUCCEEDED"
    body = two_keys.created_bodies[-1][2]
    assert body["character"]["uri"].startswith("data:image/png;base64,") and body["ratio"] == "720:1280"
    paths = [r.path for r in two_keys.requests]
    assert f"/v1/tasks/{act.task_id}" in paths and not any(p.startswith(("/runway/", "/runwayml/")) for p in paths)
    assert caption_of(redraw).parameters["model"] == "gen4_aleph" and caption_of(inline).image is not None
    records = {r["task_id"]: r for r in map(json.loads, journal_path().read_text().splitlines())
               if r.get("outcome") == "created"}
    assert records[redraw.task_id]["kind"] == "video_to_video"
    assert records[redraw.task_id]["prompt"] == "make it claymation"
    assert records[act.task_id]["kind"] == "character_performance"
    assert "not kept" in records[inline.task_id]["parameters"]["character"]["uri"]  # the image's bytes stay out


RUNWAY_VIDEO_BAD = [
    (dict(video="ftp://videos.example.com/a.mp4", prompt="x"), "The video must be an https:// URL."),
    (dict(video="/tmp/dance.mp4", prompt="x"), "The video must be an https:// URL."),
    (dict(video="http://videos.example.com/a.mp4", prompt="x"), "must be https://"),
    (dict(video=b"https://videos.example.com/a.mp4", prompt="x"), "not bytes"),
    (dict(video=VIDEO), "needs a prompt"),
    (dict(video=VIDEO, prompt="x", model="gen4_turbo"), "not available for video_to_video"),
    (dict(video=VIDEO, prompt="x", ratio="1280:768"), "not available for gen4_aleph"),
    (dict(video=VIDEO, prompt="x", duration=5), "leave out the duration"),
    (dict(video=VIDEO, image=BODY["promptImage"], model="gen4_aleph"), "not available for character_performance"),
    (dict(video=VIDEO, image=BODY["promptImage"], ratio="848:480"), "not available for act_two"),
    (dict(video=VIDEO, prompt="x", seed=-1), "A seed is a whole number"),
]


@pytest.mark.parametrize("kwargs, words", RUNWAY_VIDEO_BAD, ids=[w for _k, w in RUNWAY_VIDEO_BAD])
def test_runway_video_inputs_are_one_sentence_and_send_nothing(
        two_keys: Simulator, monkeypatch: pytest.MonkeyPatch, kwargs: dict, words: str) -> None:
    monkeypatch.setenv("RUNWAYML_API_SECRET", RUNWAY_KEY)
    with pytest.raises(rw.ConfigError) as caught:
        rw.generate(base_url=two_keys.base_url, **kwargs)
    message = str(caught.value)
    assert words in message and "\n" not in message and message.endswith(".")
    assert two_keys.requests == [] and two_keys.created_bodies == []


def test_runways_own_video_routes_validate_their_bodies(two_keys: Simulator) -> None:
    good = {"videoUri": VIDEO, "promptText": "x", "model": "gen4_aleph"}
    assert call(two_keys, "POST", "/v1/video_to_video", good, key=RUNWAY_KEY)[0] == 200
    status, reply = call(two_keys, "POST", "/v1/video_to_video", {**good, "videoUri": "http://v.example.com/a"},
                         key=RUNWAY_KEY)
    assert status == 400 and "videoUri" in reply["error"]
    status, reply = call(two_keys, "POST", "/v1/character_performance",
                         {"character": {"type": "image", "uri": BODY["promptImage"]}, "model": "act_two"}, key=RUNWAY_KEY)
    assert status == 400 and "reference" in reply["error"]
    assert len(two_keys.created_bodies) == 1

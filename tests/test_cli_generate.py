"""``runway-watch generate`` as a real subprocess against an in-process simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from runway_widgets.simulator import Simulator
from helpers import quick
from test_cli import run

IMAGE_URL = "https://images.example.com/boat.png"


@pytest.fixture
def quick_sim() -> Iterator[Simulator]:
    with Simulator(default_timeline=quick()) as server:
        yield server


def test_generate_from_an_image_and_watch(quick_sim: Simulator, tmp_path: Path) -> None:
    picture = tmp_path / "boat.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    result = run(["generate", "a paper boat", "--image", str(picture), "--seed", "7", "--json"], quick_sim.base_url)
    assert result.code == 0, result.err
    [line] = [json.loads(x) for x in result.out.splitlines()]
    assert line["status"] == "SUCCESS" and line["outcome"] == "succeeded"
    [(path, task_id, body)] = quick_sim.created_bodies
    assert path == "/runwayml/v1/image_to_video" and task_id == line["task_id"]
    assert body["promptImage"].startswith("data:image/png;base64,") and body["seed"] == 7


def test_compare_creates_the_product_and_the_guard_counts(quick_sim: Simulator) -> None:
    result = run(["generate", "a", "b", "c", "--seed", "1", "2", "--image", IMAGE_URL], quick_sim.base_url)
    line = result.sentence()
    assert result.code == 2 and "would create 6 tasks" in line and quick_sim.requests == []
    result = run(["generate", "a", "b", "--seed", "1", "2", "--image", IMAGE_URL], quick_sim.base_url)
    assert result.code == 0 and result.out.count("Created ") == 4 and len(quick_sim.created_bodies) == 4


@pytest.mark.parametrize("args, words", [
    (["generate", "a paper boat"], "requires a callback_url"),
    (["generate"], "nothing to generate from"),
    (["generate", "x", "--image", "missing.png"], "does not exist"),
    (["generate", "x", "--image", IMAGE_URL, "--ratio", "2:1"], "ratio '2:1' is not available"),
    (["generate", "x", "--image", IMAGE_URL, "--timeout", "0"], "--timeout must be a positive"),
])
def test_bad_input_exit_2_nothing_sent(quick_sim: Simulator, args: list[str], words: str) -> None:
    result = run(args, quick_sim.base_url)
    assert result.code == 2 and words in result.sentence().replace("runway-watch: ", "")
    assert quick_sim.requests == []


def test_a_task_id_still_works_and_no_key_is_exit_2(quick_sim: Simulator) -> None:
    task = quick_sim.add_task("test-key-not-secret", quick())
    assert run([task], quick_sim.base_url).code == 0
    result = run(["generate", "x", "--image", IMAGE_URL], quick_sim.base_url, key=None)
    assert result.code == 2 and "COMETAPI_KEY" in result.err

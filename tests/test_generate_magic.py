"""``%runway_generate`` in a real IPython shell (terminal fallback), and the static gallery HTML.

The notebook path (captioned card, gallery, saved outputs) runs in a real kernel in
test_generate_notebook.py.
"""

from __future__ import annotations

import html
import re

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import runway_widgets as rw
from runway_widgets.gallery_view import Gallery
from runway_widgets.records import TaskRecord
from runway_widgets.simulator import Simulator
from runway_widgets.views.board import columns_for
from runway_widgets.views.caption import Caption, caption_html

IMAGE_URL = "https://images.example.com/boat.png"


@pytest.fixture(autouse=True)
def no_callback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMETAPI_CALLBACK_URL", raising=False)
    monkeypatch.delenv("RUNWAYML_API_SECRET", raising=False)


def test_generate_magic_creates_and_watches(shell: InteractiveShell, sim: Simulator,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    result = shell.run_cell(f'h = %runway_generate "a paper boat, at dusk" --image {IMAGE_URL} --seed 7 --ratio 9:16')
    assert result.success, result.error_in_exec
    handle = shell.user_ns["h"]
    assert isinstance(handle, rw.Watch) and handle.outcome is rw.Outcome.SUCCEEDED
    [(path, _id, body)] = sim.created_bodies
    assert path == "/runwayml/v1/image_to_video"
    assert body["promptText"] == "a paper boat, at dusk" and body["seed"] == 7 and body["ratio"] == "720:1280"
    assert handle.task_id[:8] in capsys.readouterr().out


def test_prompts_times_seeds_and_the_cost_guard(shell: InteractiveShell, sim: Simulator) -> None:
    handles = shell.run_line_magic("runway_generate", f'"a boat" "a ship" --seed 1 2 --image {IMAGE_URL}')
    assert len(handles) == 4 and all(h.done() for h in handles)
    with pytest.raises(UsageError, match="would create 6 tasks.*--yes"):
        shell.run_line_magic("runway_generate", f'"a" "b" "c" --seed 1 2 --image {IMAGE_URL}')
    assert len(sim.created_bodies) == 4
    more = shell.run_line_magic("runway_generate", f'"a" "b" "c" --seed 1 2 --image {IMAGE_URL} --yes')
    assert len(more) == 6 and len(sim.created_bodies) == 10


@pytest.mark.parametrize("line, words", [
    ("", "nothing to generate from"),
    ('"a boat"', "requires a callback_url"),
    ('"a boat" --image missing.png', "does not exist"),
    (f'"a boat" --image {IMAGE_URL} --model gen9', "not available for image_to_video"),
    (f'"a boat" --image {IMAGE_URL} --ratio 4:1', "ratio '4:1' is not available"),
    (f'"a" "b" --seed 1 2 3 --pair --image {IMAGE_URL}', "2 prompts, 3 seeds"),
    (f'"a" --seed one --image {IMAGE_URL}', "invalid int value: 'one'"),
    ('"unbalanced', "matching quotes"),
    (f'"a" --image {IMAGE_URL} --save x --no-save', "Choose one of --save and --no-save"),
    (f'"a" --image {IMAGE_URL} --provider openai', "invalid choice: 'openai'"),
])
def test_bad_input_is_a_usage_error_and_sends_nothing(shell: InteractiveShell, sim: Simulator, line: str, words: str) -> None:
    with pytest.raises(UsageError) as caught:
        shell.run_line_magic("runway_generate", line)
    assert words in str(caught.value)
    assert sim.requests == []


def test_runway_provider_without_its_key(shell: InteractiveShell, sim: Simulator) -> None:
    with pytest.raises(UsageError, match="RUNWAYML_API_SECRET"):
        shell.run_line_magic("runway_generate", f'"a" --image {IMAGE_URL} --provider runway')


def test_caption_escapes_everything_and_refuses_odd_sources() -> None:
    evil = Caption('<img src=x onerror="alert(1)">', {"model": "<b>m</b>", "seed": 3},
                   "a<b>.png", "javascript:alert(1)")
    text = caption_html(evil)
    assert "<img src=x" not in text and "&lt;img src=x" in text and "javascript:" not in text
    assert "&lt;b&gt;m&lt;/b&gt; · seed 3" in text and "a&lt;b&gt;.png" in text
    thumb = caption_html(Caption("p", {}, "boat.png", "data:image/png;base64,iVBORw0KGgo="))
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in thumb
    assert "<img" not in caption_html(Caption("p", {}, "x", 'data:image/png;base64,"><script>'))
    assert [columns_for(n) for n in (1, 2, 3, 4, 5, 6, 9)] == [1, 2, 3, 2, 3, 3, 3]


def test_gallery_of_journal_records_is_static_html() -> None:
    records = [
        TaskRecord.from_dict({"task_id": "t-1", "base_url": "https://api.cometapi.com", "outcome": "succeeded",
                              "status": "SUCCESS", "state": "succeeded", "progress": 100, "prompt": "a <boat>",
                              "parameters": {"model": "gen4_turbo", "seed": 1, "promptImage": IMAGE_URL},
                              "result_url": "https://cdn.example.com/v1.mp4"}),
        TaskRecord.from_dict({"task_id": "t-2", "base_url": "https://api.cometapi.com", "outcome": "failed",
                              "status": "FAILURE", "state": "failed", "prompt": "a ship",
                              "fail_reason": "<script>x</script>"}),
    ]
    page = Gallery(records).html()
    assert page.count('class="rw-cell"') == 2 and "repeat(2,minmax(0,1fr))" in page
    assert "a &lt;boat&gt;" in page and "<script>x" not in page and 'src="https://cdn.example.com/v1.mp4"' in page
    assert re.search(r"1/2 done|2/2 done, 1 failed", html.unescape(page))
    with pytest.raises(rw.ConfigError, match="watches or task records"):
        rw.gallery(["t-1"])
    with pytest.raises(rw.ConfigError, match="at least one"):
        rw.gallery([])


def test_gallery_of_generated_watches(shell: InteractiveShell, sim: Simulator, capsys: pytest.CaptureFixture[str]) -> None:
    handles = rw.generate(["a <boat>", "a ship"], image=IMAGE_URL, seed=5)
    rw.wait_all(10)
    gallery = rw.gallery(handles)
    page = gallery.html()
    assert page.count('class="rw-cell"') == 2 and page.count("<video") == 2 and "<b>2/2 done</b>" in page
    assert "“a &lt;boat&gt;”" in page and "seed 5" in page and f'src="{IMAGE_URL}"' in page  # the input thumbnail
    shell.user_ns["g"] = gallery
    capsys.readouterr()
    shell.run_cell("g")  # no widget front end here: its text stands in
    out = capsys.readouterr().out
    assert all(h.task_id in out for h in handles) and out.count("SUCCESS") == 2


def test_a_bare_generate_line_prints_no_out_noise(shell: InteractiveShell, sim: Simulator,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_cell(f'%runway_generate "a paper boat" --image {IMAGE_URL}', store_history=True)
    out = capsys.readouterr().out
    assert "Out[" not in out and "<Watch" not in out and "SUCCESS" in out

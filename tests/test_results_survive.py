"""Results outlive their signed URLs: a default save folder, and fresh URLs for expired ones.

Against the simulator over loopback; its signed URLs carry ``exp=<unix seconds>`` and
answer 403 once past it (``Timeline(url_ttl=...)``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import nbformat
import pytest

import runway_widgets as rw
from runway_widgets import config
from runway_widgets.errors import ConfigError
from runway_widgets.simulator import Simulator, Timeline
from helpers import FAKE_KEY



@pytest.fixture(autouse=True)
def no_configured_save(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(config.SAVE_ENV, raising=False)
    config._configured.clear()
    yield
    config._configured.clear()


def feeds(sim: Simulator, task_id: str) -> int:
    return sum(1 for r in sim.requests_for(task_id) if r.path == "/runway/feed")


def exp_of(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["exp"][0])


# -------------------------------------------------------------------------- default save folder
def test_configure_save_keeps_every_result(sim: Simulator, tmp_path: Path) -> None:
    rw.configure(save=str(tmp_path / "class"))  # a folder, with or without the final /
    tasks = [sim.add_task(FAKE_KEY, Timeline.fast()) for _ in range(2)]
    client = rw.get_client(FAKE_KEY, sim.base_url)
    handles = [rw.watch(t, client=client) for t in tasks]
    for h in handles:
        h.wait(20)
    assert sorted(p.name for p in (tmp_path / "class").iterdir()) == sorted(f"{t}.mp4" for t in tasks)
    assert all(h.saved_path and Path(h.saved_path).stat().st_size > 1000 for h in handles)
    # save=False opts one watch out; configure(save=None) turns the default off.
    other = sim.add_task(FAKE_KEY, Timeline.fast())
    assert rw.watch(other, client=client, save=False).wait(20) and not (tmp_path / "class" / f"{other}.mp4").exists()
    rw.configure(save=None)
    last = sim.add_task(FAKE_KEY, Timeline.fast())
    handle = rw.watch(last, client=client)
    handle.wait(20)
    assert handle.saved_path is None


def test_environment_variable_sets_the_default(sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.SAVE_ENV, str(tmp_path / "env") + "/")
    task = sim.add_task(FAKE_KEY, Timeline.fast())
    handle = rw.watch(task, client=rw.get_client(FAKE_KEY, sim.base_url))
    handle.wait(20)
    assert handle.saved_path == str(tmp_path / "env" / f"{task}.mp4")


@pytest.mark.parametrize("value, words", [
    ("", "empty"),
    ("   ", "empty"),
    ("bad\x07name/", "control characters"),
    (42, "not int"),
    (True, "default folder"),
])
def test_bad_save_values_get_one_sentence(value: object, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        rw.configure(save=value)
    message = str(info.value)
    assert words in message and message.count(". ") == 0 and message.endswith("."), message


def test_a_file_given_as_folder_is_refused_before_anything_starts(sim: Simulator, tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x")
    task = sim.add_task(FAKE_KEY, Timeline.fast())
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        rw.watch(task, client=rw.get_client(FAKE_KEY, sim.base_url), save=str(tmp_path / "taken") + "/")
    assert feeds(sim, task) == 0


def test_cli_uses_the_default_and_no_save_opts_out(sim: Simulator, tmp_path: Path) -> None:
    env = {**os.environ, "COMETAPI_KEY": FAKE_KEY, "COMETAPI_BASE_URL": sim.base_url,
           config.SAVE_ENV: str(tmp_path / "cli") + "/"}
    first, second = sim.add_task(FAKE_KEY, Timeline.fast()), sim.add_task(FAKE_KEY, Timeline.fast())
    cli = [sys.executable, "-m", "runway_widgets.cli"]
    run = subprocess.run(cli + [first], env=env, capture_output=True, text=True, timeout=60, start_new_session=True)
    assert run.returncode == 0, run.stderr
    run = subprocess.run(cli + ["--no-save", second], env=env, capture_output=True, text=True, timeout=60,
                         start_new_session=True)
    assert run.returncode == 0, run.stderr
    assert [p.name for p in (tmp_path / "cli").iterdir()] == [f"{first}.mp4"]
    run = subprocess.run(cli + ["--no-save", "--save", "x/", second], env=env, capture_output=True, text=True,
                         timeout=60, start_new_session=True)
    assert run.returncode == 2 and "Choose one of --save and --no-save." in run.stderr


# ----------------------------------------------------------------------------- fresh URLs
def test_an_expired_url_is_refreshed_through_the_budget(sim: Simulator) -> None:
    task = sim.add_task(FAKE_KEY, Timeline.fast(url_ttl=1.0))
    handle = rw.watch(task, client=rw.get_client(FAKE_KEY, sim.base_url), save=False)
    handle.wait(20)
    old = handle.result_url
    assert old is not None
    time.sleep(max(0.0, exp_of(old) - time.time()) + 1.1)  # the simulator now answers 403 for it
    before = feeds(sim, task)
    assert rw.refresh_result(handle) is True
    assert feeds(sim, task) == before + 1
    assert handle.result_url != old and exp_of(handle.result_url) > exp_of(old)
    assert handle.outcome is rw.Outcome.SUCCEEDED and handle.snapshot.succeeded


def test_no_refresh_for_a_live_url_or_a_saved_copy(sim: Simulator, tmp_path: Path) -> None:
    client = rw.get_client(FAKE_KEY, sim.base_url)
    fresh = sim.add_task(FAKE_KEY, Timeline.fast())  # URLs that live for days
    handle = rw.watch(fresh, client=client, save=False)
    handle.wait(20)
    before = feeds(sim, fresh)
    assert rw.refresh_result(handle) is False and feeds(sim, fresh) == before
    saved = sim.add_task(FAKE_KEY, Timeline.fast(url_ttl=1.0))
    handle = rw.watch(saved, client=client, save=str(tmp_path) + "/")
    handle.wait(20)
    before = feeds(sim, saved)
    assert rw.refresh_result(handle) is False and feeds(sim, saved) == before  # the copy plays without it


def test_a_failed_refresh_keeps_what_the_watch_had(sim: Simulator) -> None:
    task = sim.add_task(FAKE_KEY, Timeline.fast(url_ttl=1.0))
    handle = rw.watch(task, client=rw.get_client(FAKE_KEY, sim.base_url), save=False)
    handle.wait(20)
    old = handle.result_url
    sim.stop()  # the gateway is gone: the refresh fails, the success stands
    assert rw.refresh_result(handle, max_wait=2.0) is False
    assert handle.result_url == old and handle.outcome is rw.Outcome.SUCCEEDED


@pytest.mark.kernel
@pytest.mark.timeout(300)
def test_a_card_shown_again_after_its_url_expired_plays_a_fresh_one(sim: Simulator, tmp_path: Path) -> None:
    """In a real kernel: ``h`` in a later cell, once the signed URL has expired, shows the
    card with a fresh URL (and the first card keeps the one it had)."""
    from kernel_envs import NotebookRun

    task = sim.add_task(FAKE_KEY, Timeline.fast(url_ttl=2.0))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in (
        "%load_ext runway_widgets",
        f"h = %runway_watch {task} --no-save --wait",
        "import time\ntime.sleep(4)",
        "h",
    )]
    source = tmp_path / "again.ipynb"
    nbformat.write(nb, str(source))
    run = NotebookRun(sys.executable, source, tmp_path / "run",
                      env={"COMETAPI_KEY": FAKE_KEY, "COMETAPI_BASE_URL": sim.base_url}).start()
    try:
        run.wait()
    finally:
        run.stop()
    out = nbformat.read(str(run.out_path), as_version=4)
    first = [o for o in out.cells[1].outputs if o.get("metadata", {}).get("runway_widgets", {}).get("output") == "card"]
    again = [o for o in out.cells[3].outputs if o.get("metadata", {}).get("runway_widgets", {}).get("output") == "card"]
    assert len(first) == 1 and len(again) == 1, (out.cells[1].outputs, out.cells[3].outputs)

    def url_in(output: dict) -> str:
        text = output["data"]["text/html"]
        start = text.index(f"{sim.base_url}/media/")
        return text[start:text.index('"', start)].replace("&amp;", "&")

    assert "application/vnd.jupyter.widget-view+json" not in again[0]["data"]
    assert exp_of(url_in(again[0])) > exp_of(url_in(first[0])), "the card shown again kept the expired URL"

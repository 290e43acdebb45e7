"""Saving a result video from the simulator's signed media URLs: streamed, checked, atomic, keyless."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from runway_widgets import Client
from runway_widgets.download import already_saved, save_video, target_path
from runway_widgets.errors import DownloadError, ExpiredUrlError
from runway_widgets.simulator import Fault, Simulator, Timeline
from runway_widgets.simulator.media import DEMO_PATH
from helpers import FAKE_KEY



def finished(sim: Simulator, client: Client, **changes: Any) -> tuple[str, str]:
    """A task that has already succeeded, and its signed result URL (polled with the real client)."""
    timeline = Timeline(**{"invisible_for": 0, "submitted_for": 0, "queued_for": 0, "run_for": 0, **changes})
    task = sim.add_task(FAKE_KEY, timeline)
    url = client.fetch(task).result_url
    assert url is not None
    return task, url


def media(sim: Simulator, task: str) -> list[Any]:
    return [r for r in sim.requests_for(task) if r.path.startswith("/media/")]


def test_streamed_save_of_the_demo_video(sim: Simulator, client: Client, tmp_path: Path) -> None:
    task, url = finished(sim, client)
    path = save_video(url, tmp_path, task)
    assert path == tmp_path / f"{task}.mp4"
    assert path.read_bytes() == DEMO_PATH.read_bytes()
    assert os.listdir(tmp_path) == [path.name]
    (record,) = media(sim, task)
    assert record.method == "GET" and record.status == 200  # 200, not 206: no Range was asked for
    assert not record.auth_sent  # no Authorization header goes to the media host


def test_large_synthetic_video_is_streamed_whole(sim: Simulator, client: Client, tmp_path: Path) -> None:
    size = 5 * 1024 * 1024 + 123
    task, url = finished(sim, client, media_size=size)
    path = save_video(url, tmp_path / "big.mp4", task)
    assert path.stat().st_size == size
    with open(path, "rb") as f:
        assert f.read(8)[4:8] == b"ftyp"


def test_html_instead_of_video_is_refused(sim: Simulator, client: Client, tmp_path: Path) -> None:
    task, url = finished(sim, client)
    sim.inject(Fault("html200", path="/media/"))
    with pytest.raises(DownloadError, match="text/html"):
        save_video(url, tmp_path, task)
    assert os.listdir(tmp_path) == []


def test_size_cap(sim: Simulator, client: Client, tmp_path: Path) -> None:
    task, url = finished(sim, client, media_size=2_000_000)
    with pytest.raises(DownloadError, match="limit"):
        save_video(url, tmp_path, task, max_bytes=1_000_000)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("tamper", [
    lambda url: re.sub(r"sig=[0-9a-f]+", "sig=" + "0" * 32, url),  # forged
    lambda url: re.sub(r"exp=\d+", "exp=1000000000", url),  # expired long ago (and so unsigned)
    lambda url: url.split("?")[0],  # the signature stripped
])
def test_bad_or_expired_signature_is_an_expired_url(sim: Simulator, client: Client, tmp_path: Path,
                                                    tamper: Any) -> None:
    task, url = finished(sim, client)
    with pytest.raises(ExpiredUrlError, match="HTTP 403") as info:
        save_video(tamper(url), tmp_path, task)
    assert isinstance(info.value, DownloadError)  # the saver asks for a fresh URL on this type
    assert os.listdir(tmp_path) == []
    assert [r.status for r in media(sim, task)] == [403]


def test_missing_object_is_an_expired_url(sim: Simulator, client: Client, tmp_path: Path) -> None:
    task, url = finished(sim, client)
    with pytest.raises(ExpiredUrlError, match="HTTP 404"):
        save_video(url.replace("/media/", "/media/nested/"), tmp_path, task)


@pytest.mark.parametrize("kind", ["reset", "drop"])
def test_interrupted_transfer_leaves_no_partial_file(sim: Simulator, client: Client, tmp_path: Path,
                                                     kind: str) -> None:
    task, url = finished(sim, client, media_size=3_000_000)
    sim.inject(Fault(kind, path="/media/"))
    with pytest.raises(DownloadError, match="broke off|stopped after|Could not download") as info:
        save_video(url, tmp_path, task)
    assert "\n" not in str(info.value)
    assert os.listdir(tmp_path) == []  # neither the video nor a .part file
    assert already_saved(task, tmp_path) is None
    # The next attempt starts from scratch and succeeds.
    path = save_video(url, tmp_path, task)
    assert path.stat().st_size == 3_000_000 and os.listdir(tmp_path) == [path.name]


def test_second_save_of_a_task_into_a_folder_is_skipped(sim: Simulator, client: Client, tmp_path: Path) -> None:
    task, url = finished(sim, client)
    first = save_video(url, tmp_path, task)
    second = save_video(url, tmp_path, task)
    assert first == second and len(media(sim, task)) == 1
    assert already_saved(task, tmp_path) == first
    assert already_saved(task, str(tmp_path) + os.sep) == first  # the same folder, spelt with a '/'
    # Another process has no in-memory record, but a task-named file can only be this task's video.
    other = tmp_path / "copy"
    other.mkdir()
    (other / first.name).write_bytes(first.read_bytes())
    assert save_video(url, other, task) == other / first.name and len(media(sim, task)) == 1


def test_existing_empty_file_is_not_taken_as_saved(sim: Simulator, client: Client, tmp_path: Path) -> None:
    task, url = finished(sim, client)
    (tmp_path / f"{task}.mp4").write_bytes(b"")
    path = save_video(url, tmp_path, task)
    assert path.read_bytes() == DEMO_PATH.read_bytes() and len(media(sim, task)) == 1


def test_unsafe_urls_are_never_fetched(sim: Simulator, tmp_path: Path) -> None:
    for url in ("javascript:alert(1)", "file:///etc/passwd", f"{sim.base_url}/media/x.mp4\"><script>", ""):
        with pytest.raises(DownloadError, match="plain http"):
            save_video(url, tmp_path, "task-1")
    assert sim.requests == [] and os.listdir(tmp_path) == []


def test_unreachable_host(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="Could not download"):
        save_video(f"http://127.0.0.1:{port}/media/x.mp4?exp=1&sig=2", tmp_path, "task-1")
    assert os.listdir(tmp_path) == []


def test_target_paths(tmp_path: Path) -> None:
    assert target_path(tmp_path, "abc") == tmp_path / "abc.mp4"
    assert target_path(str(tmp_path / "new") + os.sep, "abc") == tmp_path / "new" / "abc.mp4"
    assert target_path(tmp_path / "clip.mp4", "abc") == tmp_path / "clip.mp4"


def test_save_into_a_folder_that_does_not_exist_yet(sim: Simulator, client: Client, tmp_path: Path) -> None:
    task, url = finished(sim, client)
    path = save_video(url, str(tmp_path / "a" / "b") + os.sep, task)
    assert path == tmp_path / "a" / "b" / f"{task}.mp4" and path.is_file()

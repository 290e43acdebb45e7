"""The magics in a real IPython shell (no kernel: the terminal fallback and the plumbing).

The notebook path (widgets, display ids, saved state) runs in a real kernel in
test_notebooks.py; here it is parsing, errors, handles and lifecycle.
"""

from __future__ import annotations

import re
import sys
import threading
import time
import types

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import runway_widgets
from runway_widgets.simulator import Simulator, Timeline
from helpers import FAKE_KEY





def _ours() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("runway-widgets")]


def test_watch_in_terminal_ipython_blocks_with_a_terminal_view(shell: InteractiveShell, sim: Simulator,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    task = sim.add_task(FAKE_KEY, Timeline.fast())
    result = shell.run_cell(f"h = %runway_watch {task}")
    assert result.success, result.error_in_exec
    handle = shell.user_ns["h"]
    assert isinstance(handle, runway_widgets.Watch) and handle.done()
    assert handle.outcome is runway_widgets.Outcome.SUCCEEDED and handle.result_url
    out = capsys.readouterr().out
    assert task[:8] in out and "SUCCESS" in out and "/media/" in out


def test_unassigned_result_prints_no_out_noise(shell: InteractiveShell, sim: Simulator, capsys: pytest.CaptureFixture[str]) -> None:
    task = sim.add_task(FAKE_KEY, Timeline.fast())
    shell.run_cell(f"%runway_watch {task}", store_history=True)
    out = capsys.readouterr().out
    assert "Out[" not in out and "<Watch" not in out
    shell.run_cell(f"h = %runway_watch {task}", store_history=True)
    capsys.readouterr()
    shell.run_cell("h", store_history=True)  # displayed in a later cell: one short line
    again = capsys.readouterr().out
    assert "<Watch" in again and len(again.strip().splitlines()) == 1


def test_background_returns_at_once_and_handle_waits(shell: InteractiveShell, sim: Simulator) -> None:
    task = sim.add_task(FAKE_KEY, Timeline.fast())
    started = time.monotonic()
    handle = shell.run_line_magic("runway_watch", f"{task} --background")
    assert time.monotonic() - started < 1.0 and not handle.done()
    assert handle.wait(10).status == "SUCCESS"


def test_several_ids_give_a_list_of_handles(shell: InteractiveShell, sim: Simulator) -> None:
    ids = [sim.add_task(FAKE_KEY, Timeline.fast()) for _ in range(3)]
    handles = shell.run_line_magic("runway_watch", " ".join(ids))
    assert [h.task_id for h in handles] == ids and all(h.done() for h in handles)
    assert [s.status for s in handles.wait(1)] == ["SUCCESS"] * 3


@pytest.mark.parametrize(
    "line, words",
    [
        ("", "at least one TASK_ID"),
        ("--bogus x", "Unrecognized option --bogus"),
        ("abc --timeout -3", "--timeout takes a positive number of seconds, not '-3'"),
        ("abc --timeout soon", "--timeout takes a positive number of seconds, not 'soon'"),
        ("abc --give-up-after nan", "--give-up-after takes a number of seconds, 0 or more, not 'nan'"),
        ("--include-live abc", "only goes with --resume"),
        ("abc --save x/ --no-save", "Choose one of --save and --no-save"),
        ("abc --wait --background", "Choose one"),
        ("--demo-fail abc", "only goes with --demo"),
        ("--demo 3 abc", "do not pass task ids"),
        ("--demo 500", "from 1 to 20"),
        ("'abc\tdef'", "characters"),
        ("abc --base-url ftp://example.com", "must start with https://"),
        ("abc --base-url http://example.com", "plain http"),
    ],
)
def test_bad_arguments_are_usage_errors(shell: InteractiveShell, line: str, words: str) -> None:
    with pytest.raises(UsageError, match=words) as info:
        shell.run_line_magic("runway_watch", line)
    assert type(info.value) is UsageError  # a subclass would print a full traceback
    assert "\n" not in str(info.value)


def test_missing_key_says_how_to_set_it(shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMETAPI_KEY")
    with pytest.raises(UsageError) as info:
        shell.run_line_magic("runway_watch", "some-task")
    assert "COMETAPI_KEY" in str(info.value) and "--demo" in str(info.value)


def test_usage_error_in_a_cell_prints_one_line(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    result = shell.run_cell("%runway_watch")
    err = capsys.readouterr().err
    assert not result.success and "UsageError: Give at least one TASK_ID" in err and "Traceback" not in err


def test_help_lists_the_options() -> None:
    from runway_widgets.magic import RunwayMagics

    doc = RunwayMagics.runway_watch.__doc__ or ""
    for option in ("--timeout", "--save", "--wait", "--background", "--foreground", "--base-url", "--no-video", "--demo"):
        assert option in doc


def test_stop_and_tasks(shell: InteractiveShell, sim: Simulator, capsys: pytest.CaptureFixture[str]) -> None:
    slow = Timeline(invisible_for=0, submitted_for=0, queued_for=60, run_for=60)
    a, b = sim.add_task(FAKE_KEY, slow), sim.add_task(FAKE_KEY, slow)
    wa = shell.run_line_magic("runway_watch", f"{a} --background")
    wb = shell.run_line_magic("runway_watch", f"{b} --background")
    with pytest.raises(UsageError, match="Say which"):
        shell.run_line_magic("runway_stop", "")
    with pytest.raises(UsageError, match="no live watch"):
        shell.run_line_magic("runway_stop", "nope")
    shell.run_line_magic("runway_stop", a[:8])
    assert wa.done() and wa.outcome is runway_widgets.Outcome.STOPPED and not wb.done()
    shell.run_line_magic("runway_stop", "--all")
    assert wb.done()
    capsys.readouterr()
    shell.run_line_magic("runway_tasks", "")
    listing = capsys.readouterr().out
    assert a in listing and b in listing and "stopped" in listing


def test_rewatching_supersedes_the_old_watch(shell: InteractiveShell, sim: Simulator) -> None:
    slow = Timeline(invisible_for=0, submitted_for=0, queued_for=60, run_for=60)
    task = sim.add_task(FAKE_KEY, slow)
    first = shell.run_line_magic("runway_watch", f"{task} --background")
    second = shell.run_line_magic("runway_watch", f"{task} --background")
    assert first.done() and "Superseded" in str(first.error) and not second.done()
    assert runway_widgets.live_watches() == [second]


def test_load_is_idempotent_and_unload_stops_threads(shell: InteractiveShell, sim: Simulator) -> None:
    shell.run_line_magic("load_ext", "runway_widgets")  # a second load: no error, still one set of magics
    slow = Timeline(invisible_for=0, submitted_for=0, queued_for=60, run_for=60)
    handle = shell.run_line_magic("runway_watch", f"{sim.add_task(FAKE_KEY, slow)} --background")
    time.sleep(0.3)
    assert _ours(), "a live watch has a poller thread"
    shell.run_line_magic("reload_ext", "runway_widgets")
    assert handle.done() and "unloaded" in str(handle.error)
    deadline = time.monotonic() + 3
    while _ours() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _ours()
    assert "runway_watch" in shell.magics_manager.magics["line"]


def test_interrupting_a_foreground_watch_stops_it(shell: InteractiveShell, sim: Simulator) -> None:
    slow = Timeline(invisible_for=0, submitted_for=0, queued_for=60, run_for=60)
    task = sim.add_task(FAKE_KEY, slow)
    import _thread

    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            shell.run_line_magic("runway_watch", task)
    finally:
        timer.cancel()
    handle = runway_widgets.recent_watches()[-1]
    assert handle.done() and handle.outcome is runway_widgets.Outcome.STOPPED


def test_too_old_ipywidgets_is_one_sentence_and_nothing_starts(shell: InteractiveShell, sim: Simulator,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import ipywidgets

    monkeypatch.setattr(ipywidgets, "__version__", "7.5.1")
    monkeypatch.setattr(shell, "kernel", object(), raising=False)  # look like a Jupyter kernel
    task = sim.add_task(FAKE_KEY, Timeline.fast())
    with pytest.raises(UsageError, match=r"ipywidgets 7\.5\.1 is too old: run  %pip install 'ipywidgets>=7\.6'"):
        shell.run_line_magic("runway_watch", task)
    assert runway_widgets.live_watches() == [] and sim.requests_for(task) == []


def test_save_alone_means_the_default_folder(shell: InteractiveShell, sim: Simulator, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    task = sim.add_task(FAKE_KEY, Timeline.fast())
    handle = shell.run_line_magic("runway_watch", f"{task} --save")
    assert handle.saved_path and (tmp_path / "runway_videos" / f"{task}.mp4").is_file()


def test_interrupting_a_waiting_cell_prints_one_line(shell: InteractiveShell, sim: Simulator,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    slow = Timeline(invisible_for=0, submitted_for=0, queued_for=60, run_for=60)
    task = sim.add_task(FAKE_KEY, slow)
    import _thread

    capsys.readouterr()
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    try:
        result = shell.run_cell(f"%runway_watch {task} --wait")
    finally:
        timer.cancel()
    assert isinstance(result.error_in_exec, KeyboardInterrupt)  # "Run All" stops here
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert "Traceback" not in shown and "KeyboardInterrupt" not in shown, shown
    lines = [line for line in shown.splitlines() if line.startswith("Interrupted")]
    assert lines == ["Interrupted: stopped watching 1 task (the server goes on with it)."], shown


def test_help_has_no_stray_docstring_marker_and_names_the_other_magics(shell: InteractiveShell,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    shell.run_cell("%runway_watch?")
    shown = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert "Docstring:" in shown and "::" not in shown, shown[:300]
    assert shown.split("Docstring:", 1)[1].lstrip().startswith("%runway_watch [--base-url URL] [--timeout")
    assert "%runway_stop" in shown and "%runway_tasks" in shown


def test_the_task_id_is_checked_before_the_key(shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMETAPI_KEY")
    with pytest.raises(UsageError, match="^The task id contains control characters"):
        shell.run_line_magic("runway_watch", "abc\x01def")
    with pytest.raises(UsageError, match="^No API key"):
        shell.run_line_magic("runway_watch", "abc-def")


def test_the_no_key_message_fits_where_it_appears(shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMETAPI_KEY")
    with pytest.raises(UsageError) as outside:
        shell.run_line_magic("runway_watch", "abc-def")
    assert "Colab" not in str(outside.value) and "%runway_watch --demo" in str(outside.value)
    with pytest.raises(runway_widgets.ConfigError) as python:
        runway_widgets.watch("abc-def")
    assert "Colab" not in str(python.value) and "demo" not in str(python.value) and "api_key=" in str(python.value)
    colab = types.ModuleType("google.colab")  # what Colab's kernel has loaded; reading a secret fails here
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    with pytest.raises(UsageError) as inside:
        shell.run_line_magic("runway_watch", "abc-def")
    assert "Colab secret named COMETAPI_KEY" in str(inside.value) and "%runway_watch --demo" in str(inside.value)


def test_unloading_closes_the_cached_clients(shell: InteractiveShell, sim: Simulator) -> None:
    task = sim.add_task(FAKE_KEY, Timeline.fast())
    handle = shell.run_line_magic("runway_watch", task)
    assert handle.done() and runway_widgets.get_client() is handle.client  # cached, shared
    shell.run_line_magic("unload_ext", "runway_widgets")
    try:
        with pytest.raises(runway_widgets.TransportError, match="closed"):
            handle.client.fetch(task)  # its connection pool is gone
        assert runway_widgets.get_client() is not handle.client  # the next use gets a fresh one
        with pytest.raises(KeyError):  # the display formatter no longer knows the Watch type either
            shell.display_formatter.ipython_display_formatter.lookup_by_type(runway_widgets.Watch)
    finally:
        shell.run_line_magic("load_ext", "runway_widgets")  # the fixture unloads it again

"""``runway-watch`` as a real subprocess against an in-process simulator: output, exit codes, bad input.

Every subprocess runs in its own process group with a timeout, and is killed by pid in a
``finally`` if it outlives the test: a hang fails the test instead of the suite.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator, Sequence

import pytest

from runway_widgets import cli
from runway_widgets.config import missing_key_help
from runway_widgets.simulator import Fault, Simulator
from runway_widgets.simulator.media import DEMO_PATH
from helpers import FAKE_KEY, Run, communicate, quick

SCRIPT = Path(sys.executable).with_name("runway-watch")




def _env(base_url: str | None, key: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMETAPI_")}
    env["PYTHONIOENCODING"] = "utf-8"
    if key is not None:
        env["COMETAPI_KEY"] = key
    if base_url is not None:
        env["COMETAPI_BASE_URL"] = base_url
    return env


def start(args: Sequence[str], base_url: str | None = None, key: str | None = FAKE_KEY,
          script: bool = False) -> subprocess.Popen[str]:
    command = [str(SCRIPT)] if script else [sys.executable, "-m", "runway_widgets.cli"]
    return subprocess.Popen([*command, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            encoding="utf-8", env=_env(base_url, key), start_new_session=True)


def finish(proc: subprocess.Popen[str], timeout: float = 30.0) -> Run:
    return Run(*communicate(proc, timeout))


def run(args: Sequence[str], base_url: str | None = None, key: str | None = FAKE_KEY, timeout: float = 30.0,
        script: bool = False) -> Run:
    return finish(start(args, base_url, key, script), timeout)


@pytest.fixture(scope="module", autouse=True)
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """``runway-watch --demo`` takes ~14 s of scripted task life: start it first, let it run
    beside the other tests, and check it in the last test of this module."""
    folder = tmp_path_factory.mktemp("demo")
    proc = start(["--demo", "--save", str(folder)], key=None)
    try:
        yield proc, folder
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


@pytest.fixture
def quick_sim() -> Iterator[Simulator]:
    with Simulator(default_timeline=quick()) as server:
        yield server


# -- exit codes -----------------------------------------------------------------------------------


def test_exit_0_success_one_line_per_change(quick_sim: Simulator) -> None:
    # The task's clock starts only once the subprocess polls (it reads task_not_exist until
    # then): a slow start on a loaded machine once saw the task only at its last moment, two
    # polls for two lines, and the test could not tell a line per change from a line per poll.
    task = str(uuid.uuid4())
    proc = start([task, "--interval", "0.1", "--not-found-grace", "120"], quick_sim.base_url)
    try:
        deadline = time.monotonic() + 60
        while not quick_sim.requests_for(task):
            assert proc.poll() is None and time.monotonic() < deadline, "the CLI never polled"
            time.sleep(0.05)
        quick_sim.add_task(FAKE_KEY, quick(progress_style="jump", queued_for=0.5, run_for=3.0), task_id=task)
        added = time.monotonic()
    finally:
        result = finish(proc)
    assert result.code == 0, result
    assert result.err == ""
    assert "\x1b" not in result.out and "\r" not in result.out
    lines = result.lines
    assert all(line.startswith(task[:8]) for line in lines)
    polls = [r for r in quick_sim.requests_for(task) if r.time >= added]
    assert len(polls) > 10, len(polls)  # 3.5 s of task life at 0.1 s intervals
    assert len(lines) < len(polls) / 2  # a line per change, not per poll
    stages = [line.split("]")[1].split()[1] for line in lines]  # the word after the percentage
    assert stages[-1] == "✓" and "SUCCESS" in lines[-1]
    assert all(a != b for a, b in zip(stages, stages[1:]))  # progress never moves in "jump" style
    assert f"{quick_sim.base_url}/media/{task}.mp4?" in lines[-1]


def test_installed_console_script(quick_sim: Simulator) -> None:
    if not SCRIPT.exists():
        pytest.skip("runway-watch is not installed beside this interpreter")
    task = quick_sim.add_task(FAKE_KEY, quick())
    result = run([task, "--interval", "0.1"], quick_sim.base_url, script=True)
    assert result.code == 0 and "SUCCESS" in result.out and result.err == ""


def test_exit_1_task_failed(quick_sim: Simulator) -> None:
    task = quick_sim.add_task(FAKE_KEY, quick(outcome="FAILURE", fail_reason="The prompt was flagged.",
                                              fail_code="SAFETY.INPUT.TEXT"))
    result = run([task, "--interval", "0.1"], quick_sim.base_url)
    assert result.code == 1
    line = result.sentence()
    assert "The prompt was flagged." in line and "SAFETY.INPUT.TEXT" in line
    assert "FAILURE" in result.lines[-1]


def test_exit_1_cancelled(quick_sim: Simulator) -> None:
    task = quick_sim.add_task(FAKE_KEY, quick(outcome="CANCELLED"))
    result = run([task, "--interval", "0.1"], quick_sim.base_url)
    assert result.code == 1 and "was cancelled" in result.sentence()


BAD_INPUT = [
    ("empty id", [""], "SIM", FAKE_KEY, "empty"),
    ("blank id", ["   "], "SIM", FAKE_KEY, "empty"),
    ("control character", ["abc\x01def"], "SIM", FAKE_KEY, "control characters"),
    ("escape sequence", ["abc\x1b[2Jdef"], "SIM", FAKE_KEY, "control characters"),
    ("inner space", ["abc def"], "SIM", FAKE_KEY, "characters a task id never has"),
    ("no id", [], "SIM", FAKE_KEY, "at least one TASK_ID"),
    ("ftp base URL", ["abc", "--base-url", "ftp://example.com"], "SIM", FAKE_KEY, "must start with https://"),
    ("file base URL from env", ["abc"], "file:///etc/passwd", FAKE_KEY, "must start with https://"),
    ("key over plain http", ["abc", "--base-url", "http://api.example.com"], None, FAKE_KEY, "plain http"),
    ("missing key", ["abc"], "SIM", None, missing_key_help("cli")),
    ("blank key", ["abc"], "SIM", "  ", missing_key_help("cli")),
    ("key with spaces", ["abc"], "SIM", "key with spaces", "spaces or control characters"),
    ("zero timeout", ["abc", "--timeout", "0"], "SIM", FAKE_KEY, "--timeout takes a positive number of seconds, not '0'."),
    ("negative interval", ["abc", "--interval", "-1"], "SIM", FAKE_KEY, "--interval takes a positive number"),
    ("negative give-up", ["abc", "--give-up-after", "-1"], "SIM", FAKE_KEY, "--give-up-after takes a number of seconds"),
    # Error texts name the CLI's options, not the Python parameters behind them.
    ("nan give-up", ["abc", "--give-up-after", "nan"], "SIM", FAKE_KEY, "--give-up-after takes a number of seconds, 0 or more, not 'nan'."),
    ("nan grace", ["abc", "--not-found-grace", "nan"], "SIM", FAKE_KEY, "--not-found-grace takes"),
    # Every option is checked before the demo's simulator starts (out stays empty).
    ("demo with a bad timeout", ["--demo", "--timeout", "-3"], "SIM", FAKE_KEY, "--timeout takes a positive number"),
    ("demo with a bad save", ["--demo", "--save", " "], "SIM", FAKE_KEY, "save folder is empty"),
    ("unknown option", ["abc", "--bogus"], "SIM", FAKE_KEY, "Unrecognized option --bogus; see runway-watch --help."),
    ("demo with ids", ["--demo", "abc"], "SIM", FAKE_KEY, "do not pass task ids"),
]


def test_exit_2_bad_input(quick_sim: Simulator) -> None:
    # Sixteen interpreter start-ups in parallel rather than in a row.
    procs = {}
    try:
        for name, args, env_url, key, _ in BAD_INPUT:
            procs[name] = start(args, quick_sim.base_url if env_url == "SIM" else env_url, key)
        results = {name: finish(proc, timeout=30) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
    for name, _, _, _, words in BAD_INPUT:
        result = results[name]
        # The options' names, never the Python parameters' ("give_up_after must be ...").
        assert not re.search(r"give_up_after|not_found_grace|(?<!-)(timeout|interval) must", result.err), result.err
        assert result.code == 2, (name, result)
        assert words in result.sentence(), (name, result.err)
        assert result.out == "", name
    assert quick_sim.requests == []  # nothing was sent


@pytest.mark.parametrize("option", ["--api-key", "--key", "--token"])
def test_a_key_cannot_be_given_on_the_command_line(option: str) -> None:
    result = run(["abc", option, "sk-should-never-be-here"], key=FAKE_KEY, timeout=15)
    assert result.code == 2 and f"Unrecognized option {option}; see runway-watch --help." in result.sentence()
    assert "sk-should" not in result.err + result.out


def test_help_names_the_environment_variable_not_a_key_option() -> None:
    help_text = run(["--help"], timeout=15)
    assert help_text.code == 0 and "COMETAPI_KEY" in help_text.out
    assert "--api-key" not in help_text.out and "--key" not in help_text.out


def test_exit_3_wrong_key() -> None:
    with Simulator(keys=["the-right-key-not-secret"]) as strict:
        task = strict.add_task("the-right-key-not-secret", quick())
        result = run([task], strict.base_url, timeout=15)
    assert result.code == 3
    assert "rejected the API key" in result.sentence()
    assert FAKE_KEY not in result.out + result.err


def test_exit_3_echoed_key_never_printed(quick_sim: Simulator) -> None:
    quick_sim.inject(Fault("echo_auth"))
    result = run(["abc", "--json"], quick_sim.base_url, timeout=15)
    assert result.code == 3
    assert "[redacted]" in result.sentence()
    assert FAKE_KEY not in result.out + result.err
    assert json.loads(result.out)["outcome"] == "error"


def test_exit_4_timeout(quick_sim: Simulator) -> None:
    task = quick_sim.add_task(FAKE_KEY, quick(run_for=120))
    result = run([task, "--timeout", "0.5", "--interval", "0.1"], quick_sim.base_url, timeout=15)
    assert result.code == 4
    assert "did not finish within 0.5 s" in result.sentence()


def test_exit_5_not_found(quick_sim: Simulator) -> None:
    result = run(["no-such-task", "--not-found-grace", "0.3", "--interval", "0.1"], quick_sim.base_url, timeout=15)
    assert result.code == 5
    assert "was not found after 0.3 s" in result.sentence()
    assert {r.status for r in quick_sim.requests} == {400} and len(quick_sim.requests) >= 2


def test_exit_6_server_always_503(quick_sim: Simulator) -> None:
    quick_sim.inject(Fault("server_error_json", count=10_000))
    result = run(["abc", "--give-up-after", "1"], quick_sim.base_url, timeout=20)
    assert result.code == 6
    line = result.sentence()
    assert "Gave up after" in line and "HTTP 503" in line
    assert any("retrying in" in out for out in result.lines)  # it did retry before giving up
    assert len(quick_sim.requests) >= 2


def test_bad_servers_each_give_one_sentence(closed_port: int) -> None:
    cases = {
        "an HTML error page": (Fault("server_error_html", count=1000), "HTTP 502, an HTML page"),
        "an HTML login page": (Fault("html200", count=1000), "an HTML page instead of a task"),
        "an empty body": (Fault("empty", count=1000), "an empty body"),
        "a JSON list": (Fault("wrong_type", count=1000), "a JSON list"),
        "10 MB of garbage": (Fault("huge", count=1000), "10,485,760 bytes"),
        "a dropped connection": (Fault("drop", count=1000), "closed the connection"),
        "a bad endpoint": (None, "no such endpoint"),
        "nothing at all": (None, "connection refused"),
    }
    sims: list[Simulator] = []
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, (fault, _) in cases.items():
            if name == "nothing at all":
                url = f"http://127.0.0.1:{closed_port}"
            else:
                sims.append(Simulator().start())
                url = sims[-1].base_url + ("/not/the/api" if name == "a bad endpoint" else "")
                if fault is not None:
                    sims[-1].inject(fault)
            procs[name] = start(["some-task-id", "--give-up-after", "0"], url)
        results = {name: finish(proc, timeout=30) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
        for server in sims:
            server.stop()
    for name, (_, words) in cases.items():
        result = results[name]
        expected = 2 if name == "a bad endpoint" else 6  # a 404 HTML page is a usage error: wrong URL
        assert result.code == expected, (name, result)
        assert words in result.sentence(), (name, result.err)


def test_ctrl_c_stops_cleanly(quick_sim: Simulator) -> None:
    task = quick_sim.add_task(FAKE_KEY, quick(run_for=120))
    proc = start([task, "--interval", "0.1"], quick_sim.base_url)
    try:
        deadline = time.monotonic() + 10
        while len(quick_sim.requests_for(task)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        result = finish(proc, timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert result.code == 130
    assert "Traceback" not in result.err and "KeyboardInterrupt" not in result.err
    assert "Interrupted" in result.out and "the tasks go on on the server" in result.out
    polls = len(quick_sim.requests_for(task))
    time.sleep(0.3)
    assert len(quick_sim.requests_for(task)) == polls


# -- output formats ------------------------------------------------------------------------------


def test_json_lines(quick_sim: Simulator) -> None:
    ok = quick_sim.add_task(FAKE_KEY, quick())
    bad = quick_sim.add_task(FAKE_KEY, quick(outcome="FAILURE", fail_reason="Out of credits."))
    result = run([ok, bad, "--json", "--interval", "0.1"], quick_sim.base_url)
    assert result.code == 1  # the first task (in command-line order) that did not succeed decides
    first, second = (json.loads(line) for line in result.lines)
    assert len(result.lines) == 2
    for line in (first, second):
        assert {"task_id", "status", "progress", "result_url", "fail_reason"} <= set(line)
    assert first["task_id"] == ok and first["status"] == "SUCCESS" and first["progress"] == 1.0
    assert first["result_url"].startswith(f"{quick_sim.base_url}/media/{ok}.mp4?") and first["fail_reason"] == ""
    assert second["task_id"] == bad and second["status"] == "FAILURE" and second["result_url"] is None
    assert second["fail_reason"] == "Out of credits." and second["outcome"] == "failed"
    assert "Out of credits." in result.sentence()  # no progress board on a non-TTY stderr


def test_json_line_for_a_task_never_seen(quick_sim: Simulator) -> None:
    result = run(["ghost-task", "--json", "--not-found-grace", "0", "--interval", "0.1"], quick_sim.base_url)
    assert result.code == 5
    (line,) = [json.loads(text) for text in result.lines]
    assert line["task_id"] == "ghost-task" and line["status"] is None and line["result_url"] is None
    assert line["outcome"] == "not found"


def test_several_task_ids(quick_sim: Simulator) -> None:
    tasks = [quick_sim.add_task(FAKE_KEY, quick()) for _ in range(3)]
    result = run([*tasks, tasks[0], "--interval", "0.1"], quick_sim.base_url)  # a repeat is one task
    assert result.code == 0 and result.err == ""
    for task in tasks:
        rows = [line for line in result.lines if line.startswith(task[:8])]
        assert rows and "SUCCESS" in rows[-1]
        assert sum("SUCCESS" in row for row in rows) == 1


def test_first_failing_task_decides_the_exit_code(quick_sim: Simulator) -> None:
    ghost = "ghost-task"
    failed = quick_sim.add_task(FAKE_KEY, quick(outcome="FAILURE"))
    result = run([ghost, failed, "--not-found-grace", "0", "--interval", "0.1"], quick_sim.base_url)
    assert result.code == 5
    assert len(result.err.strip().splitlines()) == 2 and "Traceback" not in result.err


def test_save_to_a_file_path(quick_sim: Simulator, tmp_path: Path) -> None:
    task = quick_sim.add_task(FAKE_KEY, quick())
    target = tmp_path / "videos" / "boat.mp4"
    result = run([task, "--save", str(target), "--interval", "0.1"], quick_sim.base_url)
    assert result.code == 0, result
    assert target.read_bytes() == DEMO_PATH.read_bytes()
    assert os.listdir(target.parent) == ["boat.mp4"]
    assert f"saved to {target}" in result.lines[-1]
    media = [r for r in quick_sim.requests_for(task) if r.path.startswith("/media/")]
    assert len(media) == 1 and not media[0].auth_sent


def test_save_that_fails_exits_6(quick_sim: Simulator, tmp_path: Path) -> None:
    task = quick_sim.add_task(FAKE_KEY, quick())
    quick_sim.inject(Fault("html200", path="/media/"))
    result = run([task, "--save", str(tmp_path), "--interval", "0.1"], quick_sim.base_url)
    assert result.code == 6
    assert "not a video" in result.sentence()
    assert os.listdir(tmp_path) == []


def test_official_feed(quick_sim: Simulator) -> None:
    task = quick_sim.add_task(FAKE_KEY, quick())
    result = run([task, "--official", "--json", "--interval", "0.1"], quick_sim.base_url)
    assert result.code == 0
    assert json.loads(result.out)["status"] == "SUCCEEDED"
    assert {r.path for r in quick_sim.requests} == {f"/runwayml/v1/tasks/{task}"}


# -- in-process -------------------------------------------------------------------------------------


def test_main_in_process(quick_sim: Simulator, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COMETAPI_KEY", FAKE_KEY)
    monkeypatch.setenv("COMETAPI_BASE_URL", quick_sim.base_url)
    task = quick_sim.add_task(FAKE_KEY, quick())
    assert cli.main([task, "--json", "--interval", "0.1"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] == "SUCCESS" and captured.err == ""
    assert cli.main(["  "]) == 2
    assert capsys.readouterr().err == "runway-watch: The task id is empty; pass the id that the create call returned.\n"
    monkeypatch.delenv("COMETAPI_KEY")
    assert cli.main(["abc"]) == 2
    assert capsys.readouterr().err == f"runway-watch: {missing_key_help('cli')}\n"
    with pytest.raises(SystemExit) as info:
        cli.main(["abc", "--api-key", "nope"])
    assert info.value.code == 2


# -- the demo (started by the demo_run fixture before the first test of this module) ------------


def test_demo_end_to_end_with_save(demo_run: tuple[subprocess.Popen[str], Path]) -> None:
    proc, folder = demo_run
    result = finish(proc, timeout=60)
    assert result.code == 0, result
    assert result.err == ""
    assert "Simulator running at http://127.0.0.1:" in result.lines[0]
    assert "\x1b" not in result.out  # not a TTY: plain lines
    assert "SUCCESS" in result.lines[-1] and "saved to" in result.lines[-1]
    (saved,) = folder.iterdir()
    data = saved.read_bytes()
    assert saved.suffix == ".mp4" and data[4:8] == b"ftyp" and data == DEMO_PATH.read_bytes()
    assert str(saved) in result.lines[-1]
    assert len(result.lines) < 40  # one line per change over ~14 s, not one per poll


def test_a_download_cut_short_says_how_much_arrived(quick_sim: Simulator, tmp_path: Path) -> None:
    task = quick_sim.add_task(FAKE_KEY, quick(media_size=3_000_000))
    quick_sim.inject(Fault("reset", path="/media/", count=10))  # half the bytes, then the connection is cut
    result = run([task, "--save", str(tmp_path) + "/"], quick_sim.base_url)
    assert result.code == 6, result
    line = result.sentence()
    assert "The download broke off after " in line and " of 3,000,000 bytes (the connection was cut)" in line, line
    assert "ChunkedEncodingError" not in result.err + result.out and "Error)" not in line
    assert os.listdir(tmp_path) == []

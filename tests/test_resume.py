"""Resume and history: a killed CLI and a restarted kernel pick their tasks up again, and the
history lists every process's tasks, newest first, filtered by status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import runway_widgets as rw
from runway_widgets.journal import Journal, get_journal, journal_path
from runway_widgets.records import TaskRecord, iso_time
from runway_widgets.resuming import resumable
from runway_widgets.simulator import Simulator

from helpers import FAKE_KEY, communicate, quick

pytestmark = pytest.mark.timeout(180)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def journal_record(base_url: str, task: str) -> TaskRecord | None:
    data = Journal(journal_path()).tasks().get((base_url, task))
    return TaskRecord.from_dict(data) if data else None


def write(records: list[dict[str, Any]]) -> None:
    journal = get_journal()
    for record in records:
        assert journal.append(record)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    proc.wait(30)
    return proc.pid


# ---------------------------------------------------------------------------------- history
def test_history_lists_every_process_newest_first_and_filters_by_status(sim: Simulator) -> None:
    now = time.time()
    url = sim.base_url
    rows = [
        ("t-old-success", url, "succeeded", "SUCCESS", "succeeded", now - 5000, now + 3600),
        ("t-failed", url, "failed", "FAILURE", "failed", now - 4000, None),
        ("t-expired", url, "succeeded", "SUCCESS", "succeeded", now - 3000, now - 60),
        ("t-other-gateway", "http://127.0.0.1:9", "cancelled", "CANCELLED", "cancelled", now - 2000, None),
        ("t-running", url, "watching", "IN_PROGRESS", "running", now - 1000, None),
    ]
    write([{"task_id": t, "base_url": b, "outcome": o, "status": s, "state": st, "updated_at": iso_time(when),
            "pid": dead_pid() if o == "watching" else 1, "hostname": "elsewhere",
            **({"result_url": f"https://cdn.example/{t}.mp4?exp={int(exp)}", "result_expires_at": iso_time(exp),
                "saved_path": f"/videos/{t}.mp4"} if exp else {})}
           for t, b, o, s, st, when, exp in rows])
    # A later record of an older task moves it to the front (newest activity first).
    write([{"task_id": "t-failed", "base_url": url, "updated_at": iso_time(now - 500), "fail_reason": "Moderation."}])

    assert [r.task_id for r in rw.history()] == ["t-failed", "t-running", "t-other-gateway", "t-expired",
                                                 "t-old-success"]
    assert [r.task_id for r in rw.history(limit=2)] == ["t-failed", "t-running"]
    assert [r.task_id for r in rw.history(status="succeeded")] == ["t-expired", "t-old-success"]
    assert [r.task_id for r in rw.history(status="SUCCESS")] == ["t-expired", "t-old-success"]
    assert [r.task_id for r in rw.history(status=["failed", "cancelled"])] == ["t-failed", "t-other-gateway"]
    assert [r.task_id for r in rw.history(status="unfinished")] == ["t-running"]
    assert [r.task_id for r in rw.history(base_url=url + "/")] == ["t-failed", "t-running", "t-expired",
                                                                   "t-old-success"]
    by_id = {r.task_id: r for r in rw.history()}
    assert by_id["t-old-success"].url_state() == "fresh" and by_id["t-expired"].url_state() == "expired"
    assert by_id["t-expired"].saved_path == "/videos/t-expired.mp4"
    assert by_id["t-failed"].fail_reason == "Moderation." and by_id["t-failed"].outcome == "failed"
    with pytest.raises(ValueError):
        rw.history(limit=-1)


def test_runway_tasks_history_magic(shell: Any, sim: Simulator, capsys: pytest.CaptureFixture[str]) -> None:
    now = time.time()
    write([{"task_id": "t-a", "base_url": sim.base_url, "outcome": "succeeded", "status": "SUCCESS",
            "state": "succeeded", "updated_at": iso_time(now - 10), "origin": "/nb/one.ipynb",
            "result_url": "https://cdn.example/a.mp4?exp=1", "result_expires_at": iso_time(1)},
           {"task_id": "t-b", "base_url": sim.base_url, "outcome": "failed", "status": "FAILURE", "state": "failed",
            "updated_at": iso_time(now), "fail_reason": "<b>no</b>", "origin": "cli"}])
    shell.run_line_magic("runway_tasks", "--history")
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].startswith("t-b ") and "FAILURE: <b>no</b>" in lines[0] and "[cli]" in lines[0]
    assert lines[1].startswith("t-a ") and "https://cdn.example/a.mp4?exp=1 (expired " in lines[1]
    shell.run_line_magic("runway_tasks", "--history --status succeeded")
    out = capsys.readouterr().out
    assert "t-a " in out and "t-b " not in out
    shell.run_line_magic("runway_tasks", "--history --status cancelled")
    assert "No tasks with status cancelled in the journal" in capsys.readouterr().out
    from runway_widgets.views.history import history_bundle

    html = history_bundle(rw.history())["text/html"]
    assert "&lt;b&gt;no&lt;/b&gt;" in html and "<b>no</b>" not in html and "expired" in html


# ------------------------------------------------------------------------- resume in Python
def test_resume_picks_up_unfinished_tasks_and_skips_live_demo_and_finished(sim: Simulator, tmp_path: Path) -> None:
    url = sim.base_url
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        died, created, live, finished, demo = (sim.add_task(FAKE_KEY, quick(submitted_for=0.2, queued_for=0.2, run_for=1.0)) for _ in range(5))
        host = os.uname().nodename
        save = str(tmp_path / "videos") + os.sep
        write([
            {"task_id": died, "base_url": url, "outcome": "watching", "status": "IN_PROGRESS", "state": "running",
             "pid": dead_pid(), "hostname": host, "save": save, "updated_at": iso_time(time.time() - 30)},
            {"task_id": created, "base_url": url, "outcome": "created", "prompt": "a boat",
             "updated_at": iso_time(time.time() - 20)},
            {"task_id": live, "base_url": url, "outcome": "watching", "pid": sleeper.pid, "hostname": host,
             "updated_at": iso_time(time.time() - 10)},
            {"task_id": finished, "base_url": url, "outcome": "succeeded", "state": "succeeded", "status": "SUCCESS"},
            {"task_id": demo, "base_url": url, "outcome": "watching", "demo": True, "pid": dead_pid(),
             "hostname": host},
        ])
        chosen, skipped = resumable(url)
        assert [r.task_id for r in chosen] == [died, created]
        reasons = {r.task_id: why for r, why in skipped}
        assert reasons[live] == f"watched by a live process (pid {sleeper.pid})"
        assert "demo simulator has gone" in reasons[demo]

        os.environ["COMETAPI_KEY"] = FAKE_KEY
        try:
            watches = rw.resume(url, interval=0.1)
        finally:
            del os.environ["COMETAPI_KEY"]
        assert [w.task_id for w in watches] == [died, created]
        for handle in watches:
            assert handle.wait(20).succeeded
        assert watches[0].saved_path == save + f"{died}.mp4"  # where its first watch was asked to save
        assert watches[1].saved_path is None
        assert journal_record(url, died).outcome == "succeeded"  # type: ignore[union-attr]
        assert journal_record(url, created).prompt == "a boat"  # type: ignore[union-attr]
        assert rw.resume(url, api_key=FAKE_KEY) == []  # nothing left but the live one
        [again] = rw.resume(url, api_key=FAKE_KEY, include_live=True, interval=0.1)
        assert again.task_id == live and again.wait(20).succeeded
    finally:
        sleeper.kill()
        sleeper.wait(10)


def test_resume_in_the_shell_shows_a_board(shell: Any, sim: Simulator, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_line_magic("runway_watch", "--resume")
    assert "Nothing to resume" in capsys.readouterr().out
    task = sim.add_task(FAKE_KEY, quick(submitted_for=0.2, queued_for=0.2, run_for=1.0))
    write([{"task_id": task, "base_url": sim.base_url, "outcome": "watching", "pid": dead_pid(),
            "hostname": os.uname().nodename, "save": str(tmp_path) + os.sep}])
    shell.user_ns["__vsc_ipynb_file__"] = "/home/u/boats.ipynb"  # what VS Code's kernel sets
    try:
        handle = shell.run_line_magic("runway_watch", "--resume --interval 0.1")
    finally:
        del shell.user_ns["__vsc_ipynb_file__"]
    assert handle is None or handle.done()  # terminal IPython: the board blocks until done
    out = capsys.readouterr().out
    assert task[:8] in out and "SUCCESS" in out
    assert (tmp_path / f"{task}.mp4").stat().st_size > 0
    record = journal_record(sim.base_url, task)
    assert record is not None and record.outcome == "succeeded" and record.origin == "/home/u/boats.ipynb"
    other = sim.add_task(FAKE_KEY, quick(submitted_for=0.2, queued_for=0.2, run_for=1.0))
    shell.run_line_magic("runway_watch", f"{other} --interval 0.1")
    assert journal_record(sim.base_url, other).origin == "ipython"  # type: ignore[union-attr]


# ---------------------------------------------------------------------- the CLI, killed
def cli(args: list[str], base_url: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMETAPI_")}
    env.update(COMETAPI_KEY=FAKE_KEY, COMETAPI_BASE_URL=base_url, PYTHONIOENCODING="utf-8")
    return subprocess.Popen([sys.executable, "-m", "runway_widgets.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8", env=env, start_new_session=True)


def test_cli_killed_with_sigterm_then_resume_json_finishes_it(sim: Simulator, tmp_path: Path) -> None:
    task = sim.add_task(FAKE_KEY, quick(submitted_for=0.2, queued_for=0.2, run_for=6.0))
    videos = tmp_path / "videos"
    proc = cli([task, "--save", f"{videos}/", "--interval", "0.2"], sim.base_url)
    try:
        record = wait_for(lambda: (r := journal_record(sim.base_url, task)) and r.status == "IN_PROGRESS" and r,
                          30, "the CLI to journal IN_PROGRESS")
        assert record.origin == "cli" and record.pid == proc.pid and record.outcome == "watching"
        os.killpg(proc.pid, signal.SIGTERM)  # its own process group, by pid
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode != 0
    assert not list(videos.glob("*.mp4"))  # killed before the task finished
    polls_before = len(sim.requests_for(task))

    code, out, err = communicate(cli(["--resume", "--json", "--base-url", sim.base_url, "--interval", "0.2"],
                                sim.base_url))
    assert code == 0, err
    [line] = [json.loads(x) for x in out.splitlines()]
    assert (line["task_id"], line["status"], line["outcome"]) == (task, "SUCCESS", "succeeded")
    assert line["saved_path"] == f"{videos}/{task}.mp4" and Path(line["saved_path"]).stat().st_size > 0
    assert f"Resuming 1 unfinished task of {sim.base_url.split('//')[1]}" in err
    assert len(sim.requests_for(task)) > polls_before
    final = journal_record(sim.base_url, task)
    assert final is not None and final.outcome == "succeeded" and final.origin == "cli"

    code, out, err = communicate(cli(["--resume", "--json"], sim.base_url))  # nothing left to do
    assert (code, out) == (0, "") and "Nothing to resume" in err
    code, _, err = communicate(cli(["--resume", task], sim.base_url))
    assert code == 2 and "do not pass task ids" in err
    code, _, err = communicate(cli([task, "--include-live"], sim.base_url))
    assert code == 2 and "--include-live only goes with --resume" in err


# ------------------------------------------------------------------- a kernel, restarted
class Kernel:
    """A jupyter_client kernel of this venv; ``run`` returns a cell's outputs (display updates applied)."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        from jupyter_client import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env, cwd=str(cwd))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(60)

    @property
    def pid(self) -> int:
        return self.km.provisioner.process.pid  # type: ignore[union-attr]

    def run(self, code: str, timeout: float = 60) -> list[dict[str, Any]]:
        outputs: list[dict[str, Any]] = []
        displays: dict[str, dict[str, Any]] = {}

        def hook(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind in ("stream", "display_data", "execute_result", "error"):
                outputs.append({"type": kind, **content})
                display_id = content.get("transient", {}).get("display_id")
                if display_id:
                    displays[display_id] = outputs[-1]
            elif kind == "update_display_data":
                target = displays.get(content.get("transient", {}).get("display_id"))
                if target is not None:
                    target["data"] = content["data"]

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        assert reply["content"]["status"] == "ok", (reply["content"], outputs)
        return outputs

    def restart(self, now: bool) -> None:
        self.km.restart_kernel(now=now)  # now: the old process is killed; else asked to shut down
        self.kc.stop_channels()
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(60)

    def close(self) -> None:
        from kernel_envs import _kill_kernel

        pid = self.pid
        try:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)
        finally:
            _kill_kernel(pid)


def text_of(outputs: list[dict[str, Any]]) -> str:
    parts = []
    for out in outputs:
        parts.append(out.get("text", ""))
        parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


@pytest.mark.kernel
@pytest.mark.parametrize("now", [True, False], ids=["killed", "graceful"])
def test_kernel_restart_mid_watch_then_magic_resume_finishes_and_saves(sim: Simulator, tmp_path: Path,
                                                                        now: bool) -> None:
    from kernel_envs import _DROP

    task = sim.add_task(FAKE_KEY, quick(submitted_for=0.2, queued_for=0.2, run_for=8.0))
    work = tmp_path / "work"
    (work / "ipython").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in _DROP}
    env.update(PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""), COMETAPI_KEY=FAKE_KEY,
               COMETAPI_BASE_URL=sim.base_url, IPYTHONDIR=str(work / "ipython"), JPY_SESSION_NAME=str(work / "nb.ipynb"),
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    kernel = Kernel(env, work)
    try:
        first_pid = kernel.pid
        kernel.run("%load_ext runway_widgets")
        kernel.run(f"h = %runway_watch {task} --save videos/ --interval 0.2")
        record = wait_for(lambda: (r := journal_record(sim.base_url, task)) and r.status == "IN_PROGRESS" and r,
                          30, "the kernel to journal IN_PROGRESS")
        assert record.origin == str(work / "nb.ipynb") and record.pid == first_pid
        assert record.save == str(work / "videos") + os.sep
        kernel.restart(now)
        assert kernel.pid != first_pid
        assert not (work / "videos").exists() or not list((work / "videos").glob("*.mp4"))

        kernel.run("%load_ext runway_widgets")
        outputs = kernel.run("%runway_watch --resume --wait --interval 0.2", timeout=60)
        shown = text_of(outputs)
        assert f"{task}: SUCCESS: done in" in shown, shown
        assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) or "text/html" in o.get("data", {})
                   for o in outputs if o["type"] == "display_data"), outputs
        saved = work / "videos" / f"{task}.mp4"
        assert saved.stat().st_size > 0
        final = journal_record(sim.base_url, task)
        assert final is not None and final.outcome == "succeeded" and final.saved_path == str(saved)
        assert final.pid == kernel.pid
        again = text_of(kernel.run("%runway_watch --resume"))
        assert "Nothing to resume" in again
        history = text_of(kernel.run("%runway_tasks --history"))
        assert task in history and f"saved to {saved}" in history
    finally:
        kernel.close()


def test_a_demo_task_resumes_only_while_its_simulator_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from runway_widgets.demo import create_demo_tasks, stop_demo

    monkeypatch.delenv("COMETAPI_KEY", raising=False)  # the demo needs none
    try:
        client, [task] = create_demo_tasks(1)
        assert journal_record(client.base_url, task).demo  # type: ignore[union-attr]  # from the create call
        first = rw.watch(task, client=client, interval=0.2)
        first.stop("Stopped with %runway_stop.")
        assert journal_record(client.base_url, task).demo  # type: ignore[union-attr]
        [again] = rw.resume(client.base_url, interval=0.2)
        assert again.task_id == task and again.client is client
        again.stop()
        base_url = client.base_url
    finally:
        stop_demo()
    chosen, skipped = resumable(base_url)
    assert chosen == [] and "demo simulator has gone" in skipped[0][1]

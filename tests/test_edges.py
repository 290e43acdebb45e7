"""Rough edges a new user hits, each against the real simulator on a loopback port."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers import FAKE_KEY

from runway_widgets import Client, GaveUpError, Outcome, PacingConfig, RequestBudget, TaskFailedError, watch
from runway_widgets.scheduler import Scheduler
from runway_widgets.simulator import Simulator, Timeline
from runway_widgets.watch import Watch, WatchSettings

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_a_failed_task_reports_the_progress_it_had_not_100(sim: Simulator, client: Client) -> None:
    # The gateway reads 100 % on every finished task, a failed one too.
    task = sim.add_task(FAKE_KEY, Timeline(invisible_for=0, submitted_for=0, queued_for=0, run_for=2.0,
                                                     fail_at=1.0, outcome="FAILURE", fail_reason="moderation"))
    handle = watch(task, client=client, interval=0.1, save=False)
    with pytest.raises(TaskFailedError):
        handle.wait(timeout=15)
    final = handle.update()
    assert final.outcome is Outcome.FAILED and final.snapshot is not None and final.snapshot.percent == 100
    assert final.progress is not None and 0.2 <= final.progress <= 0.8, final.progress



@pytest.mark.parametrize("base_url", ["dead-port", "https://nonexistent.invalid"])
def test_a_host_that_never_answered_fails_within_15_s_with_one_sentence(base_url: str, closed_port: int) -> None:
    # (.invalid never resolves -- RFC 6761 -- and the resolver says so at once, offline too.)
    url = f"http://127.0.0.1:{closed_port}" if base_url == "dead-port" else base_url
    host = url.split("//")[1]
    started = time.monotonic()
    handle = watch("a-task-id-of-some-length", api_key=FAKE_KEY, base_url=url, save=False)
    with pytest.raises(GaveUpError) as caught:
        handle.wait(timeout=40)
    took = time.monotonic() - started
    assert 13.0 <= took <= 19.0, took
    message = str(caught.value)
    assert message.startswith(f"Could not reach {host} (")
    assert message.endswith("and it has not answered once in 15 s: check the base URL and the network.")
    assert len(message.split(": ")) == 2 and message.count(", and ") == 1  # one sentence, no chain of causes


def test_a_gateway_that_answered_before_keeps_the_long_give_up() -> None:
    sim = Simulator(default_timeline=Timeline(queued_for=60)).start()
    sched = Scheduler(RequestBudget(rate=100, burst=10))
    try:
        task = sim.add_task(FAKE_KEY)
        own = Client(FAKE_KEY, sim.base_url)
        settings = WatchSettings(timeout=60, give_up_after=120, unreached_give_up=1.0,
                                 pacing=PacingConfig(fixed_interval=0.2, min_interval=0.1, backoff_base=0.2, backoff_cap=0.5))
        handle = Watch(task, own, settings, clock=sched.clock, on_end=sched.remove)
        sched.add(handle)
        deadline = time.monotonic() + 10
        while handle.snapshot is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert handle.snapshot is not None  # it answered
        sim.stop()  # now it refuses connections
        time.sleep(3.0)  # three times the short give-up
        assert handle.outcome is Outcome.WATCHING and "retrying" in handle.update().note
        handle.stop()
        own.close()
    finally:
        sched.shutdown()
        sim.stop()


def test_the_cometapi_notebook_stops_run_all_at_the_key_cell_with_one_sentence(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.delenv("COMETAPI_KEY", raising=False)
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    nb = nbformat.read(NOTEBOOKS / "02_cometapi.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError):
        client.execute()  # like "Run All": the first error stops the run
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    errors = [(i, out) for i, cell in enumerate(code) for out in cell.get("outputs", []) if out.output_type == "error"]
    assert len(errors) == 1, errors
    index, error = errors[0]
    assert "rw.get_client()" in code[index].source  # the key cell, not the create call after it
    assert error.traceback == [f"ConfigError: {error.evalue}"]  # one line, no traceback
    assert error.evalue.startswith("No API key: set the COMETAPI_KEY environment variable")
    assert all(not cell.get("outputs") for cell in code[index + 1:])  # nothing after it ran


def test_interrupting_a_waiting_cell_in_a_real_kernel_shows_one_line(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_client.manager import start_new_kernel

    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.delenv("COMETAPI_KEY", raising=False)
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        kc.execute_interactive("%load_ext runway_widgets", timeout=60)
        msg_id = kc.execute("%runway_watch --demo --wait")
        errors: list[dict] = []
        deadline = time.monotonic() + 60
        interrupted = False
        while time.monotonic() < deadline:
            try:
                msg = kc.get_iopub_msg(timeout=1)
            except Exception:  # queue.Empty: nothing this second
                msg = None
            if not interrupted and time.monotonic() > deadline - 57:  # the card is up and waiting
                km.interrupt_kernel()
                interrupted = True
            if msg is None or msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "error":
                errors.append(msg["content"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        assert len(errors) == 1, errors
        assert errors[0]["ename"] == "WatchInterrupted"  # a KeyboardInterrupt: Run All stops here
        assert errors[0]["traceback"] == ["Interrupted: stopped watching 1 task (the server goes on with it)."]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)

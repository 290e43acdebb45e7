"""Rough edges a new user hits, each against the real simulator on a loopback port."""

from __future__ import annotations

import pytest
from conftest import FAKE_KEY

from runway_widgets import Client, Outcome, TaskFailedError, watch
from runway_widgets.simulator import Simulator, Timeline


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


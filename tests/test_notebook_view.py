"""NotebookView's outputs when two watches of one board report at the same time.

A real IPython shell with a capturing display publisher: what the view publishes is what a
kernel would send to the page.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

from runway_widgets.notebook import NotebookView
from runway_widgets.snapshot import parse_task
from runway_widgets.watch import Outcome, WatchUpdate


@pytest.fixture
def published() -> Iterator[list[dict[str, Any]]]:
    shell = InteractiveShell.instance()
    before = shell.display_pub
    shell.display_pub = CapturingDisplayPublisher()
    try:
        yield shell.display_pub.outputs
    finally:
        shell.display_pub = before


def update(task_id: str, status: str, progress: str, outcome: Outcome = Outcome.WATCHING) -> WatchUpdate:
    snap = parse_task({"task_id": task_id, "status": status, "progress": progress, "action": "TEXT_TO_VIDEO"})
    return WatchUpdate(task_id, outcome, snap, elapsed=5.0, polls=2)


class StalledRecord(NotebookView):
    """A view whose next record is built slowly (its thread is descheduled there)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stall = threading.Event()
        self.building = threading.Event()
        self.release = threading.Event()

    def record_bundle(self) -> dict[str, Any]:
        if self.stall.is_set():
            self.stall.clear()
            self.building.set()
            self.release.wait(5.0)
        return super().record_bundle()


def test_a_record_written_while_the_board_finishes_never_lands_after_the_final_card(
        published: list[dict[str, Any]]) -> None:
    # Seen in JupyterLab (the reopen browser test, under load): a board of two, one task
    # failed on one poll thread while the other finished on another.  The first thread
    # decided a record was due and wrote it after the second had emptied the record and
    # put up the final card, so the page kept showing "1/2 done, 1 failed ... connecting"
    # under the final board, and the saved notebook would too.
    view = StalledRecord(["task-a", "task-b"], show_video=False)
    view.show()
    record_id = published[-1]["transient"]["display_id"]
    view.stall.set()
    failing = threading.Thread(target=view._apply, args=(update("task-b", "FAILURE", "100%", Outcome.FAILED),))
    failing.start()
    assert view.building.wait(5.0)  # the failure's thread is building a record (task-a still running)
    threading.Timer(0.3, view.release.set).start()  # it goes on a moment later, whatever happens here
    view._apply(update("task-a", "SUCCESS", "100%", Outcome.SUCCEEDED))  # the last watch ends: final card
    failing.join(5.0)
    assert not failing.is_alive()
    to_record = [out for out in published if out["transient"] and out["transient"]["display_id"] == record_id]
    assert to_record[-1]["data"] == {}, "a record was written after the final card emptied it"
    cards = [out for out in published if out["update"] and out["data"] and "rw-record" not in str(out["data"])]
    assert "SUCCESS" in cards[-1]["data"]["text/plain"] and "FAILURE" in cards[-1]["data"]["text/plain"]

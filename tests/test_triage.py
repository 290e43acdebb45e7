"""Which due poll goes first when tokens are scarce (triage.py), pure: no clock, no threads."""

from __future__ import annotations

from runway_widgets.pacer import PacerState, PacingConfig, observe
from runway_widgets.snapshot import parse_progress, state_from_status
from runway_widgets.triage import AGE, FINISH, OPEN, ROUTINE, DueQueue, urgency

from test_policy import Snap, locked_gateway


def seen(*polls: tuple[float, str, str]) -> PacerState:
    pacer = PacerState()
    for t, status, progress in polls:
        pacer = observe(pacer, Snap(state_from_status(status), parse_progress(progress), status), PacingConfig(), t, t)
    return pacer


def test_urgency_ranks_a_predicted_finish_over_the_unpredictable_over_waiting() -> None:
    assert urgency(PacerState(), None, 0.0) == OPEN  # not seen yet
    assert urgency(seen((0.0, "QUEUED", "0%")), None, 10.0) == ROUTINE
    assert urgency(seen((0.0, "IN_PROGRESS", "0%")), None, 10.0) == OPEN  # no progress: may end any time
    moving = seen((0.0, "IN_PROGRESS", "10%"), (10.0, "IN_PROGRESS", "20%"))  # finish ~ at 90 s
    assert urgency(moving, None, 30.0) == ROUTINE  # far from the finish
    assert urgency(moving, None, 89.0) == FINISH


def test_urgency_with_known_ticks_is_what_the_poll_will_show() -> None:
    # Ticks every 15 s at phase 4; a finish predicted at ~94 s shows at the tick of 94 s.
    cadence = locked_gateway(15.0, 4.0).cadence
    moving = seen((4.5, "IN_PROGRESS", "10%"), (19.5, "IN_PROGRESS", "25%"))
    assert urgency(moving, cadence, 93.0) == ROUTINE  # shows the tick of 79 s
    assert urgency(moving, cadence, 94.5) == FINISH


def test_the_queue_serves_only_due_polls_and_the_most_urgent_first() -> None:
    queue: DueQueue[str] = DueQueue()
    queue.push(1.0, "routine", ROUTINE)
    queue.push(2.0, "finish", FINISH)
    queue.push(50.0, "later", FINISH)
    assert queue.peek(0.5) is None and queue.next_due() == 1.0
    assert queue.pop(1.5) == (1.0, "routine")  # the only one due yet
    queue.push(1.5, "routine 2", ROUTINE)
    assert queue.pop(2.0) == (2.0, "finish")  # due later, but more urgent
    assert queue.pop(2.0) == (1.5, "routine 2")
    assert queue.next_due() == 50.0 and len(queue) == 1
    assert queue.remove("later") and len(queue) == 0 and queue.next_due() == float("inf")


def test_a_routine_poll_is_overtaken_for_a_bounded_time_only() -> None:
    # Nobody starves: a routine poll that has waited 2 * AGE goes before any urgent poll
    # that became due after it was already that late.
    queue: DueQueue[str] = DueQueue()
    queue.push(0.0, "routine", ROUTINE)
    queue.push(2 * AGE - 1.0, "urgent early", FINISH)
    queue.push(2 * AGE + 1.0, "urgent late", FINISH)
    now = 2 * AGE + 1.0
    assert [queue.pop(now)[1] for _ in range(3)] == ["urgent early", "routine", "urgent late"]  # type: ignore[index]

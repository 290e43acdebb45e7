"""How a watch ends: the outcome, and the one-sentence error that says why.

Pure (no I/O, no clock, no lock): :class:`~runway_widgets.watch.Watch` decides *when* a
watch ends; the wording of each ending lives here, so every one reads as a whole sentence
that names the task and what to do.
"""

from __future__ import annotations

from .errors import GaveUpError, RunwayWidgetsError, TaskFailedError, TaskNotFoundError, WatchTimeoutError
from .snapshot import TaskSnapshot, TaskState
from .updates import Outcome

__all__ = ["Ending", "terminal_ending", "not_found", "gave_up", "timed_out"]

#: An ending: the outcome, why (None for a success) and the card's note.
Ending = tuple[Outcome, RunwayWidgetsError | None, str]


def terminal_ending(task_id: str, snapshot: TaskSnapshot) -> Ending:
    """The ending a final snapshot means: a success, or a failure or cancellation with its reason and code."""
    if snapshot.state is TaskState.SUCCEEDED:
        note = "" if snapshot.result_url or not snapshot.rejected_url else "the server sent an unsafe result URL; it was not used"
        return Outcome.SUCCEEDED, None, note
    outcome = Outcome.CANCELLED if snapshot.state is TaskState.CANCELLED else Outcome.FAILED
    verb = "was cancelled" if outcome is Outcome.CANCELLED else "failed"
    reason = f": {snapshot.fail_reason}" if snapshot.fail_reason else ""
    code = f" [{snapshot.fail_code}]" if snapshot.fail_code else ""
    message = f"Task {task_id} {verb}{reason}{code}"
    if not message.endswith((".", "!", "?")):
        message += "."  # one whole sentence, like every other error message
    return outcome, TaskFailedError(message, snapshot), ""


def not_found(task_id: str, grace: float, error: TaskNotFoundError) -> TaskNotFoundError:
    """The task never appeared within ``grace`` seconds."""
    return TaskNotFoundError(f"Task {task_id} was not found after {grace:g} s; "
                             "check the id and that it was created with this API key.", error.status_code)


def gave_up(error: RunwayWidgetsError, seconds: float, attempts: int, unreached: bool) -> GaveUpError:
    """Transient errors lasted too long: ``attempts`` failures over ``seconds``."""
    if unreached:  # most likely a typo in the base URL, or no network: say so, once
        return GaveUpError(f"{str(error).rstrip('.')}, and it has not answered once in {seconds:.0f} s: "
                           "check the base URL and the network.", error)
    return GaveUpError(f"Gave up after {attempts} failed attempt{'' if attempts == 1 else 's'} "
                       f"in {seconds:.0f} s: {error}", error)


def timed_out(task_id: str, timeout: float, snapshot: TaskSnapshot | None) -> WatchTimeoutError:
    """The watch's timeout passed; the last status seen, if any, is named."""
    last = f" (last seen: {snapshot.status}{'' if snapshot.percent is None else f' {snapshot.percent}%'})" if snapshot else ""
    return WatchTimeoutError(f"Task {task_id} did not finish within {timeout:g} s{last}.")

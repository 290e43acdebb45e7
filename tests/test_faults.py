"""The fault matrix: every misbehaviour the simulator can inject, and what each front end does.

For each fault three consumers are checked against a real simulator over loopback:

* the CLI (a real ``runway-watch`` subprocess): exit code, one stderr sentence, no traceback,
  and a "retrying in N s" line on stdout while it retries;
* the Python API (``watch().wait()``): the result or the typed error, and the
  ``WatchUpdate.note`` that says "retrying in N s: <why>" while it retries;
* the notebook card (a real ``TaskCard`` subscribed with ``watch.on_update(card.render)``):
  its bar style, status text and result area at the end, and the retry note on the way.

A fault comes as a *burst* (two answers in a row, then the server behaves: everyone keeps
going and finishes) and *persistent* (every answer: the watch gives up after
``give_up_after`` with "Gave up after N failed attempts in S s: <last error>", exit 6).

Runtime: every CLI run is started at once by the module fixture ``cli`` (each against its own
simulator, since faults are per server) and collected by the test of its row, so the slow
real-time ones (the 20 s outage, the 10 s invisible task, the 16 s stall past the CLI's 15 s
read timeout) run beside the in-process tests instead of after them.  In-process watches use a
scheduler of their own, fixed 0.1 s polls and sub-second backoff.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import html
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import pytest

from runway_widgets import (
    Client,
    GaveUpError,
    Outcome,
    PacingConfig,
    ProtocolError,
    RateLimitedError,
    RequestBudget,
    RunwayWidgetsError,
    ServerError,
    TaskNotFoundError,
    TransportError,
    Watch,
    WatchTimeoutError,
    WatchUpdate,
    watch,
)
from runway_widgets.errors import DownloadError
from runway_widgets.scheduler import Scheduler
from runway_widgets.simulator import Fault, Simulator, Timeline
from runway_widgets.snapshot import TaskSnapshot
from runway_widgets.views.widget import TaskCard
from helpers import FAKE_KEY, Run, communicate, quick

# In-process pacing: polls every 0.1 s (interval=), error backoff 0.2-0.6 s.
PACE = PacingConfig(min_interval=0.05, backoff_base=0.4, backoff_cap=0.6)
RETRY = re.compile(r"retrying in \d+ s: ")


def retry_lines(run: Run) -> list[str]:
    """The lines of a CLI run that say it is retrying."""
    return [line for line in run.lines if RETRY.search(line)]
PERSISTENT = 10_000  # "count" of a fault that never stops
CLI_GIVE_UP = 4.0  # --give-up-after of the persistent CLI runs (room for a retry on a loaded machine)
OUTAGE = 20.0  # seconds the server is really down


def running(seconds: float = 600.0) -> Timeline:
    return Timeline(invisible_for=0, submitted_for=0, queued_for=0, run_for=seconds)


def http_date(seconds_from_now: float) -> str:
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds_from_now)
    return email.utils.format_datetime(when, usegmt=True)


def start_on_port(port: int, **kwargs: Any) -> Simulator:
    """A new simulator on a port an old one just released (bind retried briefly)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return Simulator(port=port, **kwargs).start()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- the rows of the matrix -----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One transient fault: how to inject it, the words it leaves in notes and sentences."""

    name: str
    fault: Callable[[int], Fault]  # count -> fault (in-process: read timeout 1 s)
    words: str
    error: type[RunwayWidgetsError]
    min_retry: float = 0.0  # Retry-After: the first retry waits at least this long
    give_up: float = 0.8  # give_up_after of the persistent in-process run (> one failed attempt)
    cli_fault: Callable[[int], Fault] | None = None  # when the CLI needs another variant
    cli_persistent: bool = True


def _server_errors() -> list[Case]:
    cases = []
    for status in (500, 502, 503, 504):
        cases.append(Case(f"{status} JSON", lambda n, s=status: Fault("server_error_json", count=n, status=s),
                          f"HTTP {status}, a JSON object", ServerError))
        cases.append(Case(f"{status} HTML", lambda n, s=status: Fault("server_error_html", count=n, status=s),
                          f"HTTP {status}, an HTML page", ServerError))
    return cases


CASES = [
    Case("429 Retry-After seconds", lambda n: Fault("rate_limit", count=n, retry_after="1"),
         "rate limiting requests (HTTP 429)", RateLimitedError, min_retry=1.0),
    Case("429 Retry-After HTTP date", lambda n: Fault("rate_limit", count=n, retry_after=http_date(2)),
         "rate limiting requests (HTTP 429)", RateLimitedError, min_retry=0.8),
    *_server_errors(),
    Case("connection reset mid-answer", lambda n: Fault("reset", count=n), "broke mid-answer", TransportError),
    # The CLI has the real 15 s read timeout: its stall lasts 16 s, once (it runs in the background).
    Case("stall past the read timeout", lambda n: Fault("slow", count=n, delay=2.5), "did not answer within",
         TransportError, give_up=1.5, cli_fault=lambda n: Fault("slow", count=1, delay=16.0), cli_persistent=False),
    Case("malformed JSON", lambda n: Fault("malformed", count=n), "a body that is not JSON", ProtocolError),
    Case("JSON list", lambda n: Fault("wrong_type", count=n), "a JSON list", ProtocolError),
    Case("JSON string", lambda n: Fault("wrong_type", count=n, body=b'"SUCCESS"'), "a JSON string", ProtocolError),
    Case("JSON number", lambda n: Fault("wrong_type", count=n, body=b"42"), "a JSON number", ProtocolError),
    Case("10 MB body", lambda n: Fault("huge", count=n), "10,485,760 bytes", ProtocolError),
]


# -- the CLI, as real subprocesses started together ---------------------------------------------




@dataclass
class CliRun:
    sim: Simulator
    task: str
    proc: subprocess.Popen[str]
    started: float = field(default_factory=time.monotonic)
    _result: Run | None = None
    ended: float | None = None

    def result(self, timeout: float = 120.0) -> Run:
        if self._result is None:
            self._result = Run(*communicate(self.proc, timeout))
            self.ended = time.monotonic()
        return self._result


def _cli_env(base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMETAPI_", "HTTP_PROXY", "HTTPS_PROXY",
                                                                     "http_proxy", "https_proxy", "ALL_PROXY"))}
    env.update(PYTHONIOENCODING="utf-8", COMETAPI_KEY=FAKE_KEY, COMETAPI_BASE_URL=base_url)
    return env


def _start_cli(sim: Simulator, task: str, args: Sequence[str]) -> CliRun:
    proc = subprocess.Popen([sys.executable, "-m", "runway_widgets.cli", task, "--interval", "0.2", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                            env=_cli_env(sim.base_url), start_new_session=True)
    return CliRun(sim, task, proc)


class Outage:
    """Stops ``sim`` once ``ready()`` and starts a new one on the same port ``down_for`` s later.

    The simulator cannot restart, so the task is re-added to the new one under the same id:
    what the client polls survives, as it would on a gateway restart.
    """

    def __init__(self, sim: Simulator, task: str, after: Timeline, ready: Callable[[], bool],
                 down_for: float = OUTAGE) -> None:
        self.sim, self.task, self.after, self.ready, self.down_for = sim, task, after, ready, down_for
        self.port = sim.port
        self.new: Simulator | None = None
        self.down_at: float | None = None
        self.up_at: float | None = None
        self.error: BaseException | None = None
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-outage", daemon=True)

    def start(self) -> Outage:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            deadline = time.monotonic() + 60
            while not self.ready():
                if time.monotonic() > deadline or self._cancel.wait(0.05):
                    return
            self.sim.stop()
            self.down_at = time.monotonic()
            if self._cancel.wait(self.down_for):
                return
            self.new = start_on_port(self.port)
            self.new.add_task(FAKE_KEY, self.after, task_id=self.task)
            self.up_at = time.monotonic()
        except BaseException as exc:  # reported by the test that checks the outage
            self.error = exc

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the outage never ended"
        assert self.error is None, self.error

    def close(self) -> None:
        self._cancel.set()
        self._thread.join(10)
        self.sim.stop()
        if self.new is not None:
            self.new.stop()


@dataclass
class CliBatch:
    runs: dict[str, CliRun]
    outage: Outage


@pytest.fixture(scope="module", autouse=True)
def cli() -> Iterator[CliBatch]:
    """Start every CLI run of the matrix at once; each test collects its own."""
    runs: dict[str, CliRun] = {}
    outage: Outage | None = None

    def add(name: str, timeline: Timeline, args: Sequence[str] = (), faults: Sequence[Fault] = ()) -> CliRun:
        sim = Simulator().start()
        task = sim.add_task(FAKE_KEY, timeline)
        for fault in faults:
            sim.inject(fault)
        runs[name] = _start_cli(sim, task, args)
        return runs[name]

    try:
        for case in CASES:
            make = case.cli_fault or case.fault
            add(f"{case.name} burst", quick(run_for=0.6), faults=[make(2 if case.cli_fault is None else 1)])
            if case.cli_persistent:
                add(f"{case.name} persistent", quick(run_for=0.6), ["--give-up-after", str(CLI_GIVE_UP)], [make(PERSISTENT)])
        # The real thing: invisible for 10 s (default grace 30 s), then it runs and succeeds.
        add("invisible 10 s", quick(run_for=0.6, invisible_for=10.0))
        add("never visible", Timeline(invisible_for=math.inf), ["--not-found-grace", "1"])
        add("status goes backwards", quick(run_for=0.6, after_terminal="IN_PROGRESS"), ["--json"])
        # Long phases: with three dozen interpreters starting at once, a CLI's first poll
        # may come seconds after its task was created.
        add("unknown status", quick(run_for=0.6, extra_status="WEIRD_NEW_STATE", queued_for=12.0))
        add("unknown status forever", quick(run_for=0.6, outcome="EXPIRED"), ["--timeout", "2"])
        add("hostile progress values", quick(progress_style="values", run_for=10.0, progress_values=("abc", "150%", -5, None, 0.45)))
        down = add("server down 20 s", running(), ["--give-up-after", "90"])
        outage = Outage(down.sim, down.task, running(1.0),
                        ready=lambda: sum(r.status == 200 for r in down.sim.requests_for(down.task)) >= 2).start()
        yield CliBatch(runs, outage)
    finally:
        if outage is not None:
            outage.close()
        for run in runs.values():
            if run.proc.poll() is None:
                os.killpg(run.proc.pid, signal.SIGKILL)
                run.proc.communicate()
            run.sim.stop()


def check_cli_recovered(run: Run, words: str) -> None:
    assert run.code == 0, run
    assert run.err == "" and "Traceback" not in run.out, run
    assert "waiting for the task to appear" not in run.out  # it was there all along: an error is not absence
    retries = retry_lines(run)
    assert retries and any(words in line for line in retries), run.out
    assert "✓ SUCCESS" in run.lines[-1], run.out


def check_cli_gave_up(run: Run, words: str) -> None:
    assert run.code == 6, run
    line = run.sentence()
    assert line.startswith("runway-watch: Gave up after ") and words in line, line
    assert retry_lines(run), run.out  # it retried (and said so) before giving up
    assert "✗ gave up" in run.lines[-1], run.out


# -- the Python API and the card, in process ----------------------------------------------------


@dataclass
class Seen:
    """One in-process watch with a live card subscribed to it."""

    handle: Watch
    card: TaskCard
    updates: list[WatchUpdate]
    statuses: list[str]  # every value the card's status line took
    bars: list[float]  # every value the card's progress bar took
    result: TaskSnapshot | None = None
    error: RunwayWidgetsError | None = None

    def finish(self, timeout: float = 30.0) -> Seen:
        try:
            self.result = self.handle.wait(timeout)
        except RunwayWidgetsError as exc:
            self.error = exc
        return self

    def notes(self) -> list[str]:
        return [u.note for u in self.updates if RETRY.match(u.note)]


class Rig:
    """Simulators, clients and schedulers of one test, all closed at the end."""

    def __init__(self) -> None:
        self._closers: list[Callable[[], None]] = []

    def sim(self) -> Simulator:
        server = Simulator().start()
        self._closers.append(server.stop)
        return server

    def watch(self, sim: Simulator, task: str, *, read_timeout: float = 1.0, **kwargs: Any) -> Seen:
        client = Client(FAKE_KEY, sim.base_url, read_timeout=read_timeout, connect_timeout=2.0, deadline=5.0)
        sched = Scheduler(RequestBudget(rate=100, burst=20), max_workers=2)
        self._closers += [client.close, sched.shutdown]
        card = TaskCard(task)
        statuses: list[str] = []
        bars: list[float] = []
        card.body.observe(lambda change: statuses.append(change["new"]), names="value")
        card.bar.observe(lambda change: bars.append(change["new"]), names="value")
        updates: list[WatchUpdate] = []
        options: dict[str, Any] = {"interval": 0.1, "pacing": PACE, "timeout": 60.0, **kwargs}
        handle = watch(task, client=client, scheduler=sched, on_update=updates.append, **options)
        handle.on_update(card.render)
        return Seen(handle, card, updates, statuses, bars)

    def close(self) -> None:
        for close in reversed(self._closers):
            close()


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig()
    try:
        yield r
    finally:
        r.close()


def check_succeeded(seen: Seen) -> None:
    assert seen.error is None and seen.result is not None and seen.result.succeeded, seen.error
    assert seen.handle.outcome is Outcome.SUCCEEDED
    final = seen.updates[-1]
    assert final.outcome is Outcome.SUCCEEDED and final.note == "" and final.retry_in is None
    card = seen.card
    assert card.bar.bar_style == "success" and card.bar.value == 1.0
    assert "SUCCESS" in card.body.value
    assert "<video" in card.body.value and html.escape(seen.result.result_url or "?", quote=True) in card.body.value
    assert card.controls_hidden


def check_ended_red(seen: Seen, outcome: Outcome, kind: type[BaseException], phrase: str) -> str:
    """The watch ended badly: the typed error, and the card red with its one sentence."""
    assert isinstance(seen.error, kind), repr(seen.error)
    text = str(seen.error)
    assert text and "\n" not in text and text[-1] in ".)", text
    assert seen.handle.outcome is outcome and seen.updates[-1].outcome is outcome
    card = seen.card
    # A timed-out task may still finish on the server: amber, not the red of a failure.
    assert card.bar.bar_style == ("warning" if outcome is Outcome.TIMED_OUT else "danger")
    assert html.escape(f"{phrase}: {text}") in card.body.value, card.body.value
    assert "<video" not in card.body.value and card.controls_hidden
    return text


def check_retry_notes(seen: Seen, words: str) -> None:
    notes = seen.notes()
    assert notes and any(words in note for note in notes), [u.note for u in seen.updates]
    assert all(u.retry_in is not None and u.retry_in > 0 for u in seen.updates if RETRY.match(u.note))
    assert any(RETRY.search(html.unescape(s)) and words in html.unescape(s) for s in seen.statuses)


# -- 1. the server down for 20 s, then back on the same port ---------------------------------------


def test_server_down_for_20_s_then_back(rig: Rig) -> None:
    """Really stop the simulator, keep it down 20 s, start a new one on the same port."""
    sim = Simulator().start()
    task = sim.add_task(FAKE_KEY, running())
    seen = rig.watch(sim, task, give_up_after=90.0, pacing=PacingConfig(min_interval=0.05, backoff_base=0.5,
                                                                       backoff_cap=1.0))
    outage = Outage(sim, task, running(1.0), ready=lambda: sum(r.status == 200 for r in sim.requests_for(task)) >= 2)
    try:
        outage.start()
        wait_until(lambda: outage.down_at is not None, 30, "the outage to start")
        assert seen.handle.snapshot is not None and seen.handle.snapshot.status == "IN_PROGRESS"
        outage.join(OUTAGE + 15)
        assert outage.new is not None and outage.up_at is not None
        seen.finish(timeout=20)
        check_succeeded(seen)
        recovered = time.monotonic()
    finally:
        outage.close()
    assert recovered - outage.up_at < 10  # backoff capped at 1 s: back within moments
    during = [u for u in seen.updates if u.note.startswith("retrying")]
    refused = [u for u in during if "connection refused" in u.note]
    # (a poll in flight at the moment of the stop may see the connection cut instead)
    assert len(refused) >= 5 and len(refused) >= len(during) - 1, [u.note for u in during]
    # While down, the card kept the last status it knew and said why it was waiting.
    assert any("IN_PROGRESS" in s and "retrying in" in s and "connection refused" in s for s in seen.statuses)
    polled_again = [r for r in outage.new.requests_for(task) if r.status == 200]
    assert polled_again  # the same task id, on the new server
    assert seen.handle.update().elapsed >= OUTAGE


# -- 2. transient faults: bursts recover, persistent ones give up ------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_transient_fault(rig: Rig, cli: CliBatch, case: Case) -> None:
    burst_sim, lasting_sim = rig.sim(), rig.sim()
    burst_task, lasting_task = burst_sim.add_task(FAKE_KEY, quick(run_for=0.6)), lasting_sim.add_task(FAKE_KEY, quick(run_for=0.6))
    burst_sim.inject(case.fault(2))
    lasting_sim.inject(case.fault(PERSISTENT))
    burst = rig.watch(burst_sim, burst_task)
    lasting = rig.watch(lasting_sim, lasting_task, give_up_after=case.give_up)
    burst.finish()
    lasting.finish()

    # Burst: "retrying in N s: <why>" twice, then the task finishes as if nothing happened.
    check_succeeded(burst)
    check_retry_notes(burst, case.words)
    assert not any("waiting for the task to appear" in status for status in burst.statuses)
    assert len(burst.notes()) >= 2
    # Three requests at least: two faulted, then the good ones (a stalled one is logged
    # when its stall ends, after the client has long moved on).
    wait_until(lambda: len(burst_sim.requests_for(burst_task)) >= 3, 5, "the request log")
    assert 200 in [r.status for r in burst_sim.requests_for(burst_task)]
    if case.min_retry:  # Retry-After was honoured, as seconds or as an HTTP date
        first = next(u for u in burst.updates if RETRY.match(u.note))
        assert first.retry_in is not None and first.retry_in >= case.min_retry
        times = [r.time for r in burst_sim.requests_for(burst_task)]
        assert times[1] - times[0] >= case.min_retry - 0.05

    # Persistent: the watch gives up with one sentence naming the last error.
    text = check_ended_red(lasting, Outcome.GAVE_UP, GaveUpError, "gave up")
    assert isinstance(lasting.error, GaveUpError) and isinstance(lasting.error.last_error, case.error)
    assert text.startswith("Gave up after ") and case.words in text
    check_retry_notes(lasting, case.words)

    check_cli_recovered(cli.runs[f"{case.name} burst"].result(), case.words)
    if case.cli_persistent:
        check_cli_gave_up(cli.runs[f"{case.name} persistent"].result(), case.words)


# -- 3. task_not_exist ---------------------------------------------------------------------------------


def test_invisible_for_a_while_then_visible(rig: Rig, cli: CliBatch) -> None:
    """In process scaled to 2 s; the CLI run is the real 10 s (with its default 30 s grace)."""
    sim = rig.sim()
    task = sim.add_task(FAKE_KEY, quick(run_for=0.6, invisible_for=2.0))
    seen = rig.watch(sim, task, not_found_grace=8.0).finish()
    check_succeeded(seen)
    waiting = [u for u in seen.updates if u.note == "waiting for the task to appear"]
    assert len(waiting) >= 3 and all(u.snapshot is None for u in waiting)
    assert any("waiting for the task to appear" in s for s in seen.statuses)
    statuses = [r.status for r in sim.requests_for(task)]
    assert statuses[0] == 400 and statuses[-1] == 200

    run = cli.runs["invisible 10 s"]
    result = run.result()
    check_cli_visible_later(result, run)


def check_cli_visible_later(result: Run, run: CliRun) -> None:
    assert result.code == 0 and result.err == "", result
    assert "waiting for the task to appear" in result.lines[0] and "✓ SUCCESS" in result.lines[-1]
    polls = run.sim.requests_for(run.task)
    not_yet = [r for r in polls if r.status == 400]
    first_ok = next(r for r in polls if r.status == 200)
    assert len(not_yet) >= 5 and first_ok.time - run.started >= 9.5  # really ~10 s of task_not_exist


def test_never_visible(rig: Rig, cli: CliBatch) -> None:
    sim = rig.sim()
    task = sim.add_task(FAKE_KEY, Timeline(invisible_for=math.inf))
    seen = rig.watch(sim, task, not_found_grace=0.8).finish()
    text = check_ended_red(seen, Outcome.NOT_FOUND, TaskNotFoundError, "task not found")
    assert text == (f"Task {task} was not found after 0.8 s; check the id and that it was created with this "
                    "API key.")
    assert any(u.note == "waiting for the task to appear" for u in seen.updates)
    assert {r.status for r in sim.requests_for(task)} == {400}

    result = cli.runs["never visible"].result()
    assert result.code == 5
    assert "was not found after 1 s; check the id" in result.sentence()
    assert "✗ task not found" in result.lines[-1]


# -- 4. what the task says -------------------------------------------------------------------------------


def test_status_going_backwards_after_terminal(rig: Rig, cli: CliBatch) -> None:
    """The first terminal status stands, even though later polls read IN_PROGRESS again."""
    sim = rig.sim()
    task = sim.add_task(FAKE_KEY, quick(run_for=0.6, after_terminal="IN_PROGRESS"))
    seen = rig.watch(sim, task).finish()
    check_succeeded(seen)
    assert seen.handle.snapshot is not None and seen.handle.snapshot.status == "SUCCESS"
    with Client(FAKE_KEY, sim.base_url) as probe:
        assert probe.fetch(task).status == "IN_PROGRESS"  # the server really went backwards
    time.sleep(0.3)
    assert seen.handle.snapshot.status == "SUCCESS" and seen.card.bar.bar_style == "success"

    run = cli.runs["status goes backwards"]
    result = run.result()
    assert result.code == 0 and '"status": "SUCCESS"' in result.out and '"outcome": "succeeded"' in result.out
    with Client(FAKE_KEY, run.sim.base_url) as probe:
        assert probe.fetch(run.task).status == "IN_PROGRESS"


def test_status_going_backwards_while_saving(rig: Rig, tmp_path: Any) -> None:
    """The signed URL expires before the download; polling again reads IN_PROGRESS: the success stands."""
    sim = rig.sim()
    task = sim.add_task(FAKE_KEY, quick(run_for=0.6, after_terminal="IN_PROGRESS", url_ttl=1))
    sim.inject(Fault("slow", delay=2.1, path="/media/"))  # the URL is 1-2 s old when it arrives
    seen = rig.watch(sim, task, save=tmp_path).finish()
    assert isinstance(seen.error, DownloadError) and "now reads IN_PROGRESS" in str(seen.error)
    assert seen.handle.outcome is Outcome.SUCCEEDED
    snap = seen.handle.snapshot
    assert snap is not None and snap.status == "SUCCESS" and snap.result_url  # not replaced by the regression
    assert seen.card.bar.bar_style == "success" and "could not save: " in seen.card.body.value
    assert os.listdir(tmp_path) == []


def test_unknown_status_strings(rig: Rig, cli: CliBatch) -> None:
    sim = rig.sim()
    task = sim.add_task(FAKE_KEY, quick(run_for=0.6, extra_status="WEIRD_NEW_STATE", queued_for=2.0))
    seen = rig.watch(sim, task).finish()
    check_succeeded(seen)
    weird = [u for u in seen.updates if u.snapshot is not None and u.snapshot.status == "WEIRD_NEW_STATE"]
    assert weird and all(not u.done for u in weird)  # unknown is not terminal
    assert any("WEIRD_NEW_STATE" in s for s in seen.statuses)

    forever = rig.sim()
    stuck = forever.add_task(FAKE_KEY, quick(run_for=0.6, outcome="EXPIRED"))  # a fork's status we do not know
    bounded = rig.watch(forever, stuck, timeout=1.5).finish()
    text = check_ended_red(bounded, Outcome.TIMED_OUT, WatchTimeoutError, "timed out")
    assert text == f"Task {stuck} did not finish within 1.5 s (last seen: EXPIRED 100%)."

    result = cli.runs["unknown status"].result()
    assert result.code == 0 and result.err == ""
    assert any("WEIRD_NEW_STATE" in line for line in result.lines) and "✓ SUCCESS" in result.lines[-1]
    result = cli.runs["unknown status forever"].result()
    assert result.code == 4
    assert "did not finish within 2 s (last seen: EXPIRED 100%)." in result.sentence()


def test_hostile_progress_values(rig: Rig, cli: CliBatch) -> None:
    values = ("abc", "150%", -5, None, 0.45)
    sim = rig.sim()
    task = sim.add_task(FAKE_KEY, quick(progress_style="values", progress_values=values, run_for=1.5))
    seen = rig.watch(sim, task).finish()
    check_succeeded(seen)
    polls = [u.snapshot for u in seen.updates if u.snapshot is not None and u.snapshot.status == "IN_PROGRESS"]
    assert len(polls) >= 3
    for snap in polls:
        sent = snap.raw["data"]["progress"]
        inner = snap.raw["data"]["data"]["progress"]  # Runway's own 0..1 progress in the inner task
        # "150%" is clamped to 1, -5 to 0, 0.45 is a fraction; "abc" and null say nothing,
        # so the inner task's progress is used instead.
        expected = inner if sent in ("abc", None) else {"150%": 1.0, -5: 0.0, 0.45: 0.45}[sent]
        assert snap.progress == expected, (sent, inner, snap.progress)
    assert all(0.0 <= v <= 1.0 for v in seen.bars)
    assert seen.card.bar.value == 1.0

    result = cli.runs["hostile progress values"].result()
    assert result.code == 0 and result.err == "" and "Traceback" not in result.out
    assert sum("IN_PROGRESS" in line for line in result.lines) >= 3 and "✓ SUCCESS" in result.lines[-1]
    percents = [int(m) for m in re.findall(r"\] +(\d+)%", result.out)]
    assert percents and all(0 <= p <= 100 for p in percents)


# -- 5. the CLI through the 20 s outage (it ran in the background all along) ------------------------------


def test_cli_survives_the_server_down_for_20_s(cli: CliBatch) -> None:
    run = cli.runs["server down 20 s"]
    result = run.result(timeout=120)
    cli.outage.join(30)
    assert cli.outage.down_at is not None and cli.outage.up_at is not None and cli.outage.new is not None
    check_cli_recovered(result, "connection refused")
    before = [r for r in run.sim.requests_for(run.task) if r.status == 200]
    after = cli.outage.new.requests_for(run.task)  # the same id, on the new server
    assert len(before) >= 2 and after and after[-1].status == 200
    assert after[0].time - before[-1].time >= OUTAGE


def test_cli_stall_was_a_real_read_timeout(cli: CliBatch) -> None:
    run = cli.runs["stall past the read timeout burst"]
    result = run.result()
    assert any("did not answer within 15 s" in line for line in retry_lines(result)), result.out
    # A stalled request is logged (with its arrival time) only when its stall ends.
    wait_until(lambda: len(run.sim.requests_for(run.task)) >= 2, 5, "the stalled request in the log")
    stalled, retried = sorted(run.sim.requests_for(run.task), key=lambda r: r.time)[:2]
    assert retried.time - stalled.time >= 15.0  # the client waited out its real read timeout

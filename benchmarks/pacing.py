"""Pacing benchmark: how late does each polling policy notice a finish, and at what cost?

A deterministic virtual-clock simulation (seeded ``random.Random``; no threads, no sleeps,
no network) of the whole matrix::

    python benchmarks/pacing.py [--quick] [--tasks N] [--seed S] [--markdown PATH]

refresh period {continuous, 5, 10, 15, 20, 30, 60 s, drifting 15.3 s} x run length
{10-60 s, 60-180 s, 180-600 s; queue 0-120 s} x {1 watch per process, 1 watch per process
remembered, 12 concurrent, 200 concurrent}.  Each cell runs three policies on the same tasks:

* ours: :mod:`runway_widgets.policy` with the gateway's :class:`~runway_widgets.gateways.Gateway`
  shared by the watches of one process, driven exactly as ``watch.py`` drives it, behind
  the scheduler's default request budget (10 requests/s, bursts of 10, or with more than 60
  watches one request per 6 s each, bursts of 4 s of that: the SDK's rate) and through the
  scheduler's own queue (:class:`~runway_widgets.triage.DueQueue`: when tokens run short,
  the most urgent due poll goes first): a crowd waits for tokens and the wait counts in
  its lag.  First poll at the task's creation.
* the Runway SDK: sleeps U(4.5, 7.5) s before every poll, the first one included.
* an oracle that knows the ticks: one poll just after each tick (continuous server: one
  poll every second), from the first tick the task is visible at.

The model, per task: created at c; ``task_not_exist`` until c + U(0, 3) s; upstream
queued U(0, 120) s, then runs for the cell's run length and succeeds; 10 % fail early
instead (U(0, 0.3) of the run); 70 % report "N%" of the run, 30 % "0%" until done.  A
ticking gateway refreshes every task at ``phase + k * period`` (one phase per gateway,
random) and the feed shows upstream as of the last tick (SUBMITTED before the first
since creation); "drifting 15.3" is new-api's loop sleeping 15 s after a 0.3 s pass.
A continuous server shows upstream at once.  In a process with N concurrent watches,
N slots each create a task, and the next one U(0, 20) s after the previous finished.

"1/process" rows: each process watches one task of a gateway at a phase of its own and
starts with nothing learnt: the first watch on a machine.  "1/process, remembered" rows:
the processes run one after another against ONE gateway (one phase), U(0, 600) s apart,
and each of ours starts from what the ones before it saved -- carried through
:mod:`runway_widgets.cadence_memory`'s own conversion (to wall-clock on save, back to the
next process's monotonic clock and aged on load; see :func:`run_remembered_cell`), as
``cadence.json`` carries it between real processes.

Lag = first poll that sees the terminal state - when it became visible.  Requests = every
poll of the task, ``task_not_exist`` answers included.

Targets (exit 1 when one fails): every ticking cell with 12 or more concurrent watches:
p50 lag <= 0.5 x the SDK's and requests <= 1.0 x; remembered single-watch ticking cells:
no worse than the SDK on either axis, and p50 lag <= 0.5 x where the median task spans 3
or more ticks; fresh single-watch ticking cells: no worse than the SDK on either axis
(p50 lag <= 1.0 x, requests <= 1.0 x) only -- the first watch on a machine has nothing to
go on but its own few looks at one short task, which rarely place the ticks before it
ends, so it cannot aim at them (the remembered rows are where a lone watch is expected to
beat the SDK by half); the continuous server: requests <= 1.0 x and p50 lag <= 0.6 x.

``--crowds 1`` runs only the single-watch cells (fresh and remembered).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as common  # noqa: E402

from runway_widgets.budget import SDK_PER_WATCH, RequestBudget  # noqa: E402
from runway_widgets.cadence_memory import decode, entry_for  # noqa: E402
from runway_widgets.gateways import Gateway  # noqa: E402
from runway_widgets.policy import PacerState, PacingConfig, next_delay, observe, observe_absent, period_bound  # noqa: E402
from runway_widgets.snapshot import TaskSnapshot, parse_task  # noqa: E402
from runway_widgets.triage import OPEN, DueQueue, urgency  # noqa: E402

PERIODS: Tuple[Tuple[str, float], ...] = (
    ("continuous", 0.0), ("5 s", 5.0), ("10 s", 10.0), ("15 s", 15.0), ("20 s", 20.0),
    ("30 s", 30.0), ("60 s", 60.0), ("drifting 15.3 s", 15.3))
LENGTHS: Tuple[Tuple[str, float, float], ...] = (("10-60 s", 10.0, 60.0), ("60-180 s", 60.0, 180.0),
                                                 ("180-600 s", 180.0, 600.0))
CROWDS = (1, 12, 200)
GAP_MAX = 600.0  # s: between two remembered single-watch processes
WALL0 = 1.8e9  # s: the wall clock when a remembered series starts (any value: only differences count)
FAIL_SHARE, JUMP_SHARE, QUEUE_MAX, THINK_MAX = 0.10, 0.30, 120.0, 20.0
MAX_POLLS = 20_000  # a runaway policy stops here instead of hanging the benchmark
_EPS = 1e-9


@dataclass(frozen=True)
class Gate:
    """The gateway's refresh ticks: ``phase + k * period`` (period 0: continuous)."""

    period: float
    phase: float

    def clock(self, t: float) -> float:
        """The time whose upstream state the feed shows at t (the last tick)."""
        if self.period <= 0:
            return t
        return self.phase + math.floor((t - self.phase) / self.period + _EPS) * self.period

    def first_tick(self, t: float) -> float:
        """The first tick at or after t."""
        if self.period <= 0:
            return t
        return self.phase + math.ceil((t - self.phase) / self.period - _EPS) * self.period


@dataclass(frozen=True)
class Task:
    """One simulated task (absolute virtual seconds)."""

    created: float
    appear: float
    start: float
    run: float
    end: float
    failed: bool
    jumpy: bool

    def view(self, gate: Gate, t: float) -> Optional[Tuple[str, str]]:
        """(status, progress) as the feed answers at t, or None for ``task_not_exist``."""
        if t < self.appear:
            return None
        clock = gate.clock(t)
        if clock < self.created:
            return "SUBMITTED", "0%"
        if clock < self.start:
            return "QUEUED", "0%"
        if clock < self.end:
            return "IN_PROGRESS", "0%" if self.jumpy else f"{int(100 * (clock - self.start) / self.run)}%"
        return ("FAILURE" if self.failed else "SUCCESS"), "100%"

    def visible_end(self, gate: Gate) -> float:
        return max(gate.first_tick(self.end), self.appear)


def make_tasks(slots: int, per_slot: int, run_range: Tuple[float, float], gate: Gate, rng: random.Random) -> List[Task]:
    """Tasks of ``slots`` concurrent slots, each creating its next task after the last finished."""
    tasks = []
    for _ in range(slots):
        created = rng.uniform(0.0, 30.0)
        for _ in range(per_slot):
            run = rng.uniform(*run_range)
            start = created + rng.uniform(0.0, QUEUE_MAX)
            failed = rng.random() < FAIL_SHARE
            end = start + (rng.uniform(0.0, 0.3 * run) if failed else run)
            task = Task(created, created + rng.uniform(0.0, 3.0), start, run, end, failed, rng.random() < JUMP_SHARE)
            tasks.append(task)
            created = task.visible_end(gate) + rng.uniform(0.0, THINK_MAX)
    return tasks


@functools.lru_cache(maxsize=None)
def snapshot(status: str, progress: str) -> TaskSnapshot:
    """The feed's answer as the client parses it (few distinct answers: cached)."""
    snap = parse_task({"code": "success", "message": "", "data": {
        "task_id": "bench", "status": status, "progress": progress,
        "result_url": "https://cdn.example/v.mp4" if status == "SUCCESS" else ""}})
    assert snap is not None
    return snap


Result = Tuple[float, int]  # (lag, requests) of one task


def ours(tasks: Sequence[Task], gate: Gate, rng: random.Random, config: PacingConfig = PacingConfig(),
         gateway: Optional[Gateway] = None) -> List[Result]:
    """Our policy on one process's tasks: a shared Gateway (``gateway``: one that starts from
    what earlier processes remembered), the default request budget."""
    gateway = gateway or Gateway("http://bench")
    budget = RequestBudget(per_watch=SDK_PER_WATCH)  # the process's default, scaled to its watches
    pacers = [PacerState() for _ in tasks]
    polls = [0] * len(tasks)
    results: List[Optional[Result]] = [None] * len(tasks)
    queue: DueQueue[int] = DueQueue()  # the scheduler's queue: the most urgent due poll takes the next token
    for i, task in enumerate(tasks):
        queue.push(task.created, i, OPEN)
    created = sorted(task.created for task in tasks)
    started = ended = 0  # watches begun (a task is watched from its creation) and ended
    now = 0.0
    while queue:
        now = max(now, queue.next_due())
        while started < len(created) and created[started] <= now:
            started += 1
            budget.fit_watches(started - ended)  # as Scheduler.add does
        wait = budget.wait_time(now)
        if wait > 0:  # every due poll waits for a token
            now += max(wait, 1e-6)
            continue
        _due, i = queue.pop(now)  # type: ignore[misc]
        budget.try_spend(now)
        task, t = tasks[i], now
        polls[i] += 1
        answer = task.view(gate, t)
        if answer is None:
            pacers[i] = observe_absent(pacers[i], t, t)
        else:
            snap = snapshot(*answer)
            pacers[i] = observe(pacers[i], snap, config, t, t)
            if snap.is_terminal:
                results[i] = (t - task.visible_end(gate), polls[i])
                ended += 1
                budget.fit_watches(started - ended)  # as Scheduler.remove does
                continue
        if polls[i] >= MAX_POLLS:
            raise RuntimeError(f"ours did not finish within {MAX_POLLS} polls: {task}")
        pacer = pacers[i]  # as Watch._next_delay does it
        if pacer.changed and pacer.change is not None and config.refresh_period > 0:
            cadence = gateway.record(pacer.change, period_bound(pacer), config.refresh_period)
        else:
            cadence = gateway.cadence
        crowd = gateway.touch(i, t)
        delay = next_delay(pacer, config, t, rng.random(), cadence, crowd, budget.configured_rate)
        queue.push(t + delay, i, urgency(pacer, cadence, t + delay))
    return [r for r in results if r is not None]


def sdk(tasks: Sequence[Task], gate: Gate, rng: random.Random) -> List[Result]:
    """The Runway SDK: sleep U(4.5, 7.5) s before every poll; blind to the answers."""
    out = []
    for task in tasks:
        end, t, polls = task.visible_end(gate), task.created + rng.uniform(4.5, 7.5), 1
        while t < end:
            t += rng.uniform(4.5, 7.5)
            polls += 1
        out.append((t - end, polls))
    return out


def oracle(tasks: Sequence[Task], gate: Gate, rng: random.Random) -> List[Result]:
    """Knows the ticks: one poll just after each (continuous: every second) while visible."""
    step = gate.period if gate.period > 0 else 1.0
    out = []
    for task in tasks:
        first = gate.first_tick(task.appear) if gate.period > 0 else task.appear
        end = task.visible_end(gate)
        polls = 1 + math.ceil((end - first) / step - _EPS)
        out.append((first + (polls - 1) * step - end, polls))
    return out


Policy = Callable[[Sequence[Task], Gate, random.Random], List[Result]]
POLICIES: Tuple[Tuple[str, Policy], ...] = (("ours", ours), ("sdk", sdk), ("oracle", oracle))


@dataclass(frozen=True)
class Stats:
    p50: float
    p95: float
    requests: float


def stats(results: Sequence[Result]) -> Stats:
    lags = [max(0.0, lag) for lag, _ in results]
    if any(lag < -1e-6 for lag, _ in results):
        raise AssertionError("a policy saw a finish before it was visible")
    return Stats(common.percentile(lags, 50), common.percentile(lags, 95), sum(r for _, r in results) / len(results))


@dataclass(frozen=True)
class Cell:
    period_name: str
    period: float
    length: str
    crowd: int
    ticks: float  # median ticks a task spans (0: continuous)
    rows: Tuple[Stats, Stats, Stats]  # ours, sdk, oracle
    remembered: bool = False  # single watches starting from what the processes before them saved

    @property
    def lag_ratio(self) -> float:
        return self.rows[0].p50 / self.rows[1].p50 if self.rows[1].p50 > 0 else math.inf

    @property
    def request_ratio(self) -> float:
        return self.rows[0].requests / self.rows[1].requests

    def target(self) -> Tuple[float, float]:
        """(max p50 lag ratio, max requests ratio) this cell must meet."""
        if self.period <= 0:
            return 0.6, 1.0
        if self.crowd == 1 and not self.remembered:
            return 1.0, 1.0  # the first watch on a machine: nothing to go on but its own few looks
        if self.crowd >= 12 or self.ticks >= 3:
            return (0.5, 1.0)
        return 1.0, 1.0

    @property
    def ok(self) -> bool:
        lag, req = self.target()
        return self.lag_ratio <= lag and self.request_ratio <= req


def run_cell(period_name: str, period: float, length: Tuple[str, float, float], crowd: int, tasks: int, seed: int) -> Cell:
    rng = random.Random(f"{seed}/{period}/{length[0]}/{crowd}")
    per_slot = max(1, math.ceil(tasks / crowd)) if crowd > 1 else 1
    processes = tasks if crowd == 1 else 1
    rows = []
    for name, policy in POLICIES:
        results: List[Result] = []
        spans = []
        for p in range(processes):
            prng = random.Random(f"{seed}/{period}/{length[0]}/{crowd}/{p}")
            gate = Gate(period, prng.uniform(0.0, period))
            batch = make_tasks(crowd, per_slot, (length[1], length[2]), gate, prng)
            results += policy(batch, gate, random.Random(f"{name}/{rng.random()}"))
            if period > 0:
                spans += [(t.visible_end(gate) - t.appear) / period for t in batch]
        rows.append(stats(results))
    ticks = common.median(spans) if spans else 0.0
    return Cell(period_name, period, length[0], crowd, ticks, (rows[0], rows[1], rows[2]))


def run_remembered_cell(period_name: str, period: float, length: Tuple[str, float, float], tasks: int,
                        seed: int) -> Cell:
    """Single watches whose processes run one after another against ONE gateway (one phase),
    ``U(0, GAP_MAX)`` s apart; each of ours starts from the entry the processes before it saved.

    Every process has its own monotonic clock (0 at its start) and sees the wall clock
    ``WALL0 + ...``: what it learnt goes through :func:`~runway_widgets.cadence_memory.entry_for`
    (to wall-clock) when it ends and :func:`~runway_widgets.cadence_memory.decode` (back to
    the next process's monotonic clock, aged) when the next one starts -- the conversion
    ``cadence.json`` holds, not a shared Gateway object.  A process that starts before the
    previous one has saved (a gap shorter than its lag) starts from the entry before.
    """
    prng = random.Random(f"{seed}/{period}/{length[0]}/remembered")
    phase = prng.uniform(0.0, period) if period > 0 else 0.0
    plan: List[Tuple[float, Gate, Task]] = []  # (wall start, the gate on the process's clock, its task)
    wall = WALL0
    for _ in range(tasks):
        gate = Gate(period, (phase - (wall - WALL0)) % period if period > 0 else 0.0)
        task = make_tasks(1, 1, (length[1], length[2]), gate, prng)[0]
        plan.append((wall, gate, task))
        wall += task.visible_end(gate) + prng.uniform(0.0, GAP_MAX)
    rows = []
    for name, policy in POLICIES:
        rng = random.Random(f"{seed}/{period}/{length[0]}/remembered/{name}")
        results: List[Result] = []
        saved: List[Tuple[float, dict]] = []  # (wall time written, entry), in time order
        for wall, gate, task in plan:
            if name != "ours":
                results += policy([task], gate, rng)
                continue
            entry = next((e for at, e in reversed(saved) if at <= wall), None)
            recall = decode(entry, 0.0, wall) if entry is not None else None
            gateway = Gateway("http://bench", recall.cadence, recall.prior) if recall else Gateway("http://bench")
            out = ours([task], gate, rng, gateway=gateway)
            results += out
            end = task.visible_end(gate) + out[0][0]  # the process ends when its watch saw the finish
            new = entry_for(gateway.cadence, end, wall + end)
            if new is not None:
                saved.append((wall + end, new))
                saved.sort(key=lambda s: s[0])
        rows.append(stats(results))
    spans = [(t.visible_end(g) - t.appear) / period for _w, g, t in plan] if period > 0 else []
    ticks = common.median(spans) if spans else 0.0
    return Cell(period_name, period, length[0], 1, ticks, (rows[0], rows[1], rows[2]), remembered=True)


HEADERS = ("refresh", "run", "watches", "ticks/task", "p50 ours", "p50 SDK", "p50 oracle", "p50 vs SDK",
           "req ours", "req SDK", "req oracle", "req vs SDK", "p95 ours", "p95 SDK", "target", "verdict")


def row(cell: Cell) -> List[str]:
    o, s, a = cell.rows
    lag, req = cell.target()
    label = str(cell.crowd) if cell.crowd > 1 else "1/process, remembered" if cell.remembered else "1/process"
    return [cell.period_name, cell.length, label,
            f"{cell.ticks:.1f}" if cell.period > 0 else "-", f"{o.p50:.2f}", f"{s.p50:.2f}", f"{a.p50:.2f}",
            f"{cell.lag_ratio:.2f}x", f"{o.requests:.1f}", f"{s.requests:.1f}", f"{a.requests:.1f}",
            f"{cell.request_ratio:.2f}x", f"{o.p95:.1f}", f"{s.p95:.1f}", f"lag<={lag:g}x req<={req:g}x",
            "PASS" if cell.ok else "FAIL"]


GROUPS = (
    ("ticking gateway, 12 or more concurrent watches: p50 lag <= 0.5x SDK and requests <= 1.0x",
     lambda c: c.period > 0 and c.crowd >= 12),
    ("ticking gateway, 1 watch per process, remembered (processes one after another, U(0, 600) s apart, each "
     "starting from what the ones before saved): no worse than the SDK, p50 lag <= 0.5x where a task spans >= 3 ticks",
     lambda c: c.period > 0 and c.crowd == 1 and c.remembered),
    ("ticking gateway, 1 watch per process, the first on a machine (nothing remembered): no worse than the SDK "
     "(p50 lag <= 1.0x, requests <= 1.0x)",
     lambda c: c.period > 0 and c.crowd == 1 and not c.remembered),
    ("continuous server: requests <= 1.0x SDK and p50 lag <= 0.6x", lambda c: c.period <= 0),
)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Virtual-clock matrix of polling policies (see the module docstring).")
    parser.add_argument("--tasks", type=int, default=400, help="tasks per cell and policy (default 400)")
    parser.add_argument("--quick", action="store_true", help="smoke size (60 tasks per cell, 200 at 200 watches)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--markdown", metavar="PATH", help="append the tables as Markdown to PATH")
    parser.add_argument("--crowds", default=",".join(str(c) for c in CROWDS), metavar="N,N",
                        help="which concurrencies to run (default: all; 1: the single-watch cells, fresh and "
                             "remembered; CI's smoke runs 12, the targets met today)")
    args = parser.parse_args(argv)
    crowds = tuple(int(c) for c in args.crowds.split(","))
    if not set(crowds) <= set(CROWDS):
        parser.error(f"--crowds takes some of {CROWDS}")
    n = 60 if args.quick else args.tasks
    crowd_n = 200 if args.quick else max(n, 400)  # 200 watches: one or two rounds of tasks
    if n < 12:
        parser.error("need --tasks >= 12")
    started = time.perf_counter()
    cells = []
    for pname, period in PERIODS:
        for length in LENGTHS:
            for crowd in crowds:
                cells.append(run_cell(pname, period, length, crowd, n if crowd != 200 else crowd_n, args.seed))
                if crowd == 1:
                    cells.append(run_remembered_cell(pname, period, length, n, args.seed))
    report = common.Report(f"Pacing: {len(cells)} cells, {n} tasks per cell ({crowd_n} at 200 watches), seed {args.seed}, "
                           f"simulated in {time.perf_counter() - started:.0f} s")
    report.note("Lags in seconds after the finish became visible, requests per task; ratios are ours / the Runway "
                "SDK's (6 +- 1.5 s, sleeping first); the oracle polls just after every tick. Ours runs behind the "
                "default request budget (10/s, bursts of 10; with more than 60 watches the SDK's rate, 1 per 6 s each, bursts of 4 s of it) with the gateway's cadence shared by the process's watches.")
    report.table(HEADERS, [row(c) for c in cells])
    for title, member in GROUPS:
        group = [c for c in cells if member(c)]
        if not group:
            continue  # not measured in this run (--crowds)
        failed = [c for c in group if not c.ok]
        detail = "; ".join(f"{c.period_name}/{c.length}/{c.crowd}{' remembered' if c.remembered else ''}: lag {c.lag_ratio:.2f}x req {c.request_ratio:.2f}x"
                           for c in failed)
        report.verdict(not failed, f"{title}: {len(group) - len(failed)}/{len(group)} cells" + (f" (failing: {detail})" if failed else ""))
    report.emit(args.markdown)
    return 0 if all(ok for ok, _ in report.verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())

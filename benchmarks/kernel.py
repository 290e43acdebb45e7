"""Kernel benchmark: does watching 50 tasks from a notebook slow the kernel or flood the frontend?

    python benchmarks/kernel.py [--quick] [--watches 50] [--markdown PATH]

A real kernel (jupyter_client ``KernelManager``, this venv's ``python3`` kernel, with
``COMETAPI_KEY=made-up`` in its environment) and, in this process, the simulator with
medium timelines: task i finishes ``20 + 20 * i / (n - 1)`` s after creation (20-40 s,
evenly spread; visible after 0.5 s, submitted 1 s, queued 2 s, then running with
progress in percent; ``--quick``: 10 tasks, 5-9 s).

1. Idle: the round trip of a trivial cell (``1+1``: execute_request -> execute_reply on
   the shell channel), many times, spaced by 20-30 ms.
2. ``%load_ext runway_widgets`` then ``%runway_watch --base-url <sim> ID1 .. IDn`` (the
   default background mode: the cell returns, the board updates from the poller).
3. Busy: the same round trip, again and again, until every task has finished.
4. A last cell waits for the watches and reports which widget models belong to which task.

Every IOPub message is read on a separate thread.  ``comm_msg`` messages are counted per
widget model (the kernel's send time, from the message header) and grouped by task.
A task's *visible changes* are the polls whose (status, progress) differ from the
previous poll's, computed from the simulator's request log and each task's timeline
(``task_view`` of the time each poll arrived); the first answer counts as one.

Round trips are noisy on a shared machine, so an identical idle twin kernel (same imports,
``%load_ext`` done, no watches) is sampled in alternation with the measured one, in every
phase.  The watches' effect = median over pairs of (this kernel / twin) while they run,
divided by the same while idle (before and after); the plain before/during ratio is shown
too.

Targets: busy round trip within 1.2x of idle (twin-corrected); comm messages per watch at most
its visible changes plus a few (5); no widget model updated more than 5 times in any
1 s window.  Exits 1 when a target fails.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as common  # noqa: E402

KEY = "made-up"
RTT_RATIO = 1.2
EXTRA_MESSAGES = 5
MAX_RATE = 5

REPORT_CELL = r'''
import json as _json
import ipywidgets as _w
import runway_widgets as _rw
from runway_widgets import notebook as _nb

def _walk(widget, seen):
    if id(widget) in seen:
        return
    seen.add(id(widget))
    yield widget
    for name in widget.keys:
        try:
            value = getattr(widget, name)
        except Exception:
            continue
        for item in (value if isinstance(value, (list, tuple)) else [value]):
            if isinstance(item, _w.Widget):
                yield from _walk(item, seen)

_rw.wait_all(%(timeout)r)
_out = {"tasks": {}, "board": [], "outcomes": {}, "versions": {}}
for _view in {id(v): v for v in list(_nb._views.values())}.values():
    _cards = _view.widget.cards  # a single task's view is a board of one
    _owned = set()
    for _tid, _card in _cards.items():
        _ids = [x.model_id for x in _walk(_card.root, set())]
        _out["tasks"][_tid] = _ids
        _owned.update(_ids)
    _out["board"] += [x.model_id for x in _walk(_view.widget.root, set()) if x.model_id not in _owned]
    _out["header"] = _view.widget.header.model_id
for _h in _rw.recent_watches():
    _out["outcomes"][_h.task_id] = _h.outcome.value
import sys as _sys, ipykernel as _ik, IPython as _ip
_out["versions"] = {"python": _sys.executable, "ipykernel": _ik.__version__, "ipywidgets": _w.__version__,
                    "IPython": _ip.__version__}
print("BENCH-JSON " + _json.dumps(_out))
'''


class IOPubReader(threading.Thread):
    """Owns the IOPub channel: keeps every message (with its receive time) until stopped."""

    def __init__(self, kc: Any) -> None:
        super().__init__(name="bench-iopub", daemon=True)
        self.kc = kc
        self.messages: list[dict[str, Any]] = []
        self.stop_event = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            except Exception:  # the channel was closed under us at the end
                if self.stop_event.is_set():
                    return
                raise
            with self.lock:
                self.messages.append(msg)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.messages)


def execute(kc: Any, code: str, timeout: float = 120.0) -> tuple[float, dict[str, Any]]:
    """Run ``code``; return (round trip seconds, execute_reply)."""
    started = time.perf_counter()
    msg_id = kc.execute(code)
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id:
            return time.perf_counter() - started, msg


def stream_text(reader: IOPubReader, msg_id: str) -> str:
    return "".join(m["content"].get("text", "") for m in reader.snapshot()
                   if m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id)


class Kernel:
    """One kernel with its client and IOPub reader; :meth:`close` stops it by its pid if need be."""

    def __init__(self, env: dict[str, str], cwd: str) -> None:
        from jupyter_client import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.kc: Any = None
        self.reader: IOPubReader | None = None
        self.pid: int | None = None
        self.km.start_kernel(env=env, cwd=cwd)
        self.pid = getattr(getattr(self.km, "provisioner", None), "pid", None)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.reader = IOPubReader(self.kc)
        self.reader.start()

    def run(self, code: str, timeout: float = 120.0) -> tuple[float, dict[str, Any]]:
        seconds, reply = execute(self.kc, code, timeout)
        if reply["content"].get("status") != "ok":
            raise RuntimeError(f"{code[:60]!r} failed in the kernel: {reply['content']}")
        return seconds, reply

    def close(self) -> None:
        if self.reader is not None:
            self.reader.stop_event.set()
            self.reader.join(2.0)
        if self.kc is not None:
            self.kc.stop_channels()
        try:
            self.km.shutdown_kernel(now=True)
        finally:
            if self.pid is not None:
                try:  # still there (it should not be): stop its process group by its pid
                    os.kill(self.pid, 0)
                    os.killpg(self.pid, 9)
                except (ProcessLookupError, PermissionError):
                    pass


def rtt_samples(kernels: list[Kernel], count: int | None, until: float | None,
                rng: random.Random) -> list[list[float]]:
    """Round trips of ``1+1``, alternating between ``kernels`` (so slow spells of the shared
    machine hit them alike); one list per kernel."""
    out: list[list[float]] = [[] for _ in kernels]
    while (count is None or len(out[0]) < count) and (until is None or time.monotonic() < until):
        for i, kernel in enumerate(kernels):
            out[i].append(kernel.run("1+1")[0])
            time.sleep(rng.uniform(0.02, 0.03))  # a person, not a load generator; no aliasing with polls
    return out


def visible_changes(sim: Any, task_id: str, timeline: Any, created: float) -> tuple[int, int]:
    """(changes, polls) of one task, from the request log and its timeline."""
    from runway_widgets.simulator import task_view

    changes, polls, last, terminal_seen = 0, 0, object(), 0
    for k, record in enumerate(r for r in sim.requests_for(task_id) if r.path == "/runway/feed"):
        polls += 1
        if record.status != 200:
            seen: Any = ("absent",)
        else:
            view = task_view(timeline, record.time - created, k, terminal_seen)
            terminal_seen += view["phase"] == "terminal"
            seen = (view["status"], view.get("progress"))
        if seen != last:
            changes += 1
            last = seen
    return changes, polls


KINDS = (("setup", "set-up: before the first render (add_class, the hint's layout)"),
         ("progress", "while watching (bar, status line, title)"),
         ("finish", "the finish (from the bar's final style on)"),
         ("redundant", "redundant: changed no value (all kinds)"))


def classify(messages: list[dict[str, Any]], owner: dict[str, str]) -> dict[str, dict[str, int]]:
    """Per task: how many of its cards' comm_msg were set-up, progress, finish, and redundant."""
    state: dict[str, dict[str, Any]] = {}
    out: dict[str, dict[str, int]] = defaultdict(lambda: {key: 0 for key, _ in KINDS})
    finished: set[str] = set()
    rendered: set[str] = set()  # the first render assigns a value; what came before is construction
    for m in messages:
        content = m["content"]
        if m["msg_type"] == "comm_open":
            state[content["comm_id"]] = dict(content.get("data", {}).get("state", {}))
            continue
        if m["msg_type"] != "comm_msg" or content["comm_id"] not in owner:
            continue
        tid, new = owner[content["comm_id"]], content.get("data", {}).get("state", {})
        known = state.setdefault(content["comm_id"], {})
        if all(known.get(k) == v for k, v in new.items()):
            out[tid]["redundant"] += 1
        known.update(new)
        if "bar_style" in new:
            finished.add(tid)
        if "value" in new:
            rendered.add(tid)
        if tid in finished:
            out[tid]["finish"] += 1
        elif tid not in rendered:
            out[tid]["setup"] += 1
        else:
            out[tid]["progress"] += 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 watches, 5-9 s tasks (CI smoke)")
    parser.add_argument("--watches", type=int, help="number of watches (default 50; --quick 10)")
    parser.add_argument("--idle-samples", type=int, help="idle round trips (default 200; --quick 40)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--markdown", metavar="PATH", help="append the tables as Markdown to PATH")
    parser.add_argument("--dump", metavar="PATH", help="write the comm messages of each task's card as JSON (debugging)")
    args = parser.parse_args(argv)
    n = args.watches or (10 if args.quick else 50)
    idle_count = args.idle_samples or (40 if args.quick else 200)
    first, last = (5.0, 9.0) if args.quick else (20.0, 40.0)
    rng = random.Random(args.seed)


    from runway_widgets.simulator import Simulator, Timeline

    scratch = tempfile.mkdtemp(prefix="rw-kernel-bench-")
    env = {**os.environ, "COMETAPI_KEY": KEY, "IPYTHONDIR": os.path.join(scratch, "ipython"),
           "JUPYTER_RUNTIME_DIR": os.path.join(scratch, "runtime"), "MPLBACKEND": "agg"}
    env.pop("COMETAPI_BASE_URL", None)
    sim = Simulator().start()
    kernels: list[Kernel] = []
    try:
        # The kernel under test, and an idle twin measured in alternation with it: the
        # twin shows how much of a change is the shared machine's, not the watches'.
        for _ in range(2):
            kernels.append(Kernel(env, scratch))
        main_k = kernels[0]
        for kernel in kernels:
            kernel.run("import runway_widgets, ipywidgets")  # imports are not what is measured
        load_s, _ = main_k.run("%load_ext runway_widgets")
        kernels[1].run("%load_ext runway_widgets")
        rtt_samples(kernels, 10, None, rng)  # warm the channels
        idle, twin_idle = rtt_samples(kernels, idle_count, None, rng)
        timelines, created = {}, {}
        for i in range(n):
            total = first + (last - first) * i / max(1, n - 1)
            timeline = Timeline(invisible_for=0.5, submitted_for=1.0, queued_for=2.0, run_for=total - 3.5)
            task_id = sim.add_task(KEY, timeline)
            timelines[task_id] = timeline
            created[task_id] = sim._tasks[task_id].created_mono  # private, but exact
        ends = max(created[t] + first + (last - first) for t in created)
        start_s, _ = main_k.run(f"%runway_watch --base-url {sim.base_url} " + " ".join(timelines))
        busy, twin_busy = rtt_samples(kernels, None, ends + 2.0, rng)
        _, reply = main_k.run(REPORT_CELL % {"timeout": 120.0}, timeout=180.0)
        report_id = reply["parent_header"]["msg_id"]
        time.sleep(1.0)  # late IOPub messages of the final renders
        after, twin_after = rtt_samples(kernels, max(20, idle_count // 4), None, rng)
        assert main_k.reader is not None
        text = stream_text(main_k.reader, report_id)
        info = json.loads(text.split("BENCH-JSON ", 1)[1].splitlines()[0])
        messages = main_k.reader.snapshot()
    finally:
        for kernel in kernels:
            kernel.close()
        sim.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    # -- comm traffic ------------------------------------------------------------------------------
    owner = {mid: tid for tid, ids in info["tasks"].items() for mid in ids}
    board = set(info["board"])
    per_model: dict[str, list[float]] = defaultdict(list)
    comm_msgs = [m for m in messages if m["msg_type"] == "comm_msg"]
    for m in comm_msgs:
        date = m["header"]["date"]
        stamp = date.timestamp() if hasattr(date, "timestamp") else time.mktime(time.strptime(str(date)[:19], "%Y-%m-%dT%H:%M:%S"))
        per_model[m["content"]["comm_id"]].append(stamp)
    per_task = {tid: sum(len(per_model.get(mid, [])) for mid in ids) for tid, ids in info["tasks"].items()}
    board_msgs = sum(len(per_model.get(mid, [])) for mid in board)
    unknown = sum(len(v) for mid, v in per_model.items() if mid not in owner and mid not in board)
    rates = {mid: common.max_in_window(v, 1.0) for mid, v in per_model.items()}
    worst_model = max(rates, key=rates.get) if rates else None
    kinds = classify(messages, owner)
    changes = {tid: visible_changes(sim, tid, timelines[tid], created[tid]) for tid in timelines}
    excess = {tid: per_task.get(tid, 0) - changes[tid][0] for tid in timelines}
    outcomes = info["outcomes"]
    succeeded = sum(1 for tid in timelines if outcomes.get(tid) == "succeeded")

    if args.dump:
        opened = {m["content"]["comm_id"]: m["content"].get("data", {}).get("state", {}).get("_model_name")
                  for m in messages if m["msg_type"] == "comm_open"}
        with open(args.dump, "w", encoding="utf-8") as fh:
            json.dump({tid: [(str(m["header"]["date"]), opened.get(m["content"]["comm_id"]),
                              m["content"].get("data", {}).get("state")) for m in comm_msgs
                             if owner.get(m["content"]["comm_id"]) == tid] for tid in timelines}, fh, indent=1, default=str)
    report = common.Report(f"Kernel: {n} widget watches in a real kernel ({info['versions'].get('ipykernel')} ipykernel, "
                           f"ipywidgets {info['versions'].get('ipywidgets')})")
    report.note(f"Tasks finish {first:g}-{last:g} s after creation, evenly spread; `%runway_watch` in background mode "
                f"(default PacingConfig). Round trip = execute_request -> execute_reply of `1+1`, spaced 20-30 ms. "
                f"`%load_ext` took {load_s * 1000:.0f} ms, the `%runway_watch` cell {start_s * 1000:.0f} ms. "
                f"{succeeded}/{n} watches ended SUCCEEDED.")
    med = {name: common.median(x) * 1000 for name, x in (("idle", idle), ("busy", busy), ("after", after),
                                                          ("twin_idle", twin_idle), ("twin_busy", twin_busy),
                                                          ("twin_after", twin_after))}
    pct = {name: (common.percentile(x, 90) * 1000, common.percentile(x, 99) * 1000)
           for name, x in (("idle", idle), ("busy", busy), ("after", after), ("twin_idle", twin_idle),
                           ("twin_busy", twin_busy), ("twin_after", twin_after))}
    samples = {"idle": len(idle), "busy": len(busy), "after": len(after), "twin_idle": len(twin_idle),
               "twin_busy": len(twin_busy), "twin_after": len(twin_after)}
    rows = []
    for name, label in (("idle", "this kernel, idle (before the watches)"), ("busy", f"this kernel, {n} watches running"),
                        ("after", "this kernel, idle again (after)"), ("twin_idle", "idle twin, same time as 'before'"),
                        ("twin_busy", "idle twin, same time as 'running'"), ("twin_after", "idle twin, same time as 'after'")):
        base = med["twin_idle"] if name.startswith("twin") else med["idle"]
        rows.append([label, samples[name], f"{med[name]:.2f}", f"{pct[name][0]:.2f}", f"{pct[name][1]:.2f}",
                     f"{med[name] / base:.2f}x"])
    report.table(["kernel", "samples", "median ms", "p90 ms", "p99 ms", "median vs its idle"], rows,
                 caption="Round trip of a trivial cell")
    ratio = med["busy"] / med["idle"]

    def paired(a: list[float], b: list[float]) -> float:
        # Each sample of this kernel against the twin's sample taken ~25 ms later: slow
        # spells of the machine cancel out pair by pair.
        return common.median([x / y for x, y in zip(a, b)])

    pair_idle, pair_busy = paired(idle + after, twin_idle + twin_after), paired(busy, twin_busy)
    controlled = pair_busy / pair_idle
    report.note(f"This kernel, busy vs idle before: {ratio:.2f}x (the idle twin moved {med['twin_busy'] / med['twin_idle']:.2f}x "
                f"over the same periods: that part is the machine). Paired with the twin sample by sample, this kernel "
                f"took {pair_idle:.2f}x the twin's round trip while idle (before and after) and {pair_busy:.2f}x while "
                f"the watches ran: the watches' own effect is {controlled:.2f}x. The verdict uses this twin-corrected "
                f"ratio, as the shared machine's load changes far more than 20 % between the phases.")
    polls = [changes[t][1] for t in timelines]
    vis = [changes[t][0] for t in timelines]
    msgs = [per_task.get(t, 0) for t in timelines]
    report.table(["per watch", "mean", "min", "max"], [
        ["polls (simulator log)", f"{sum(polls) / n:.1f}", min(polls), max(polls)],
        ["visible changes: (status, progress) changed", f"{sum(vis) / n:.1f}", min(vis), max(vis)],
        ["comm_msg on its card's widgets", f"{sum(msgs) / n:.1f}", min(msgs), max(msgs)],
        ["comm_msg minus visible changes", f"{sum(excess.values()) / n:.1f}", min(excess.values()), max(excess.values())],
    ] + [[f"  of which {label}", f"{sum(kinds[t][key] for t in timelines) / n:.1f}", min(kinds[t][key] for t in timelines),
          max(kinds[t][key] for t in timelines)] for key, label in KINDS], caption="Comm traffic")
    report.note(f"Board-level widgets (header, Stop all): {board_msgs} comm_msg in all ({board_msgs / n:.1f} per watch); "
                f"{unknown} comm_msg on other models; {len(comm_msgs)} comm_msg and "
                f"{sum(1 for m in messages if m['msg_type'] == 'comm_open')} comm_open in all. "
                f"Busiest model: {rates.get(worst_model, 0) if worst_model else 0} messages in 1 s "
                f"({'the board header' if worst_model == info.get('header') else 'on the board' if worst_model in board else 'on a card'}); busiest model on a card: "
                f"{max((v for mid, v in rates.items() if mid in owner), default=0)}, on the board: "
                f"{max((v for mid, v in rates.items() if mid in board), default=0)} (the board header changes once "
                f"per finished task, so it is as busy as finishes are close together).")
    report.verdict(controlled <= RTT_RATIO,
                   f"round trip within {RTT_RATIO}x of idle: {controlled:.2f}x corrected with the idle twin "
                   f"(uncorrected: {med['busy']:.2f} ms vs {med['idle']:.2f} ms before, {ratio:.2f}x)")
    report.verdict(all(e <= EXTRA_MESSAGES for e in excess.values()),
                   f"comm messages per watch <= visible changes + {EXTRA_MESSAGES}: mean {sum(msgs) / n:.1f} messages vs "
                   f"{sum(vis) / n:.1f} changes; worst watch {max(excess.values()):+d}")
    report.verdict(bool(rates) and max(rates.values()) <= MAX_RATE,
                   f"no widget model updated more than {MAX_RATE} times a second: max {max(rates.values()) if rates else 0} "
                   f"in a 1 s window")
    if succeeded != n:
        report.note(f"WARNING: only {succeeded}/{n} watches succeeded: {outcomes}")
    report.emit(args.markdown)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())

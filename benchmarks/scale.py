"""Scale benchmark: hundreds to a thousand concurrent watches in one process.

    python benchmarks/scale.py [--quick] [--sizes 200 1000] [--rate 100] [--burst 20] [--markdown PATH]

For each size N and each variant, a fresh simulator runs in a *separate* process (so its
CPU and memory are not counted) and a fresh child process of this script:

1. creates N tasks on the simulator through ``POST /_sim/tasks`` (fast timelines: visible
   after 0.2 s, queued 0.5-2 s, running 4-12 s, then SUCCESS; ``--quick``: 1-3 s), noting
   when each one becomes terminal (creation time + its durations, on the machine-wide
   monotonic clock that the simulator's request log uses too);
2. measures its RSS, then starts watching all N tasks and samples, every 0.1 s, the threads
   (ours are named ``runway-widgets*``), the RSS and the CPU time of our threads;
3. waits until every watch has ended and reports outcomes, when each completion was
   noticed, its process CPU time, and the peak RSS growth.

The parent reads the simulator's request log for the request rate (max over sliding 1 s
windows).  Variants:

* ours: ``watch(..., scheduler=Scheduler(budget=RequestBudget(rate, burst)))`` with
  ``PacingConfig(min_interval=0.2)``, so the budget, not the pacing, limits the rate;
* naive baseline: one thread per watch that polls with ``client.fetch`` and
  ``time.sleep(interval)`` (random start offset, ``interval = N / rate`` so its *average*
  rate equals the budget), like many SDKs' ``wait_for_completion`` run in threads.

Targets (ours): threads do not grow with N (at most 8); the budget is never exceeded
(no 1 s window holds more than ``rate * 1 s + burst`` requests, the token bucket's bound);
every completion is noticed (all N watches end SUCCEEDED); under 64 KB per watch (peak
RSS growth / N).  Exits 1 when a target fails.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import random
import sys
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as common  # noqa: E402

THREAD_PREFIX = "runway-widgets"
MAX_THREADS = 8
KB_PER_WATCH = 64


def timelines(n: int, seed: int, quick: bool) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    run = (1.0, 3.0) if quick else (4.0, 12.0)
    return [{"invisible_for": 0.2, "not_start_for": 0.0, "submitted_for": 0.3,
             "queued_for": round(rng.uniform(0.5, 2.0), 3), "run_for": round(rng.uniform(*run), 3)}
            for _ in range(n)]


def terminal_offset(timeline: dict[str, Any]) -> float:
    return (timeline["invisible_for"] + timeline["not_start_for"] + timeline["submitted_for"]
            + timeline["queued_for"] + timeline["run_for"])


# -- the child: one variant, one size -------------------------------------------------------------


class Sampler(threading.Thread):
    """Samples threads, RSS and our threads' CPU every ``period`` seconds."""

    def __init__(self, period: float = 0.1) -> None:
        super().__init__(name="bench-sampler", daemon=True)
        self.period = period
        self.stop_event = threading.Event()
        self.max_ours = 0
        self.max_total = 0
        self.max_rss = 0
        self.cpu: dict[int, tuple[str, float]] = {}  # native id -> (name, latest CPU seconds)

    def sample(self) -> None:
        threads = threading.enumerate()
        ours = [t for t in threads if t.name.startswith(THREAD_PREFIX)]
        self.max_ours = max(self.max_ours, len(ours))
        self.max_total = max(self.max_total, len(threads))
        self.max_rss = max(self.max_rss, common.rss_bytes())
        for t in ours:
            if t.native_id is not None:
                seconds = common.thread_cpu_seconds(t.native_id)
                if seconds is not None:
                    self.cpu[t.native_id] = (t.name, seconds)

    def run(self) -> None:
        while not self.stop_event.wait(self.period):
            self.sample()


def child(args: argparse.Namespace) -> int:
    from runway_widgets import Client, PacingConfig, RequestBudget, watch
    from runway_widgets.errors import RunwayWidgetsError
    from runway_widgets.scheduler import Scheduler
    from runway_widgets.watch import Outcome

    logging.getLogger("urllib3").setLevel(logging.ERROR)  # "connection pool is full" (naive variant)
    n, base_url = args.n, args.base_url
    client = Client(common.FAKE_KEY, base_url)
    specs = timelines(n, args.seed, args.quick)
    created: list[tuple[str, float]] = []
    for spec in specs:
        before = time.monotonic()
        task_id = common.sim_add_task(base_url, spec)
        after = time.monotonic()
        created.append((task_id, (before + after) / 2 + terminal_offset(spec)))
    ids = [task_id for task_id, _ in created]
    # Client-side send times too: the simulator's log stamps arrivals, which the scheduling
    # of threads in both processes shifts by a few ms.
    sent: list[float] = []
    fetch = client.fetch

    def timed_fetch(task_id: str) -> Any:
        sent.append(time.monotonic())
        return fetch(task_id)

    client.fetch = timed_fetch  # type: ignore[method-assign]
    terminal_at = dict(created)
    # Warm up (imports, the connection pool) so the RSS baseline holds everything but the watches.
    warm = common.sim_add_task(base_url, {"invisible_for": 0.0, "submitted_for": 0.0, "queued_for": 0.0, "run_for": 0.0})
    client.fetch(warm)
    notice: dict[str, float] = {}
    outcome: dict[str, str] = {}
    lock = threading.Lock()
    gc.collect()
    sampler = Sampler()
    sampler.sample()
    rss0 = common.rss_bytes()
    sampler.start()
    t0, cpu0 = time.monotonic(), time.process_time()
    info: dict[str, Any] = {}

    if args.variant == "ours":
        scheduler = Scheduler(budget=RequestBudget(rate=args.rate, burst=args.burst))
        # refresh_period=0: the simulator updates continuously (no 15 s gateway ticks to aim at).
        pacing = PacingConfig(min_interval=0.2, refresh_period=0.0)

        def on_update(update: Any) -> None:
            if update.done:
                with lock:
                    notice.setdefault(update.task_id, time.monotonic())
                    outcome[update.task_id] = update.outcome.value

        watches = [watch(task_id, client=client, scheduler=scheduler, pacing=pacing, on_update=on_update)
                   for task_id in ids]
        deadline = time.monotonic() + args.wait_limit
        for handle in watches:
            try:
                handle.wait(max(0.1, deadline - time.monotonic()))
            except (RunwayWidgetsError, TimeoutError):
                pass
        t1, cpu1 = time.monotonic(), time.process_time()
        sampler.sample()  # before the idle threads exit
        info["spent"] = scheduler.budget.spent
        for handle in watches:
            outcome.setdefault(handle.task_id, handle.outcome.value)
        scheduler.shutdown()
    else:
        interval = n / args.rate
        rng = random.Random(args.seed)
        offsets = [rng.uniform(0.0, interval) for _ in ids]
        stop = threading.Event()

        def poll(task_id: str, offset: float) -> None:
            if stop.wait(offset):
                return
            while True:
                try:
                    snap = client.fetch(task_id)
                except RunwayWidgetsError:
                    snap = None
                if snap is not None and snap.is_terminal:
                    with lock:
                        notice[task_id] = time.monotonic()
                        outcome[task_id] = Outcome.SUCCEEDED.value if snap.status.upper() in (
                            "SUCCESS", "SUCCEEDED") else snap.status
                    return
                if stop.wait(interval):
                    return

        threads = [threading.Thread(target=poll, args=(task_id, off), name=f"naive-poller-{i}", daemon=True)
                   for i, (task_id, off) in enumerate(zip(ids, offsets))]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + args.wait_limit
        for thread in threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        t1, cpu1 = time.monotonic(), time.process_time()
        sampler.sample()
        stop.set()
    sampler.stop_event.set()
    sampler.join()
    lateness = [notice[t] - terminal_at[t] for t in ids if t in notice]
    poller = sum(cpu for name, cpu in sampler.cpu.values() if name == "runway-widgets-poller")
    workers = sum(cpu for name, cpu in sampler.cpu.values() if name.startswith("runway-widgets-http"))
    client.close()
    result = {
        "variant": args.variant, "n": n, "wall": t1 - t0, "cpu": cpu1 - cpu0, "poller_cpu": poller,
        "worker_cpu": workers, "max_threads_ours": sampler.max_ours, "max_threads_total": sampler.max_total,
        "rss0": rss0, "rss_peak": sampler.max_rss,
        "succeeded": sum(1 for t in ids if outcome.get(t) == "succeeded"),
        "outcomes": {o: sum(1 for v in outcome.values() if v == o) for o in set(outcome.values())},
        "noticed": len(lateness), "lateness": lateness, "first_request_after": t0,
        "client_peak_1s": common.max_in_window([t for t in sent if t >= t0], 1.0), **info,
    }
    print(json.dumps(result))
    return 0


# -- the parent -------------------------------------------------------------------------------------


def run_variant(args: argparse.Namespace, n: int, variant: str) -> dict[str, Any]:
    with common.simulator_process() as sim:
        base_url = sim.base_url
        wait_limit = 60.0 + 3 * n / args.rate + 15.0
        cmd = [sys.executable, os.path.abspath(__file__), "--child", variant, "--n", str(n), "--base-url", base_url,
               "--rate", str(args.rate), "--burst", str(args.burst), "--seed", str(args.seed),
               "--wait-limit", str(wait_limit)] + (["--quick"] if args.quick else [])
        result = common.run_json(cmd, timeout=wait_limit + 120.0)
        log = common.sim_requests(base_url)
    feed = [r["time"] for r in log if r["path"] == "/runway/feed" and r["time"] >= result["first_request_after"]]
    result["requests"] = len(feed)
    result["peak_1s"] = common.max_in_window(feed, 1.0)
    span = (max(feed) - min(feed)) if len(feed) > 1 else 0.0
    result["mean_rate"] = len(feed) / span if span > 0 else float("nan")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one small size, short timelines (CI smoke)")
    parser.add_argument("--sizes", type=int, nargs="+", help="numbers of watches (default 200 1000; --quick: 50)")
    parser.add_argument("--rate", type=float, default=100.0, help="request budget, requests/s (default 100)")
    parser.add_argument("--burst", type=float, default=20.0, help="request budget burst (default 20)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-baseline", action="store_true", help="skip the thread-per-watch baseline")
    parser.add_argument("--markdown", metavar="PATH", help="append the tables as Markdown to PATH")
    parser.add_argument("--child", choices=("ours", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--wait-limit", type=float, default=300.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.variant = args.child
        return child(args)
    sizes = args.sizes or ([50] if args.quick else [200, 1000])
    bound = args.rate + args.burst
    report = common.Report(f"Scale: {', '.join(map(str, sizes))} concurrent watches in one process")
    report.note(f"Budget RequestBudget(rate={args.rate:g}, burst={args.burst:g}): at most {bound:g} requests in any 1 s "
                f"window. Ours: one Scheduler with that budget, PacingConfig(min_interval=0.2, refresh_period=0) (the simulator does not tick). Baseline: one thread "
                f"per watch, client.fetch + time.sleep(N/rate) (random start offset; same average rate as the "
                f"budget). Simulator in a separate process; tasks run {'1-3' if args.quick else '4-12'} s "
                f"after 1-2.5 s queued. Memory = peak RSS growth after the watches start / N. CPU = client process "
                f"CPU per minute of wall time; 'poller' = the scheduler thread alone.")
    rows, results = [], []
    for n in sizes:
        for variant in ("ours",) if args.no_baseline else ("ours", "naive"):
            started = time.monotonic()
            print(f"  running {variant} N={n} ...", flush=True)
            r = run_variant(args, n, variant)
            r["bench_seconds"] = time.monotonic() - started
            results.append(r)
            minutes = r["wall"] / 60.0
            per_watch_kb = (r["rss_peak"] - r["rss0"]) / n / 1024
            late = r["lateness"]
            rows.append([
                "ours (shared poller)" if variant == "ours" else "naive: thread per watch", n,
                r["max_threads_ours"] if variant == "ours" else r["max_threads_total"] - 2,
                r["max_threads_total"], r["peak_1s"], common.fmt(r["mean_rate"], 1),
                f"{r['succeeded']}/{n}", common.fmt(common.percentile(late, 50)), common.fmt(common.percentile(late, 95)),
                common.fmt(r["cpu"] / minutes, 1),
                common.fmt(r["poller_cpu"] / minutes, 2) if variant == "ours" else "-",
                common.fmt(per_watch_kb, 1), common.fmt(r["wall"], 1),
            ])
    headers = ["variant", "N", "pollers' threads", "all threads", "peak req/1s", "mean req/s", "succeeded",
               "late p50 s", "late p95 s", "CPU s/min", "poller CPU s/min", "KB/watch", "wall s"]
    report.table(headers, rows)
    ours = [r for r in results if r["variant"] == "ours"]
    naive = {r["n"]: r for r in results if r["variant"] == "naive"}
    ratio = []
    for r in ours:
        b = naive.get(r["n"])
        if b:
            ours_kb = (r["rss_peak"] - r["rss0"]) / r["n"] / 1024
            base_kb = (b["rss_peak"] - b["rss0"]) / b["n"] / 1024
            ratio.append(f"N={r['n']}: threads {r['max_threads_ours']} vs {b['max_threads_total'] - 2} "
                         f"({(b['max_threads_total'] - 2) / max(1, r['max_threads_ours']):.0f}x fewer), "
                         f"memory {ours_kb:.1f} vs {base_kb:.1f} KB/watch ({base_kb / ours_kb if ours_kb > 0 else float('inf'):.1f}x less)")
    if ratio:
        report.note("Ours vs the naive baseline: " + "; ".join(ratio) + ".")
    report.note("Where ours spends its CPU (s per minute): " + "; ".join(
        f"N={r['n']}: poller thread {r['poller_cpu'] / r['wall'] * 60:.2f}, HTTP workers {r['worker_cpu'] / r['wall'] * 60:.2f}, "
        f"whole process {r['cpu'] / r['wall'] * 60:.2f}" for r in ours) + ". Client-side peak of requests sent in 1 s "
        "(stamped as each poll starts): " + ", ".join(f"N={r['n']}: {r['client_peak_1s']}" for r in results if r['variant'] == 'ours') + ".")
    report.note("('pollers' threads' = threads named runway-widgets* for ours, the per-watch threads for the baseline; "
                "'all threads' includes the main and sampler threads.)")
    threads = [r["max_threads_ours"] for r in ours]
    # The pool is bounded (1 poller + max_workers=4); how many of its workers spawn depends on
    # how many polls overlap, not on N, so "no growth" means: under the same fixed cap at every N.
    report.verdict(all(t <= MAX_THREADS for t in threads),
                   f"threads do not grow with N (at most {MAX_THREADS} at every N): "
                   + ", ".join(f"N={r['n']}: {r['max_threads_ours']}" for r in ours))
    report.verdict(all(r["peak_1s"] <= bound for r in ours),
                   f"budget never exceeded (<= {bound:g} requests in any 1 s window of the simulator's log): "
                   + ", ".join(f"N={r['n']}: peak {r['peak_1s']} ({r['peak_1s'] / bound:.2f}x of the bound; as sent by "
                               f"the client: {r['client_peak_1s']}), {r['requests']} requests, budget spent "
                               f"{r.get('spent', '?')}" for r in ours))
    report.verdict(all(r["succeeded"] == r["n"] and r["noticed"] == r["n"] for r in ours),
                   "every completion noticed (all watches SUCCEEDED): "
                   + ", ".join(f"N={r['n']}: {r['succeeded']}/{r['n']} (lateness p50 "
                               f"{common.percentile(r['lateness'], 50):.2f} s, p95 {common.percentile(r['lateness'], 95):.2f} s)"
                               for r in ours))
    per_watch = [(r["n"], (r["rss_peak"] - r["rss0"]) / r["n"] / 1024) for r in ours]
    report.verdict(all(kb < KB_PER_WATCH for _, kb in per_watch),
                   f"under {KB_PER_WATCH} KB per watch: " + ", ".join(f"N={n}: {kb:.1f} KB" for n, kb in per_watch))
    report.emit(args.markdown)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())

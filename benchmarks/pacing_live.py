"""Pacing on real sockets: 12 concurrent CLI watches vs the Runway SDK's polling, wall clock.

    python benchmarks/pacing_live.py [--quick] [--period P] [--tasks N] [--seed S] [--markdown PATH]

The simulator (in this process, on 127.0.0.1) refreshes every task in one loop every
``--period`` seconds at a random phase.  Short tasks (SUBMITTED until the first tick,
queued U(0, 20) s, running U(10, 40) s; 30 % report "0%" until done) are created twice,
with the same timelines: one set is watched by a single ``runway-watch`` process (the
real CLI: client, scheduler, shared gateway cadence, request budget), the other by the
Runway SDK's policy (a thread per task, sleeping U(4.5, 7.5) s before every poll).  Both
run at the same time.  Lags and requests come from the simulator's request log.

The same tasks, phase and period then run through the virtual-clock model of
``benchmarks/pacing.py``, many times over with fresh random draws (the SDK's sleeps, our
jitter): each draw is what one run of this benchmark would read if the model were the
truth.  The verdict is that the real-socket ratios (ours / SDK) lie inside the model's
central 95 % of those single-run ratios (with 12 tasks a median is noisy: a fixed band of
+-0.3 around the model's mean failed runs that were well inside that spread).  Exits 1
when they do not.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import threading
import time
from typing import List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as common  # noqa: E402
import pacing  # noqa: E402

from runway_widgets.simulator import Simulator, Timeline, task_view  # noqa: E402

DRAWS = 400  # single-run draws of the model: its spread at this benchmark's size
COVER = 95.0  # % of the model's single-run ratios the real ones must fall among


def timelines(n: int, rng: random.Random) -> List[Timeline]:
    return [Timeline(invisible_for=rng.uniform(0.0, 2.0), submitted_for=0.5, queued_for=rng.uniform(0.0, 20.0),
                     run_for=rng.uniform(10.0, 40.0), progress_style="jump" if rng.random() < 0.3 else "percent")
            for _ in range(n)]


def sdk_watch(base_url: str, task_id: str, rng: random.Random, stop: threading.Event) -> None:
    """The Runway SDK's loop: sleep 6 +- 1.5 s, poll, until a terminal status."""
    while not stop.wait(rng.uniform(4.5, 7.5)):
        try:
            answer = common.http_json("POST", f"{base_url}/runway/feed", {"task_id": task_id},
                                      {"Authorization": f"Bearer {common.FAKE_KEY}"})
        except Exception:  # a refused poll: the SDK would retry on its next round
            continue
        data = answer.get("data") if isinstance(answer, dict) else None
        if isinstance(data, dict) and data.get("status") in ("SUCCESS", "FAILURE"):
            return


def measure(sim: Simulator, ids: Sequence[str]) -> Tuple[List[float], List[int]]:
    """(lags, requests) per task from the request log: first poll that saw the finish."""
    lags, requests = [], []
    log = [r for r in sim.requests if r.path == "/runway/feed"]
    for task_id in ids:
        task = sim._tasks[task_id]  # the benchmark owns this simulator: read its clocks
        polls = sorted(r.time for r in log if r.task_id == task_id)
        done = [t for t in polls if task_view(task.timeline, t - task.created_mono)["terminal"]]
        if not done:
            raise RuntimeError(f"task {task_id} was never seen finished")
        lags.append(done[0] - (task.created_mono + visible_end(task.timeline)))
        requests.append(len(polls))
    return lags, requests


def visible_end(timeline: Timeline) -> float:
    """Seconds after creation at which the terminal state shows (first tick after the end)."""
    end = timeline.invisible_for + timeline.submitted_for + timeline.queued_for + timeline.run_for
    period, phase = timeline.refresh_period, timeline.refresh_phase
    k = -(-(end + phase) // period)  # ceil
    return max(k * period - phase, end)


def virtual(sim: Simulator, ids: Sequence[str], seed: int) -> Tuple[pacing.Stats, pacing.Stats, List[float], List[float]]:
    """The same tasks through the virtual-clock model: (ours, SDK) over every draw, and the
    lag and request ratios (ours / SDK) that each single draw reads."""
    t0 = min(sim._tasks[i].created_mono for i in ids)
    period = sim.refresh_period or 0.0
    gate = pacing.Gate(period, (sim._epoch + sim.refresh_phase - t0) % period)
    tasks = []
    for task_id in ids:
        task = sim._tasks[task_id]
        tl, created = task.timeline, task.created_mono - t0
        start = created + tl.invisible_for + tl.submitted_for + tl.queued_for
        tasks.append(pacing.Task(created, created + tl.invisible_for, start, tl.run_for, start + tl.run_for,
                                 False, tl.progress_style == "jump"))
    pooled: Tuple[List[pacing.Result], List[pacing.Result]] = ([], [])
    lag_ratios, request_ratios = [], []
    for r in range(DRAWS):
        ours = pacing.ours(tasks, gate, random.Random(f"{seed}/ours/{r}"))
        sdk = pacing.sdk(tasks, gate, random.Random(f"{seed}/sdk/{r}"))
        pooled[0].extend(ours)
        pooled[1].extend(sdk)
        lag_ratios.append(common.median([max(0.0, lag) for lag, _ in ours]) /
                          max(1e-9, common.median([max(0.0, lag) for lag, _ in sdk])))
        request_ratios.append(sum(n for _, n in ours) / sum(n for _, n in sdk))
    return pacing.stats(pooled[0]), pacing.stats(pooled[1]), lag_ratios, request_ratios


def spread(values: Sequence[float]) -> Tuple[float, float]:
    """The central :data:`COVER` % of ``values``."""
    tail = (100.0 - COVER) / 2
    return common.percentile(values, tail), common.percentile(values, 100.0 - tail)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Wall-clock pacing check on real sockets (see the module docstring).")
    parser.add_argument("--period", type=float, default=10.0, help="the simulator's refresh period, s (default 10)")
    parser.add_argument("--tasks", type=int, default=12, help="concurrent watches per policy (default 12)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="the same (it is short already): for run_all")
    parser.add_argument("--markdown", metavar="PATH")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    scripts = timelines(args.tasks, rng)
    started = time.monotonic()
    with Simulator(refresh_period=args.period, refresh_phase=rng.uniform(0.0, args.period)) as sim:
        ours_ids = [sim.add_task(common.FAKE_KEY, tl) for tl in scripts]
        sdk_ids = [sim.add_task(common.FAKE_KEY, tl) for tl in scripts]
        env = {**os.environ, "COMETAPI_KEY": common.FAKE_KEY, "PYTHONUNBUFFERED": "1"}
        cli = common.spawn([sys.executable, "-m", "runway_widgets.cli", "--base-url", sim.base_url, "--json",
                            "--timeout", "300", *ours_ids], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=str(common.REPO))
        stop = threading.Event()
        threads = [threading.Thread(target=sdk_watch, args=(sim.base_url, i, random.Random(f"{args.seed}/{i}"), stop),
                                    daemon=True) for i in sdk_ids]
        try:
            for thread in threads:
                thread.start()
            out, err = cli.communicate(timeout=240)
            for thread in threads:
                thread.join(120)
        finally:
            stop.set()
            common.stop_process(cli)
        if cli.returncode != 0:
            raise RuntimeError(f"runway-watch exited {cli.returncode}: {err[-2000:]}")
        ours_lags, ours_req = measure(sim, ours_ids)
        sdk_lags, sdk_req = measure(sim, sdk_ids)
        model_ours, model_sdk, lag_draws, request_draws = virtual(sim, ours_ids, args.seed)
    seconds = time.monotonic() - started
    live_lag = common.median(ours_lags) / common.median(sdk_lags)
    live_req = sum(ours_req) / sum(sdk_req)
    model_lag, model_req = model_ours.p50 / model_sdk.p50, model_ours.requests / model_sdk.requests
    report = common.Report(f"Pacing on real sockets: {args.tasks} `runway-watch` watches vs the Runway SDK, "
                           f"refresh every {args.period:g} s ({seconds:.0f} s wall clock)")
    report.note("Short tasks (queued 0-20 s, running 10-40 s) on the simulator with one refresh loop at a random "
                "phase; both policies watch copies of the same tasks at the same time. Lag = first poll that saw "
                "the finish - the tick that showed it.")
    report.table(["policy", "p50 lag (s)", "p95 lag (s)", "requests/task", "p50 vs SDK", "requests vs SDK"], [
        ["ours: runway-watch (real sockets)", f"{common.median(ours_lags):.2f}", f"{common.percentile(ours_lags, 95):.2f}",
         f"{sum(ours_req) / len(ours_req):.1f}", f"{live_lag:.2f}x", f"{live_req:.2f}x"],
        ["Runway SDK (real sockets)", f"{common.median(sdk_lags):.2f}", f"{common.percentile(sdk_lags, 95):.2f}",
         f"{sum(sdk_req) / len(sdk_req):.1f}", "1.00x", "1.00x"],
        ["ours: virtual clock, same tasks", f"{model_ours.p50:.2f}", f"{model_ours.p95:.2f}",
         f"{model_ours.requests:.1f}", f"{model_lag:.2f}x", f"{model_req:.2f}x"],
        ["Runway SDK: virtual clock", f"{model_sdk.p50:.2f}", f"{model_sdk.p95:.2f}", f"{model_sdk.requests:.1f}",
         "1.00x", "1.00x"],
    ])
    lag_lo, lag_hi = spread(lag_draws)
    req_lo, req_hi = spread(request_draws)
    report.note(f"The model's single-run ratios over {DRAWS} draws of its random parts: p50 lag vs SDK "
                f"{lag_lo:.2f}-{lag_hi:.2f}x, requests {req_lo:.2f}-{req_hi:.2f}x (central {COVER:g} %); "
                f"pooled over all draws {model_lag:.2f}x and {model_req:.2f}x.")
    report.verdict(lag_lo <= live_lag <= lag_hi and req_lo <= live_req <= req_hi,
                   f"real sockets agree with the virtual clock within noise: p50 lag vs SDK {live_lag:.2f}x "
                   f"(model {model_lag:.2f}x; one run reads {lag_lo:.2f}-{lag_hi:.2f}x), requests vs SDK "
                   f"{live_req:.2f}x (model {model_req:.2f}x; {req_lo:.2f}-{req_hi:.2f}x)")
    report.emit(args.markdown)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())

"""Download benchmark: saving a finished video, against curl on the same URL.

    python benchmarks/download.py [--quick] [--size-mb 200] [--rounds 3] [--markdown PATH]

The simulator runs in a separate process and serves a synthetic video of ``--size-mb``
MiB (``Timeline(media_size=...)``; default 200, ``--quick`` 20) behind a signed URL.
Each round, in alternating order:

* curl: ``curl -s -o FILE URL`` (its own ``%{time_total}``, i.e. the transfer without
  process start-up);
* ours: a fresh child process that imports ``runway_widgets.download`` and times
  ``save_video(url, folder, task_id)`` -- what ``runway-watch --save`` and
  ``watch(..., save=...)`` call -- and reports ``ru_maxrss`` (its peak RSS);
* control: the same child, everything but the download, for the peak RSS without it.

Both write to the same folder.  Also shown: curl to /dev/null (no disk) and the
simulator's CPU use while serving (one Python thread streams the bytes: near 100 % of a
core means the simulator is the bottleneck, for both clients alike).

Targets: at least 0.8x curl's throughput; peak memory growth (download peak RSS minus
the control's) under 32 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as common  # noqa: E402

CURL = shutil.which("curl") or "/usr/bin/curl"
MIB = 1024 * 1024
TARGET_RATIO = 0.8
TARGET_GROWTH_MB = 32


def child(args: argparse.Namespace) -> int:
    from runway_widgets.download import save_video

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    elapsed, size = 0.0, 0
    if not args.control:
        started = time.perf_counter()
        path = save_video(args.url, args.dest, args.task_id)
        elapsed = time.perf_counter() - started
        size = path.stat().st_size
        path.unlink()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"elapsed": elapsed, "size": size, "base_kib": base, "peak_kib": peak}))
    return 0


def run_curl(url: str, dest: str) -> tuple[float, int]:
    proc = common.spawn([CURL, "-s", "-o", dest, "-w", "%{time_total} %{size_download}", url],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        common.stop_process(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"curl exited {proc.returncode}: {err}")
    seconds, size = out.split()
    if dest != os.devnull:
        os.unlink(dest)
    return float(seconds), int(float(size))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 MiB, 4 rounds (CI smoke)")
    parser.add_argument("--size-mb", type=int, help="MiB to download (default 200; --quick 20)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3; --quick 2)")
    parser.add_argument("--markdown", metavar="PATH", help="append the table as Markdown to PATH")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--control", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--dest", help=argparse.SUPPRESS)
    parser.add_argument("--task-id", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    size_mb = args.size_mb or (20 if args.quick else 200)
    rounds = args.rounds or (4 if args.quick else 3)  # small transfers are noisier: more rounds
    size = size_mb * MIB
    report = common.Report(f"Download: a {size_mb} MiB video from the simulator, best of {rounds} rounds each")
    if not os.path.exists(CURL):
        report.note(f"curl is not installed ({CURL} missing): no baseline, no verdict on throughput.")
    from runway_widgets import Client

    folder = tempfile.mkdtemp(prefix="rw-download-")
    try:
        with common.simulator_process() as sim:
            timeline = {"invisible_for": 0.0, "submitted_for": 0.0, "queued_for": 0.0, "run_for": 0.0,
                        "media_size": size}
            task_id = common.sim_add_task(sim.base_url, timeline)
            with Client(common.FAKE_KEY, sim.base_url) as client:
                url = client.fetch(task_id).result_url
            assert url, "the simulated task gave no result URL"
            ours_cmd = [sys.executable, os.path.abspath(__file__), "--child", "--url", url, "--dest", folder + os.sep,
                        "--task-id", task_id]
            times: dict[str, list[float]] = {"curl": [], "curl /dev/null": [], "ours": []}
            server_cpu: dict[str, list[float]] = {k: [] for k in times}
            peaks, bases, controls = [], [], []
            for i in range(rounds):
                order = ["curl", "ours", "curl /dev/null"] if i % 2 == 0 else ["ours", "curl", "curl /dev/null"]
                for name in order:
                    if name.startswith("curl") and not os.path.exists(CURL):
                        continue
                    cpu0, wall0 = common.process_cpu_seconds(sim.pid), time.perf_counter()
                    if name == "ours":
                        result = common.run_json(ours_cmd, timeout=600)
                        seconds, got = result["elapsed"], result["size"]
                        peaks.append(result["peak_kib"])
                        bases.append(result["base_kib"])
                    else:
                        dest = os.devnull if name.endswith("null") else os.path.join(folder, "curl.mp4")
                        seconds, got = run_curl(url, dest)
                    cpu1, wall1 = common.process_cpu_seconds(sim.pid), time.perf_counter()
                    if got != size:
                        raise RuntimeError(f"{name} got {got} bytes, expected {size}")
                    times[name].append(seconds)
                    if cpu0 is not None and cpu1 is not None:
                        server_cpu[name].append((cpu1 - cpu0) / max(1e-9, wall1 - wall0))
                controls.append(common.run_json(ours_cmd + ["--control"], timeout=120)["peak_kib"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    def best(name: str) -> float:
        return min(times[name]) if times[name] else float("nan")

    rows = []
    for name, label in (("curl", "curl -s -o FILE"), ("curl /dev/null", "curl -s -o /dev/null (no disk)"),
                        ("ours", "save_video (runway-watch --save)")):
        if not times[name]:
            continue
        rows.append([label, common.fmt(best(name), 3), common.fmt(common.median(times[name]), 3),
                     common.fmt(size / MIB / best(name), 0), common.fmt(best("curl") / best(name) if times["curl"] else float("nan")),
                     common.fmt(max(server_cpu[name]) * 100, 0) if server_cpu[name] and name != "ours" else "-"])
    report.table(["client", "best s", "median s", "MiB/s (best)", "throughput vs curl", "simulator CPU % (curl runs)"], rows)
    growth_mib = (max(peaks) - max(controls)) / 1024
    in_process = (max(peaks) - min(bases)) / 1024
    report.note(f"Peak RSS of the downloading process: {max(peaks) / 1024:.1f} MiB; the same process without the "
                f"download: {max(controls) / 1024:.1f} MiB (growth {growth_mib:.1f} MiB; {in_process:.1f} MiB above the "
                f"RSS it had just before save_video).")
    if times["curl"] and times["curl /dev/null"]:
        report.note(f"Against curl writing nowhere (/dev/null: the network path alone), save_video writing the file "
                    f"reaches {best('curl /dev/null') / best('ours'):.2f}x. curl writes the file in pieces of at most 16 KiB "
                    f"(4-16 KiB, checked with strace; save_video writes 1 MiB pieces), which is why curl to a file is "
                    f"much slower than curl to /dev/null here.")
    if server_cpu["curl /dev/null"] and max(server_cpu["curl /dev/null"]) > 0.85:
        report.note("The simulator used most of a core while serving: it is likely the bottleneck (both clients share "
                    "it, so the ratio stays fair, but the absolute MiB/s are the simulator's, not the clients').")
    if times["curl"]:
        ratio = best("curl") / best("ours")
        report.verdict(ratio >= TARGET_RATIO, f"at least {TARGET_RATIO}x curl's throughput: "
                       f"{size / MIB / best('ours'):.0f} vs {size / MIB / best('curl'):.0f} MiB/s ({ratio:.2f}x)")
    report.verdict(growth_mib < TARGET_GROWTH_MB,
                   f"peak memory growth under {TARGET_GROWTH_MB} MB: {growth_mib:.1f} MiB")
    report.emit(args.markdown)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())

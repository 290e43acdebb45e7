"""Run every benchmark and write ``benchmarks/RESULTS.md``.  ``make bench`` calls this.

    python benchmarks/run_all.py [--quick] [--only NAME ...] [--output PATH]

Each benchmark runs as a subprocess (in its own process group, stopped by its pid if this
script is interrupted) with ``--markdown`` pointing at a scratch file; its output is
streamed here as it comes.  RESULTS.md gets the date, the machine (nproc, CPU, Python,
load average before and after: the machine is shared, so the load says how much to trust
absolute numbers), a summary of every PASS/FAIL line, then each benchmark's tables.

Exits 1 if a target failed or a benchmark crashed.  A benchmark exits 1 when one of its
targets failed (it printed a ``FAIL:`` line); any other non-zero exit, or 1 without a
``FAIL:`` line, is a crash.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as common  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

#: name, script, extra arguments in quick mode (None: pass --quick), what it checks
BENCHMARKS: list[tuple[str, str, list[str] | None, str]] = [
    ("pacing", "pacing.py", None, "refresh period x task length x watches: detection lag and requests vs the Runway SDK"),
    ("pacing-live", "pacing_live.py", None, "12 CLI watches on real sockets vs the SDK's polling, one refresh period"),
    ("scale", "scale.py", None, "200 and 1,000 watches: threads, request budget, completions, memory"),
    ("kernel", "kernel.py", None, "50 widget watches in a real kernel: round trip, comm messages, update rate"),
    ("startup", "startup.py", None, "import runway_widgets and %load_ext vs import requests"),
    ("download", "download.py", None, "saving a 200 MB video vs curl: throughput and peak memory"),
]
TIMEOUT = 1800.0


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def run(name: str, script: str, extra: list[str], markdown: str) -> tuple[int, str, float]:
    """Run one benchmark, streaming its output; return (exit code, output, seconds)."""
    cmd = [sys.executable, os.path.join(HERE, script), "--markdown", markdown, *extra]
    print(f"\n##### {name}: {' '.join(cmd[1:])}", flush=True)
    started = time.monotonic()
    lines: list[str] = []
    proc = common.spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(common.REPO))

    def overrun() -> None:  # a hung benchmark: TERM lets its `finally` stop what it started
        if proc.poll() is None:
            lines.append(f"run_all: {name} took longer than {TIMEOUT:g} s; stopped.\n")
            os.killpg(proc.pid, signal.SIGTERM)

    watchdog = threading.Timer(TIMEOUT, overrun)
    watchdog.daemon = True
    watchdog.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "Kernel is running over TCP without encryption" in line:
                continue  # jupyter_client's warning about the loopback kernel, once per kernel
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
        proc.wait(timeout=30)
    finally:
        watchdog.cancel()
        common.stop_process(proc)
    return proc.returncode if proc.returncode is not None else -1, "".join(lines), time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run, not results)")
    parser.add_argument("--only", nargs="+", choices=[b[0] for b in BENCHMARKS], help="run only these")
    parser.add_argument("--output", default=os.path.join(HERE, "RESULTS.md"), help="where to write (default benchmarks/RESULTS.md)")
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHMARKS if not args.only or b[0] in args.only]
    started_at = datetime.datetime.now().astimezone()
    load_before = load()
    sections, summary, crashed = [], [], []
    with tempfile.TemporaryDirectory(prefix="rw-bench-") as scratch:
        for name, script, quick_args, about in chosen:
            extra = (quick_args if quick_args is not None else ["--quick"]) if args.quick else []
            markdown = os.path.join(scratch, f"{name}.md")
            code, output, seconds = run(name, script, extra, markdown)
            verdicts = [line.strip() for line in output.splitlines() if line.startswith(("PASS:", "FAIL:"))]
            if code != 0 and not (code == 1 and any(v.startswith("FAIL:") for v in verdicts)):
                crashed.append(name)
                verdicts.append(f"CRASHED: exit code {code}")
            summary += [(name, about if i == 0 else "", v) for i, v in enumerate(verdicts)] or [
                (name, about, "(no verdict printed)")]
            body = open(markdown, encoding="utf-8").read().strip() if os.path.exists(markdown) else ""
            if code != 0:
                tail = "\n".join(output.strip().splitlines()[-25:])
                body += f"\n\n**{name} exited with code {code}**; the end of its output:\n\n```\n{tail}\n```"
            command = " ".join([f"python benchmarks/{script}", *extra])
            sections.append(f"## {name}\n\n`{command}` ({seconds:.0f} s)\n\n{body}\n")
    finished_at = datetime.datetime.now().astimezone()
    passed = sum(1 for *_, v in summary if v.startswith("PASS"))
    failed = sum(1 for *_, v in summary if not v.startswith("PASS"))
    header = [
        "# Benchmark results",
        "",
        f"Written by `{'python benchmarks/run_all.py --quick' if args.quick else 'make bench'}` "
        f"({'QUICK smoke sizes: not results' if args.quick else 'full sizes'}), "
        f"{started_at:%Y-%m-%d %H:%M %Z} to {finished_at:%H:%M %Z}.",
        "",
        f"- Machine: nproc {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}, "
        f"{cpu_model()}, {platform.platform()}",
        f"- Python {platform.python_version()} ({sys.executable})",
        f"- Load average (1/5/15 min) before: {load_before}; after: {load()}. The machine is shared and noisy: every "
        "benchmark measures its own baseline in the same run, so read the ratios, not the absolute numbers.",
        "",
        f"## Summary: {passed} passed, {failed} failed",
        "",
        common.markdown_table(["benchmark", "what", "verdict"], [[n, a, v] for n, a, v in summary], numeric=False),
        "",
    ]
    with open(args.output, "w", encoding="utf-8") as fh:
        fh.write("\n".join(header) + "\n" + "\n".join(sections))
    print(f"\nWrote {args.output}: {passed} passed, {failed} failed" + (f"; crashed: {', '.join(crashed)}" if crashed else ""))
    return 1 if crashed or failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared helpers for the benchmark scripts: tables, Markdown, statistics, subprocesses.

Standard library only.  Every benchmark prints plain-text tables with a baseline measured
in the same run (the machine is shared and noisy: ratios, not absolute claims), one
``PASS: ...`` or ``FAIL: ...`` line per target, and with ``--markdown PATH`` appends the
same tables to PATH.  A benchmark exits 1 when one of its targets failed
(:attr:`Report.exit_code`), so ``make bench`` and the CI smoke fail with it.  Subprocesses run in their own process group and are stopped by
their pid (``os.killpg(pid, ...)``) in a ``finally``.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout: make the package importable
    sys.path.insert(0, str(REPO))

FAKE_KEY = "made-up-benchmark-key"  # the simulator takes any non-empty key

# Simulated tasks stay out of the user's task journal (and its history): a throw-away one,
# inherited by every subprocess and kernel a benchmark starts.
if not os.environ.get("RUNWAY_WIDGETS_BENCH_JOURNAL"):
    import atexit
    import shutil
    import tempfile

    os.environ["RUNWAY_WIDGETS_BENCH_JOURNAL"] = os.environ["RUNWAY_WIDGETS_HOME"] = tempfile.mkdtemp(
        prefix="runway-bench-journal-")
    atexit.register(shutil.rmtree, os.environ["RUNWAY_WIDGETS_HOME"], True)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # so `finally` blocks stop the simulators and kernels we started


if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


# -- statistics ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN for no values."""
    data = sorted(values)
    if not data:
        return math.nan
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50.0)


def max_in_window(times: Sequence[float], window: float = 1.0) -> int:
    """The most events in any half-open window ``[t, t + window)`` (a sliding window)."""
    data = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(data):
        while data[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


# -- tables and reports -------------------------------------------------------------------------


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    body = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(line[i]) for line in body) for i in range(len(headers))]

    def fmt(line: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))

    return "\n".join([fmt(body[0]), "  ".join("-" * w for w in widths), *map(fmt, body[1:])])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: bool = True) -> str:
    """A Markdown table; with ``numeric`` every column but the first is right-aligned."""
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, headers)) + " |",
             "|" + "|".join(["---"] + ["---:" if numeric else "---"] * (len(headers) - 1)) + "|"]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


@dataclass
class Report:
    """What one benchmark prints, and appends as Markdown with ``--markdown``."""

    title: str
    text: list[str] = field(default_factory=list)
    markdown: list[str] = field(default_factory=list)
    verdicts: list[tuple[bool, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.text.append(f"== {self.title}")
        self.markdown += [f"### {self.title}", ""]

    def note(self, line: str) -> None:
        self.text.append(line)
        self.markdown += [line, ""]

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "") -> None:
        if caption:
            self.text.append(f"\n{caption}")
            self.markdown += [f"#### {caption}", ""]
        self.text.append(text_table(headers, rows))
        self.markdown += [markdown_table(headers, rows), ""]

    def verdict(self, ok: bool, line: str) -> None:
        self.verdicts.append((ok, line))
        full = f"{'PASS' if ok else 'FAIL'}: {line}"
        self.text.append(full)
        self.markdown += [f"- **{full}**"]

    @property
    def exit_code(self) -> int:
        """What the benchmark exits with: 1 when a target failed (``make bench`` fails), else 0."""
        return 1 if any(not ok for ok, _ in self.verdicts) else 0

    def emit(self, markdown_path: str | None) -> None:
        print("\n".join(self.text), flush=True)
        if markdown_path:
            with open(markdown_path, "a", encoding="utf-8") as fh:
                fh.write("\n".join(self.markdown) + "\n\n")


def fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


# -- processes ------------------------------------------------------------------------------------


def spawn(cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen:
    """Start ``cmd`` in its own process group (stop it with :func:`stop_process`)."""
    return subprocess.Popen(list(cmd), start_new_session=True, **kwargs)


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Stop a process started by :func:`spawn`, and its group, by its pid: TERM, then KILL.

    Only while the process is still running: once it has been reaped its pid may belong
    to someone else.
    """
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # its own group: pgid == pid
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout)
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass


def run_json(cmd: Sequence[str], timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a child that prints a JSON object as its last stdout line; return it (raise on failure)."""
    proc = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{cmd!r} did not finish within {timeout:g} s") from None
    finally:
        stop_process(proc)
    lines = [line for line in out.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{cmd!r} exited {proc.returncode}\nstdout:\n{out[-2000:]}\nstderr:\n{err[-4000:]}")
    return json.loads(lines[-1])


@dataclass(frozen=True)
class SimProcess:
    base_url: str
    pid: int


@contextmanager
def simulator_process(*extra: str) -> Iterator[SimProcess]:
    """The simulator in a separate process (its CPU and memory are not the client's)."""
    proc = spawn([sys.executable, "-m", "runway_widgets.simulator", "--port", "0", *extra],
                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=str(REPO))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if not match:
            raise RuntimeError(f"the simulator did not start: {line!r}")
        # Keep draining its stdout so it never blocks on a full pipe.
        threading.Thread(target=proc.stdout.read, name="bench-sim-drain", daemon=True).start()
        yield SimProcess(match.group(1), proc.pid)
    finally:
        stop_process(proc)


def http_json(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
              timeout: float = 30.0) -> Any:
    """One JSON request with the standard library (control plane and set-up only)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json",
                                                                            **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"null")


def sim_add_task(base_url: str, timeline: dict[str, Any], key: str = FAKE_KEY) -> str:
    """Create a task on a simulator process through ``POST /_sim/tasks``; returns its id."""
    answer = http_json("POST", f"{base_url}/_sim/tasks", {"key": key, "timeline": timeline})
    return answer["task_id"]


def sim_requests(base_url: str) -> list[dict[str, Any]]:
    """The simulator's request log (API requests only; control requests are not logged)."""
    return http_json("GET", f"{base_url}/_sim/requests", timeout=120.0)


# -- this process -------------------------------------------------------------------------------


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc), 0 where unknown."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def process_cpu_seconds(pid: int) -> float | None:
    """user+system CPU seconds of another process (Linux), None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def thread_cpu_seconds(native_id: int) -> float | None:
    """user+system CPU seconds of one thread of this process (Linux), None if it is gone."""
    try:
        with open(f"/proc/self/task/{native_id}/stat", encoding="ascii") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime (fields 14, 15)

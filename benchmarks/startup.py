"""Startup benchmark: what ``import runway_widgets`` and ``%load_ext runway_widgets`` cost.

    python benchmarks/startup.py [--quick] [--runs N] [--markdown PATH]

Every measurement is a fresh interpreter (this venv's python).  Each child times its own
statement with ``time.perf_counter()`` (the import alone, without interpreter start-up),
and the parent times the whole process (spawn to exit).  The variants run round-robin in
a shuffled order per round, so slow spells of the shared machine hit them all alike;
the table shows medians over ``--runs`` rounds (default 30; ``--quick`` 5).

Floors: ``python -c pass`` and ``import requests`` (runway_widgets needs requests to do
anything, so importing requests is the floor of any real use).  ``%load_ext`` runs in a
fresh ``IPython.core.interactiveshell.InteractiveShell`` and is timed against creating
that shell alone.

Targets (in-process import time; the whole-process ratio is shown too):

* ``import runway_widgets`` within 1.3x of ``import requests``.  The package loads its
  public names lazily, so this import alone loads neither requests nor the poller.
* the first real use, ``from runway_widgets import watch, Client`` (requests, the client,
  the scheduler), within 1.5x of ``import requests``: what the lazy import defers must
  not grow unnoticed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as common  # noqa: E402

TARGET = 1.3
FIRST_USE_TARGET = 1.5
_TIMED = "import time as _t\n_s = _t.perf_counter()\n{stmt}\n_e = _t.perf_counter() - _s\n{check}print(repr(_e))\n"
_SHELL = ("from IPython.core.interactiveshell import InteractiveShell\n"
          "_sh = InteractiveShell.instance()\n")

#: name -> (setup run before the clock starts, timed statement, sanity check after)
VARIANTS: dict[str, tuple[str, str, str]] = {
    "python -c pass": ("", "pass", ""),
    "import requests": ("", "import requests", ""),
    "import runway_widgets": ("", "import runway_widgets",
                              "import sys as _y\nassert 'IPython' not in _y.modules and 'ipywidgets' not in _y.modules\n"),
    "from runway_widgets import watch, Client (first use)": ("", "from runway_widgets import watch, Client", ""),
    "InteractiveShell() alone": ("", _SHELL, ""),
    "InteractiveShell() + %load_ext runway_widgets": (_SHELL, "_sh.run_line_magic('load_ext', 'runway_widgets')",
                                                      "assert 'runway_watch' in _sh.magics_manager.magics['line']\n"),
}


def run_once(setup: str, stmt: str, check: str, env: dict[str, str]) -> tuple[float, float]:
    """(in-process seconds of ``stmt``, whole-process wall seconds)."""
    code = setup + _TIMED.format(stmt=stmt, check=check)
    started = time.perf_counter()
    proc = common.spawn([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                        env=env, cwd=tempfile.gettempdir())
    try:
        out, err = proc.communicate(timeout=60)
        wall = time.perf_counter() - started
    finally:
        common.stop_process(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"{stmt!r} failed:\n{err[-3000:]}")
    return float(out.strip().splitlines()[-1]), wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds (CI smoke)")
    parser.add_argument("--runs", type=int, help="rounds (default 30; --quick 5)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--markdown", metavar="PATH", help="append the table as Markdown to PATH")
    args = parser.parse_args(argv)
    runs = args.runs or (5 if args.quick else 30)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="rw-startup-") as ipython_dir:
        # A throw-away IPython profile (no history file of the user's touched), the package
        # importable from the checkout whatever the working directory.
        env = {**os.environ, "IPYTHONDIR": ipython_dir,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(common.REPO), os.environ.get("PYTHONPATH")]))}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for setup, stmt, check in VARIANTS.values():  # warm the page cache and .pyc files
            run_once(setup, stmt, check, env)
        inproc: dict[str, list[float]] = {name: [] for name in VARIANTS}
        wall: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(runs):
            order = list(VARIANTS)
            rng.shuffle(order)
            for name in order:
                a, b = run_once(*VARIANTS[name], env)
                inproc[name].append(a)
                wall[name].append(b)
    med = {name: common.median(v) * 1000 for name, v in inproc.items()}
    medw = {name: common.median(v) * 1000 for name, v in wall.items()}
    req, reqw = med["import requests"], medw["import requests"]
    report = common.Report(f"Startup: fresh interpreters, median of {runs} rounds")
    report.note("In-process = the statement alone, timed inside the child; process = spawn to exit, timed by the "
                "parent. Ratios are against `import requests` (for %load_ext: against creating the shell alone).")
    rows = []
    for name in VARIANTS:
        shell = "load_ext" in name
        base, basew = (med["InteractiveShell() alone"], medw["InteractiveShell() alone"]) if shell else (req, reqw)
        rows.append([name, f"{med[name]:.1f}", f"{common.percentile(inproc[name], 90) * 1000:.1f}", f"{medw[name]:.1f}",
                     "-" if name == "python -c pass" or name.startswith("InteractiveShell() alone") else
                     (f"{med[name]:.1f} ms added" if shell else f"{med[name] / base:.2f}x"),
                     "-" if name == "python -c pass" or name.startswith("InteractiveShell() alone") else
                     f"{medw[name] / basew:.2f}x"])
    report.table(["variant", "in-process ms (median)", "p90 ms", "process ms (median)",
                  "in-process vs requests", "process vs floor"], rows)
    mine, minew = med["import runway_widgets"], medw["import runway_widgets"]
    first = med["from runway_widgets import watch, Client (first use)"]
    report.note(f"First real use (`from runway_widgets import watch, Client`, which loads requests and the poller) "
                f"takes {first:.1f} ms in-process, {first / req:.2f}x `import requests` ({first - req:+.1f} ms); "
                f"`%load_ext runway_widgets` adds {med['InteractiveShell() + %load_ext runway_widgets']:.1f} ms to a shell.")
    ok = mine <= TARGET * req
    report.verdict(ok, f"`import runway_widgets` within {TARGET}x of `import requests`: {mine:.1f} ms vs {req:.1f} ms "
                       f"in-process ({mine / req:.2f}x); whole process {minew:.1f} ms vs {reqw:.1f} ms ({minew / reqw:.2f}x)")
    report.verdict(first <= FIRST_USE_TARGET * req,
                   f"first real use (`from runway_widgets import watch, Client`) within {FIRST_USE_TARGET}x of "
                   f"`import requests`: {first:.1f} ms vs {req:.1f} ms in-process ({first / req:.2f}x)")
    report.emit(args.markdown)
    if os.environ.get("RW_BENCH_JSON"):
        print(json.dumps({"inproc_ms": med, "process_ms": medw}))
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())

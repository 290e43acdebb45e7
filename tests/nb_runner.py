"""Execute one notebook with nbclient in *this* interpreter's environment (run it with a venv's
python: its kernel is that venv's ipykernel).  Not a test module; see tests/kernel_envs.py.

    python tests/nb_runner.py IN.ipynb OUT.ipynb --info kernel-info.json

A probe cell is run first and removed afterwards: it writes what the kernel is (pid,
interpreter, versions) to the --info file, so the caller can check which kernel ran and
stop it if it outlives this process.  The last line printed is a JSON summary.
Errors in cells are recorded in the outputs (the caller asserts there are none); a dead
kernel or a cell timeout still writes the partial notebook, then exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import nbformat
from nbclient import NotebookClient

PROBE = '''\
def _runway_test_probe(path):
    import json, os, sys
    from importlib import metadata
    versions = {}
    for name in ("ipykernel", "ipywidgets", "ipython", "jupyter_client", "traitlets", "comm", "runway_widgets"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info = {"pid": os.getpid(), "executable": sys.executable, "prefix": sys.prefix, "versions": versions,
            "python": sys.version.split()[0], "cwd": os.getcwd(),
            "google_colab_loaded": "google.colab" in sys.modules,
            "has_cometapi_key_env": bool(os.environ.get("COMETAPI_KEY"))}
    with open(path, "w") as handle:
        json.dump(info, handle)
_runway_test_probe(%r)
del _runway_test_probe
'''


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("dest")
    parser.add_argument("--info", required=True)
    parser.add_argument("--cell-timeout", type=float, default=150.0)
    parser.add_argument("--kernel-name", default="python3")
    args = parser.parse_args()

    nb = nbformat.read(args.source, as_version=4)
    probe = nbformat.v4.new_code_cell(PROBE % os.path.abspath(args.info))
    nb.cells.insert(0, probe)
    client = NotebookClient(nb, timeout=int(args.cell_timeout), kernel_name=args.kernel_name, allow_errors=True,
                            store_widget_state=True, record_timing=True,
                            resources={"metadata": {"path": os.path.dirname(os.path.abspath(args.source))}})
    started = time.monotonic()
    status = "ok"
    try:
        client.execute()
    except BaseException as exc:  # noqa: BLE001 -- report and still save what ran
        status = f"{type(exc).__name__}: {exc}"[:2000]
    finally:
        if nb.cells and nb.cells[0] is probe:
            del nb.cells[0]
        nbformat.write(nb, args.dest)
    print(json.dumps({"status": status, "seconds": round(time.monotonic() - started, 2),
                      "runner_python": sys.executable}))
    sys.stdout.flush()
    return 0 if status == "ok" else 2


if __name__ == "__main__":
    sys.exit(main())

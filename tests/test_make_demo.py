"""``make demo`` as a new user runs it: one install, the terminal demo, then a JupyterLab whose
announced URL is the one it really serves (not a hard-coded port 8888)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import stop_group

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None or not (BIN / "jupyter-lab").exists(),
                                reason="needs make and JupyterLab")


def test_make_demo_installs_the_package_once() -> None:
    plan = subprocess.run(["make", "-n", "-B", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert plan.returncode == 0, plan.stderr
    assert len(re.findall(r"pip .*install -e", plan.stdout)) == 1, plan.stdout


def test_make_demo_announces_the_url_jupyterlab_really_serves(tmp_path: Path) -> None:
    (tmp_path / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / "01_quickstart.ipynb", tmp_path / "notebooks")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    env.pop("COMETAPI_KEY", None)
    # -o: the venv is there already (this one); everything else is the real recipe.
    proc = subprocess.Popen(["make", "-f", str(ROOT / "Makefile"), "-o", ".venv/.installed-lab", f"BIN={BIN}", "demo"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        url = None
        deadline = time.monotonic() + 90
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            found = re.search(r"open (http://127\.0\.0\.1:\d+/lab/\S+)", line)
            url = found.group(1) if found else None
        assert url is not None, "".join(seen)
        assert any("SUCCESS" in line for line in seen)  # the terminal demo ran first
        status = None
        while status is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 (loopback only)
                    status = answer.status
            except OSError:
                time.sleep(0.5)
        assert status == 200, url
    finally:
        stop_group(proc, grace=15)

"""Extra virtualenvs for the kernel tests, and running a notebook in one of them.

Standard library only: ``make`` runs this file with the system Python to build the
environments before pytest (``python3 tests/kernel_envs.py colab ipk70``), and the
session fixtures of ``tests/test_colab_env.py`` call :func:`ensure_env`, which finds them
ready (or builds them when run without ``make``).

* ``.venv-colab``: the versions Google Colab ships (ipywidgets 7.7.1, ipykernel 6.17.1,
  IPython 7.34; see docs/environment.md) plus nbclient, so notebooks run there with
  *that* venv's kernel.
* ``.venv-ipk70``: ipykernel 7.0.1, whose contextvar parent kills plain threads that send
  comm messages (ipykernel#1450, fixed in 7.1).

Each venv holds a stamp file ``.installed`` (JSON): the requirement list, the checkout it
installs editable, and a hash of ``pyproject.toml``.  If any of these changed, the venv
is deleted and built again; otherwise the stamp is only touched (so ``make`` sees it as
up to date).  A lock file in the temp dir keeps two builds of one venv from overlapping.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
RUNNER = TESTS / "nb_runner.py"
FAKE_COLAB = TESTS / "fake_colab"

#: name -> (directory under the repo root, requirements).  The pins are what the tests are
#: about; nbclient/nbformat only run the notebook and float.
ENVS: dict[str, tuple[str, tuple[str, ...]]] = {
    "colab": (".venv-colab", ("ipywidgets==7.7.1", "ipykernel==6.17.1", "ipython==7.34.0", "nbclient", "nbformat")),
    "ipk70": (".venv-ipk70", ("ipykernel==7.0.1", "nbclient", "nbformat")),
}
STAMP = ".installed"
STAMP_FORMAT = 1
INSTALL_TIMEOUT = 1200.0


def env_dir(name: str) -> Path:
    return REPO / ENVS[name][0]


def env_python(name: str) -> Path:
    return env_dir(name) / "bin" / "python"


def wanted(name: str) -> dict[str, Any]:
    """What the stamp of ``name`` must say for the venv to be reused as it is."""
    pyproject = (REPO / "pyproject.toml").read_bytes()
    return {
        "format": STAMP_FORMAT,
        "requirements": list(ENVS[name][1]),
        "editable": str(REPO),
        "pyproject_sha256": hashlib.sha256(pyproject).hexdigest(),
    }


def pins(name: str) -> dict[str, str]:
    """``{"ipykernel": "7.0.1", ...}`` for the ``==`` requirements of ``name``."""
    out = {}
    for req in ENVS[name][1]:
        if "==" in req:
            pkg, version = req.split("==", 1)
            out[pkg.strip().lower()] = version.strip()
    return out


def read_stamp(name: str) -> dict[str, Any] | None:
    try:
        return json.loads((env_dir(name) / STAMP).read_text())
    except (OSError, ValueError):
        return None


def is_ready(name: str) -> bool:
    stamp = read_stamp(name)
    return bool(stamp) and stamp.get("wanted") == wanted(name) and env_python(name).exists()


def default_python() -> str:
    """The system Python the Makefile uses (``python3``), not the venv pytest runs in."""
    return shutil.which("python3") or getattr(sys, "_base_executable", None) or sys.executable


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    tag = hashlib.sha256(str(env_dir(name)).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"runway-widgets-kernel-env-{tag}.lock"
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: list[str], log: Path, timeout: float = INSTALL_TIMEOUT) -> None:
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=REPO, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                _kill_group(proc)
    if code != 0:
        tail = log.read_text(errors="replace").splitlines()[-40:]
        raise RuntimeError(f"{cmd[:4]} failed with exit code {code}; last lines of {log}:\n" + "\n".join(tail))


def installed_versions(python: Path | str, packages: list[str]) -> dict[str, str | None]:
    code = ("import json, sys\nfrom importlib import metadata\nout = {}\n"
            "for name in sys.argv[1:]:\n"
            "    try: out[name] = metadata.version(name)\n"
            "    except metadata.PackageNotFoundError: out[name] = None\n"
            "print(json.dumps(out))")
    done = subprocess.run([str(python), "-c", code, *packages], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"cannot read versions with {python}: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def ensure_env(name: str, python: str | None = None, quiet: bool = False) -> Path:
    """Create or update the venv ``name`` (idempotent); returns its directory."""
    target = env_dir(name)
    want = wanted(name)
    with _locked(name):
        if is_ready(name):
            os.utime(target / STAMP)
            return target
        # Ours to delete: a .venv-* folder at the repo root.
        assert target.parent == REPO and target.name.startswith(".venv-"), target
        if target.exists():
            shutil.rmtree(target)
        base = python or default_python()
        if not quiet:
            print(f"kernel_envs: building {target.name} with {base}: {' '.join(ENVS[name][1])}", file=sys.stderr)
        started = time.monotonic()
        log = Path(tempfile.gettempdir()) / f"runway-widgets-{target.name.lstrip('.')}-install.log"
        log.write_text("")
        _run([base, "-m", "venv", str(target)], log)
        _run([str(env_python(name)), "-m", "pip", "install", "--disable-pip-version-check", "-q",
              *ENVS[name][1], "-e", str(REPO)], log)
        versions = installed_versions(env_python(name),
                                      ["ipykernel", "ipywidgets", "ipython", "jupyter_client", "nbclient", "nbformat",
                                       "traitlets", "comm", "runway_widgets"])
        wrong = {pkg: (ver, versions.get(pkg)) for pkg, ver in pins(name).items() if versions.get(pkg) != ver}
        if wrong:
            raise RuntimeError(f"{target.name}: pip resolved other versions than pinned: {wrong}")
        stamp = {"wanted": want, "installed": versions, "build_seconds": round(time.monotonic() - started, 1),
                 "base_python": base}
        tmp = target / (STAMP + ".tmp")
        tmp.write_text(json.dumps(stamp, indent=1) + "\n")
        tmp.replace(target / STAMP)
        if not quiet:
            print(f"kernel_envs: {target.name} ready in {stamp['build_seconds']} s: {versions}", file=sys.stderr)
    return target


# -- running a notebook in a venv ----------------------------------------------------------------

#: Variables a kernel must not inherit from the test run (a real key, a developer's Jupyter config).
_DROP = ("COMETAPI_KEY", "COMETAPI_BASE_URL", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "IPYTHONDIR",
         "JUPYTER_PATH", "JUPYTER_CONFIG_DIR", "JUPYTER_CONFIG_PATH", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR",
         "JUPYTER_PLATFORM_DIRS", "RUNWAY_WIDGETS_CONTEXT_FIX", "PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS")


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop a child started with ``start_new_session=True``: its own process group, by its pid."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _kill_kernel(pid: int | None) -> None:
    """Stop a kernel the runner started (jupyter_client gives it its own session) if it outlived it."""
    if not pid:
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if b"ipykernel" not in cmdline:
        return  # gone, and the pid reused by something else
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        for _ in range(50):
            if not Path(f"/proc/{pid}").exists():
                return
            time.sleep(0.1)


@dataclass
class NotebookRun:
    """One notebook executed by ``tests/nb_runner.py`` under ``python`` (the venv's kernel).

    ``start()`` returns at once (runs can overlap); ``wait()`` returns self with
    :attr:`out_path`, :attr:`info` (what the kernel reported about itself) and timings.
    The notebook is copied into ``workdir`` first, and the kernel runs there, with
    ``TMPDIR``, ``IPYTHONDIR`` and the Jupyter dirs inside ``workdir`` too.
    """

    python: Path | str
    source: Path
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    pythonpath: list[str] = field(default_factory=list)
    ipython_startup: str | None = None
    cell_timeout: float = 150.0
    timeout: float = 420.0
    proc: subprocess.Popen | None = None
    started: float = 0.0
    duration: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    log_text: str = ""

    @property
    def out_path(self) -> Path:
        return self.workdir / f"{self.source.stem}.out.ipynb"

    @property
    def in_path(self) -> Path:
        return self.workdir / self.source.name

    def start(self) -> "NotebookRun":
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.source, self.in_path)
        private = self.workdir / ".kernel-home"
        dirs = {name: private / name for name in ("data", "config", "runtime", "ipython", "tmp")}
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        if self.ipython_startup:
            startup = dirs["ipython"] / "profile_default" / "startup"
            startup.mkdir(parents=True, exist_ok=True)
            (startup / "00-test.py").write_text(self.ipython_startup)
        env = {k: v for k, v in os.environ.items() if k not in _DROP}
        bin_dir = str(Path(self.python).parent)
        env.update({
            "PATH": bin_dir + os.pathsep + env.get("PATH", ""),
            "JUPYTER_DATA_DIR": str(dirs["data"]),  # no user-level kernelspec can replace the venv's own
            "JUPYTER_CONFIG_DIR": str(dirs["config"]),
            "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
            "IPYTHONDIR": str(dirs["ipython"]),
            "TMPDIR": str(dirs["tmp"]),  # the demo's saved videos land here, not in /tmp
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        })
        if self.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(self.pythonpath)
        env.update(self.env)
        self._log = open(self.workdir / "runner.log", "w")
        cmd = [str(self.python), str(RUNNER), str(self.in_path), str(self.out_path),
               "--info", str(self.workdir / "kernel-info.json"), "--cell-timeout", str(self.cell_timeout)]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def wait(self) -> "NotebookRun":
        assert self.proc is not None, "start() first"
        try:
            try:
                code = self.proc.wait(timeout=max(1.0, self.timeout - (time.monotonic() - self.started)))
            except subprocess.TimeoutExpired:
                code = None
        finally:
            self.stop()
        self.duration = time.monotonic() - self.started
        self.log_text = (self.workdir / "runner.log").read_text(errors="replace")
        if code != 0:
            raise RuntimeError(f"running {self.source.name} under {self.python} "
                               f"{'timed out' if code is None else f'exited {code}'}; runner log:\n{self.log_text[-6000:]}")
        self.summary = json.loads(self.log_text.strip().splitlines()[-1])
        return self

    def stop(self) -> None:
        """Idempotent: stop the runner (its process group) and, if it outlived it, the kernel."""
        if self.proc is not None and self.proc.poll() is None:
            _kill_group(self.proc)
        self.info = _read_json(self.workdir / "kernel-info.json")
        _kill_kernel(self.info.get("pid"))
        log = getattr(self, "_log", None)
        if log is not None and not log.closed:
            log.close()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", choices=sorted(ENVS))
    parser.add_argument("--python", default=None, help="the interpreter that creates the venvs (default: python3)")
    args = parser.parse_args(argv)
    for name in args.names:
        ensure_env(name, args.python)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Real-browser harness: a private Jupyter server (Lab or Notebook 7) and headless Chromium.

Everything here is bounded in time and isolated:

* :class:`JupyterServer` runs ``jupyter lab`` / ``jupyter notebook`` from this interpreter's
  environment on 127.0.0.1 with a free port and a random token, with fresh config, runtime,
  data, IPython, settings and workspace directories (the venv's ``share/jupyter`` still provides
  the kernelspec and the widget extension). It is started in its own process group and stopped
  by its pgid; kernels (which jupyter_client puts in their own sessions) are shut down through
  the REST API first, then any process whose command line names this server's private runtime
  directory is killed by pid.
* :class:`BrowserSession` launches Debian's Chromium through Playwright (never Playwright's
  download).
* :class:`NotebookPage` opens a notebook in one tab, waits for the kernel's websocket, appends
  and runs cells through ``window.jupyterapp`` (exposed with ``expose_app_in_browser``), and
  waits on DOM conditions. Every wait has a timeout; a failure saves a screenshot and raises an
  AssertionError carrying the server log tail and the browser console errors.

The kernel inherits the server's environment: pass ``env={"COMETAPI_BASE_URL": ...}`` to
:class:`JupyterServer` to configure it. Any COMETAPI_* variable of the calling process is
dropped, so a real key can never reach a test kernel.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterable, Sequence

import nbformat

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO_ROOT / "tests" / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
]
FLAVOURS = ("lab", "notebook")

#: Seconds; generous upper bounds, never reached when things work.
SERVER_START_TIMEOUT = 60.0
KERNEL_READY_TIMEOUT = 60.0
CELL_TIMEOUT = 30.0


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120] or "page"


# --------------------------------------------------------------------------- server
class JupyterServer:
    """A private ``jupyter lab`` or ``jupyter notebook`` server.

    Parameters
    ----------
    flavour : "lab" or "notebook"
    base_dir : Path
        A fresh directory; everything the server writes goes below it.
    env : mapping
        Extra environment for the server, hence for its kernels.
    """

    def __init__(self, flavour: str, base_dir: Path, env: dict[str, str] | None = None) -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {FLAVOURS}")
        self.flavour = flavour
        self.base_dir = Path(base_dir)
        self.root = self.base_dir / "root"
        self.runtime_dir = self.base_dir / "runtime"
        self.log_path = self.base_dir / "server.log"
        self.token = secrets.token_hex(24)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._extra_env = dict(env or {})
        self._log_file: Any = None

    # ..................................................................... set-up
    def _environment(self) -> dict[str, str]:
        dirs = {
            "JUPYTER_CONFIG_DIR": "config",
            "JUPYTER_RUNTIME_DIR": "runtime",
            # First in the data path; the venv's share/jupyter (kernelspec, widget
            # labextension) stays on it after this one.
            "JUPYTER_DATA_DIR": "data",
            "IPYTHONDIR": "ipython",
            "JUPYTERLAB_SETTINGS_DIR": "settings",
            "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
        }
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("COMETAPI_") and k not in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH",
                                                             "JUPYTER_TOKEN", "PYTHONSTARTUP")}
        for var, sub in dirs.items():
            path = self.base_dir / sub
            path.mkdir(parents=True, exist_ok=True)
            env[var] = str(path)
        # The kernelspec runs plain "python": make it this venv's.
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self._extra_env)
        return env

    def _write_settings(self, settings_dir: Path) -> None:
        # The "Would you like to get notified about Jupyter news?" toast covers the page.
        notif = settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        notif.parent.mkdir(parents=True, exist_ok=True)
        notif.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))

    def _command(self) -> list[str]:
        common = [
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.allow_root=True",
            f"--IdentityProvider.token={self.token}",
            "--ServerApp.disable_check_xsrf=False",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.terminals_enabled=False",
        ]
        if self.flavour == "lab":
            return [sys.executable, "-m", "jupyterlab", *common, "--LabApp.expose_app_in_browser=True"]
        return [sys.executable, "-m", "notebook", *common, "--JupyterNotebookApp.expose_app_in_browser=True"]

    def launch(self) -> None:
        """Start the server process (see :meth:`wait_ready`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        env = self._environment()
        self._write_settings(Path(env["JUPYTERLAB_SETTINGS_DIR"]))
        self.port = free_port()
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self._command(), cwd=self.root, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True)
        atexit.register(self.stop)  # in case pytest dies before its fixtures' teardown

    def wait_ready(self, timeout: float = SERVER_START_TIMEOUT) -> JupyterServer:
        """Wait until ``/api/status`` answers; stop the server and fail with its log otherwise."""
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + timeout
        last_error = ""
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.stop()
                raise AssertionError(f"jupyter {self.flavour} exited with {code} before "
                                     f"answering\n{self.log_tail()}")
            try:
                status = self.api("GET", "/api/status", timeout=2.0)
                if isinstance(status, dict):
                    return self
            except (OSError, ValueError) as exc:  # URLError is an OSError
                last_error = repr(exc)
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"jupyter {self.flavour} did not answer /api/status within {timeout:.0f} s "
                                     f"({last_error})\n{self.log_tail()}")
            time.sleep(0.1)

    def start(self, timeout: float = SERVER_START_TIMEOUT) -> JupyterServer:
        """Start the server and wait until ``/api/status`` answers."""
        self.launch()
        return self.wait_ready(timeout)

    # ...................................................................... access
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def page_url(self, notebook: str, workspace: str | None = None) -> str:
        """The URL that opens ``notebook`` (relative to the root) with the token."""
        quoted = urllib.request.pathname2url(notebook)
        if self.flavour == "lab":
            # A workspace of its own: Lab would otherwise restore the tabs of earlier pages.
            ws = re.sub(r"[^A-Za-z0-9-]+", "-", workspace or notebook).strip("-") or "rwt"  # no dots
            return f"{self.base_url}/lab/workspaces/{ws}/tree/{quoted}?token={self.token}"
        return f"{self.base_url}/notebooks/{quoted}?token={self.token}"

    def api(self, method: str, path: str, body: Any = None, timeout: float = 5.0) -> Any:
        """Call the REST API with the token; return the decoded JSON (None when empty)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def write_notebook(self, name: str, cells: Iterable[str | tuple[str, str]] = ()) -> Path:
        """Write ``name`` into the root. A cell is source code, or ("markdown", text)."""
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                     "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        for cell in cells:
            if isinstance(cell, tuple):
                kind, source = cell
                nb.cells.append(nbformat.v4.new_markdown_cell(source) if kind == "markdown"
                                else nbformat.v4.new_code_cell(source))
            else:
                nb.cells.append(nbformat.v4.new_code_cell(cell))
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))
        return path

    def shutdown_session(self, notebook: str) -> None:
        """Shut down the kernel session of ``notebook`` (best effort, bounded)."""
        try:
            for sess in self.api("GET", "/api/sessions") or []:
                if sess.get("path") == notebook:
                    self.api("DELETE", f"/api/sessions/{sess['id']}", timeout=10.0)
        except (OSError, ValueError):
            pass

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- jupyter {self.flavour} log (last {lines} lines, {self.log_path}) ---\n{tail}"

    # ........................................................................ stop
    def _own_kernel_pids(self) -> list[int]:
        """Pids of processes whose command line names this server's runtime dir (its kernels)."""
        marker = str(self.runtime_dir).encode()
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker in f.read():
                        pids.append(int(entry))
            except OSError:
                continue
        return pids

    def stop(self) -> None:
        """Shut kernels down, stop the server's process group, reap stray kernels. Idempotent."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                try:
                    for kernel in self.api("GET", "/api/kernels", timeout=3.0) or []:
                        try:
                            self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=10.0)
                        except (OSError, ValueError):
                            pass
                except (OSError, ValueError):
                    pass
                try:
                    os.killpg(proc.pid, signal.SIGTERM)  # start_new_session: pgid == pid
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait(timeout=5)
        finally:
            for pid in self._own_kernel_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None


class ServerPool:
    """Starts one server per flavour on first use; :meth:`close` stops them all."""

    def __init__(self, base_dir: Path, env: dict[str, str] | None = None) -> None:
        self.base_dir = Path(base_dir)
        self.env = dict(env or {})
        self.servers: dict[str, JupyterServer] = {}

    def get(self, flavour: str) -> JupyterServer:
        """The server of ``flavour``, started (and waited for) on first use."""
        self.start(flavour)
        return self.servers[flavour]

    def start(self, *flavours: str) -> None:
        """Start several servers at once (they boot in parallel) and wait for them all."""
        fresh = []
        for flavour in flavours:
            if flavour not in self.servers:
                server = JupyterServer(flavour, self.base_dir / flavour, self.env)
                self.servers[flavour] = server  # registered first: close() stops a half-started one
                server.launch()
                fresh.append(server)
        for server in fresh:
            server.wait_ready()

    def close(self) -> None:
        errors = []
        for server in self.servers.values():
            try:
                server.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(exc)
        self.servers.clear()
        if errors:
            raise errors[0]


# -------------------------------------------------------------------------- browser
class BrowserSession:
    """Playwright (sync API) driving Debian's headless Chromium; one context per page."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self.pw = sync_playwright().start()
        try:
            # launch() gives Chromium a fresh temporary profile (user-data-dir), removed on close.
            self.browser = self.pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        except Exception:
            self.pw.stop()
            raise

    def new_context(self) -> Any:
        return self.browser.new_context(viewport={"width": 1280, "height": 1000})

    def open_offline(self, path: Path) -> tuple[Any, list[str]]:
        """Open a local HTML file with no internet: any request that is not to a file or
        to loopback (e.g. a CDN's widget script) is refused and listed.  Returns the page
        (close its ``context``) and that list."""
        refused: list[str] = []

        def route(r: Any) -> None:
            url = r.request.url
            if url.startswith(("file:", "data:", "http://127.0.0.1", "http://localhost")):
                r.continue_()
            else:
                refused.append(url)
                r.abort()

        context = self.new_context()
        context.route("**/*", route)
        page = context.new_page()
        page.goto(Path(path).resolve().as_uri(), wait_until="load")
        return page, refused

    def close(self) -> None:
        try:
            self.browser.close()
        finally:
            self.pw.stop()


# ------------------------------------------------------------------------ notebook
_READY_JS = """
(name) => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return false;
  const dialog = document.querySelector('.jp-Dialog');
  if (dialog) return {dialog: dialog.innerText};
  const w = app.shell.currentWidget;
  if (!w || !w.sessionContext || !w.context || !w.content || w.context.path !== name) return false;
  if (!w.context.isReady) return false;
  const s = w.sessionContext.session;
  const k = s && s.kernel;
  if (!k || k.connectionStatus !== 'connected' || k.status !== 'idle') return false;
  window.__rwtPanel = w;
  return 'ready';
}
"""

_KERNEL_STATE_JS = """
() => {
  const w = window.__rwtPanel || (window.jupyterapp && window.jupyterapp.shell.currentWidget);
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return k ? {status: k.status, connection: k.connectionStatus} : null;
}
"""

_APPEND_JS = """
([source, label]) => {
  const p = window.__rwtPanel;
  const nb = p.content;
  const index = nb.model.cells.length;
  nb.model.sharedModel.insertCell(index, {cell_type: 'code', source: source, metadata: {}});
  const cell = nb.widgets[index];
  cell.node.setAttribute('data-rwt-cell', label);
  return index;
}
"""

_RUN_JS = """
([index]) => {
  const app = window.jupyterapp;
  const p = window.__rwtPanel;
  app.shell.activateById(p.id);
  p.content.deselectAll();
  p.content.activeCellIndex = index;
  window.__rwtRunErrors = window.__rwtRunErrors || [];
  // Not awaited: the command's promise settles only when the cell finishes.
  app.commands.execute('notebook:run-cell').catch(e => window.__rwtRunErrors.push(String(e)));
  return true;
}
"""

_CELL_STATE_JS = """
([index]) => {
  const p = window.__rwtPanel;
  const cell = p.content.widgets[index];
  const m = cell.model;
  const outputs = m.outputs ? m.outputs.toJSON() : [];
  return {count: m.executionCount, outputs: outputs,
          text: cell.node.querySelector('.jp-OutputArea') ? cell.node.querySelector('.jp-OutputArea').innerText : ''};
}
"""


class NotebookPage:
    """One notebook open in one browser tab, with its own kernel.

    Cells can be written in the file beforehand (``cells``) or appended at run time with
    :meth:`append_cell` / :meth:`run_code`; each cell's DOM node is tagged
    ``data-rwt-cell="<label>"`` so selectors can be scoped to it (:meth:`cell_selector`).
    """

    #: Open pages, so a failing test can screenshot them (see conftest).
    open_pages: list[NotebookPage] = []

    def __init__(self, server: JupyterServer, browser: BrowserSession, name: str,
                 cells: Sequence[str | tuple[str, str]] = ()) -> None:
        self.server = server
        self.browser = browser
        self.name = name
        self.cells = list(cells)
        self.context: Any = None
        self.page: Any = None
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.events: list[str] = []
        self._labels: dict[str, int] = {}
        #: Free-form per-page state for fixtures (e.g. "extension loaded").
        self.state: dict[str, Any] = {}

    # ..................................................................... life cycle
    def open(self, timeout: float = KERNEL_READY_TIMEOUT, write: bool = True) -> NotebookPage:
        """Open the notebook in a new tab; ``write=False`` opens the file as it is on disk
        (a reopened notebook), else it is written first from ``cells``."""
        if write:
            self.server.write_notebook(self.name, self.cells)
        self.context = self.browser.new_context()
        self.page = self.context.new_page()
        self.page.on("console", self._on_console)
        self.page.on("pageerror", self._on_page_error)
        NotebookPage.open_pages.append(self)
        try:
            self.page.goto(self.server.page_url(self.name), wait_until="domcontentloaded",
                           timeout=timeout * 1000)
        except Exception as exc:
            self.fail(f"could not load {self.server.flavour} page for {self.name}: {exc}")
        self.wait_kernel_ready(timeout)
        count = self.evaluate("""() => { const ws = window.__rwtPanel.content.widgets;
                                   ws.forEach((c, i) => c.node.setAttribute('data-rwt-cell', 'cell-' + i));
                                   return ws.length; }""")
        for i in range(count):
            self._labels[f"cell-{i}"] = i
        return self

    def save(self, timeout: float = CELL_TIMEOUT) -> Path:
        """Save the notebook the way a user does (File > Save); return its path on disk."""
        path = self.server.root / self.name
        before = path.stat().st_mtime_ns if path.exists() else 0
        self.evaluate("() => { const app = window.jupyterapp; app.shell.activateById(window.__rwtPanel.id);"
                      " return app.commands.execute('docmanager:save'); }")
        self.wait_js("() => !window.__rwtPanel.context.model.dirty", timeout=timeout, what="the notebook to be saved")
        deadline = time.monotonic() + timeout
        while (not path.exists() or path.stat().st_mtime_ns == before) and time.monotonic() < deadline:
            time.sleep(0.05)
        return path

    def _on_page_error(self, exc: Any) -> None:
        stack = getattr(exc, "stack", None) or ""
        first = "\n".join(stack.splitlines()[1:4])
        self.page_errors.append(f"{exc}\n{first}" if first else str(exc))
        self.note(f"uncaught page error: {exc}")

    def _on_console(self, msg: Any) -> None:
        if msg.type == "error":
            self.console_errors.append(msg.text)
            self.note(f"console error: {msg.text}")

    def note(self, text: str) -> None:
        """Add a timestamped line to the page's event log (written beside the screenshots)."""
        self.events.append(f"{time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d} {text}")

    def close(self) -> None:
        if self.console_errors or self.page_errors:
            # Kept for diagnosis even when every test passed (Jupyter logs some benign errors).
            SCREENSHOT_DIR.parent.mkdir(parents=True, exist_ok=True)
            log = SCREENSHOT_DIR.parent / f"console-{self.server.flavour}-{_slug(self.name)}.log"
            log.write_text("\n".join(["# console errors", *self.console_errors, "# uncaught page errors",
                                      *self.page_errors, "# events", *self.events]) + "\n")
        try:
            if self.context is not None:
                self.context.close()
        finally:
            self.context = self.page = None
            if self in NotebookPage.open_pages:
                NotebookPage.open_pages.remove(self)
            self.server.shutdown_session(self.name)

    # ...................................................................... failures
    def screenshot(self, label: str) -> Path | None:
        if self.page is None:
            return None
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOT_DIR / f"{_slug(label)}-{self.server.flavour}-{time.strftime('%H%M%S')}.png"
        try:
            self.page.screenshot(path=str(path), full_page=True, timeout=10_000)
        except Exception:
            return None
        return path

    def diagnostics(self) -> str:
        parts = [self.server.log_tail()]
        if self.console_errors:
            parts.append("--- browser console errors ---\n" + "\n".join(self.console_errors[-20:]))
        if self.page_errors:
            parts.append("--- uncaught page errors ---\n" + "\n".join(self.page_errors[-20:]))
        return "\n".join(parts)

    def fail(self, message: str) -> None:
        shot = self.screenshot(f"fail-{self.name}")
        raise AssertionError(f"[{self.server.flavour}] {message}\nscreenshot: {shot}\n{self.diagnostics()}")

    # ......................................................................... waits
    def evaluate(self, js: str, arg: Any = None) -> Any:
        return self.page.evaluate(js, arg)

    def wait_js(self, js: str, arg: Any = None, timeout: float = CELL_TIMEOUT, what: str = "condition") -> Any:
        """Wait until the JS function ``js(arg)`` returns a truthy value; return that value."""
        try:
            handle = self.page.wait_for_function(js, arg=arg, timeout=timeout * 1000, polling=100)
        except Exception as exc:
            if "Timeout" not in type(exc).__name__ and "Timeout" not in str(exc):
                self.fail(f"error while waiting for {what}: {exc}")
            self.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        try:
            return handle.json_value()
        finally:
            handle.dispose()

    def wait_selector(self, selector: str, timeout: float = CELL_TIMEOUT, state: str = "attached") -> Any:
        try:
            return self.page.wait_for_selector(selector, state=state, timeout=timeout * 1000)
        except Exception as exc:
            self.fail(f"timed out after {timeout:.0f} s waiting for selector {selector!r} ({state}): "
                      f"{type(exc).__name__}")

    def wait_kernel_ready(self, timeout: float = KERNEL_READY_TIMEOUT) -> None:
        """Wait until this notebook's kernel websocket is connected and the kernel idle."""
        state = self.wait_js(_READY_JS, self.name, timeout, what=f"kernel of {self.name} connected and idle")
        if state != "ready":
            self.fail(f"a dialog blocks the page while opening {self.name}: {state}")

    def kernel_state(self) -> dict[str, str] | None:
        return self.evaluate(_KERNEL_STATE_JS)

    def interrupt_kernel(self) -> None:
        """Interrupt the kernel (ends a ``time.sleep`` cell early with KeyboardInterrupt)."""
        self.evaluate("() => window.__rwtPanel.sessionContext.session.kernel.interrupt()")

    def ensure_idle(self, timeout: float = 15.0) -> None:
        """Make sure the kernel is idle (interrupting a leftover busy cell) before a new scenario."""
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            state = self.kernel_state()
            if state and state["status"] == "idle" and state["connection"] == "connected":
                return
            time.sleep(0.1)
        self.interrupt_kernel()
        self.wait_kernel_idle(timeout)

    def wait_kernel_idle(self, timeout: float = CELL_TIMEOUT) -> None:
        self.wait_js("() => { const w = window.__rwtPanel; const k = w.sessionContext.session.kernel;"
                     " return k.connectionStatus === 'connected' && k.status === 'idle'; }",
                     timeout=timeout, what="kernel idle")

    # ......................................................................... cells
    def cell_selector(self, label: str | int) -> str:
        return f'[data-rwt-cell="{self._label_of(label)}"]'

    def append_cell(self, source: str, label: str | None = None) -> int:
        """Append a code cell at the end; return its index (label defaults to ``cell-<index>``)."""
        count = self.evaluate("() => window.__rwtPanel.content.model.cells.length")
        label = label or f"cell-{count}"
        if label in self._labels:
            raise ValueError(f"duplicate cell label {label!r}")
        index = self.evaluate(_APPEND_JS, [source, label])
        self._labels[label] = index
        return index

    def index_of(self, label: str | int) -> int:
        return label if isinstance(label, int) else self._labels[label]

    def cell_state(self, label: str | int) -> dict[str, Any]:
        return self.evaluate(_CELL_STATE_JS, [self.index_of(label)])

    def run_cell(self, label: str | int, wait: bool = True, timeout: float = CELL_TIMEOUT,
                 check: bool = True) -> dict[str, Any] | None:
        """Run one cell. With ``wait``, wait for its reply and fail on an error output."""
        index = self.index_of(label)
        before = self.cell_state(index)["count"]
        self.evaluate(_RUN_JS, [index])
        if not wait:
            return None
        return self.wait_cell_done(index, before, timeout, check)

    def wait_cell_done(self, label: str | int, before: int | None = None, timeout: float = CELL_TIMEOUT,
                       check: bool = True) -> dict[str, Any]:
        """Wait until the cell shows an execution count different from ``before``."""
        index = self.index_of(label)
        self.wait_js("""([i, before]) => {
                          const m = window.__rwtPanel.content.widgets[i].model;
                          return m.executionCount !== null && m.executionCount !== before;
                        }""", [index, before], timeout, what=f"cell {label} to finish")
        state = self.cell_state(index)
        if check:
            for out in state["outputs"]:
                if out.get("output_type") == "error":
                    tb = "\n".join(out.get("traceback", []))
                    tb = re.sub(r"\x1b\[[0-9;]*m", "", tb)
                    self.fail(f"cell {label} raised {out.get('ename')}: {out.get('evalue')}\n{tb}")
        return state

    def run_code(self, source: str, label: str | None = None, wait: bool = True,
                 timeout: float = CELL_TIMEOUT, check: bool = True) -> int:
        """Append a cell with ``source`` and run it; return its index."""
        index = self.append_cell(source, label)
        self.run_cell(index, wait=wait, timeout=timeout, check=check)
        return index

    def run_all(self, timeout: float = CELL_TIMEOUT) -> None:
        """Run every cell and wait for the last one."""
        n = self.evaluate("() => window.__rwtPanel.content.model.cells.length")
        before = self.cell_state(n - 1)["count"] if n else None
        self.evaluate("() => { const app = window.jupyterapp; app.shell.activateById(window.__rwtPanel.id);"
                      " app.commands.execute('notebook:run-all-cells'); }")
        if n:
            self.wait_cell_done(n - 1, before, timeout)

    def wait_output_text(self, label: str | int, text: str, timeout: float = CELL_TIMEOUT) -> None:
        """Wait until the cell's output area shows ``text``."""
        self.wait_js("""([i, text]) => {
                          const a = window.__rwtPanel.content.widgets[i].node.querySelector('.jp-OutputArea');
                          return !!a && a.textContent.includes(text);
                        }""", [self.index_of(label), text], timeout, what=f"output {text!r} in cell {label}")

    def click_in_cell(self, label: str | int, selector: str, timeout: float = CELL_TIMEOUT) -> None:
        """Click the element matching ``selector`` inside the cell (scrolled into view first)."""
        full = f"{self.cell_selector(self._label_of(label))} {selector}"
        try:
            self.page.locator(full).first.click(timeout=timeout * 1000)
        except Exception as exc:
            self.fail(f"could not click {full!r}: {type(exc).__name__}: {str(exc).splitlines()[0]}")

    def _label_of(self, label: str | int) -> str:
        if isinstance(label, str):
            return label
        for name, index in self._labels.items():
            if index == label:
                return name
        return f"cell-{label}"

    def scroll_to(self, label: str | int) -> None:
        """Scroll the cell into view (the notebook's windowing may skip off-screen cells)."""
        self.evaluate("([i]) => { const p = window.__rwtPanel; p.content.scrollToItem(i, 'start');"
                      " p.content.widgets[i].node.scrollIntoView({block: 'start'}); }",
                      [self.index_of(label)])

    def query_in_cell(self, label: str | int, js_body: str, arg: Any = None) -> Any:
        """Evaluate ``(node, arg) => { js_body }`` on the cell's DOM node."""
        fn = f"([i, arg]) => {{ const node = window.__rwtPanel.content.widgets[i].node; return ((node, arg) => {{ {js_body} }})(node, arg); }}"
        return self.evaluate(fn, [self.index_of(label), arg])

    def wait_in_cell(self, label: str | int, js_body: str, arg: Any = None, timeout: float = CELL_TIMEOUT,
                     what: str = "condition") -> Any:
        """Wait until ``(node, arg) => { js_body }`` is truthy on the cell's DOM node."""
        fn = f"([i, arg]) => {{ const node = window.__rwtPanel.content.widgets[i].node; return ((node, arg) => {{ {js_body} }})(node, arg); }}"
        return self.wait_js(fn, [self.index_of(label), arg], timeout, what=f"{what} (cell {label})")

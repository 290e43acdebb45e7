"""The key never leaves the kernel: every message, the saved notebook, the kernel's files.

A simulator that accepts one key only (a made-up sentinel) serves tasks owned by it: a success
(saved with ``--save``), an ordinary failure, a task whose answers echo the key in its fields,
and tasks on which an ``echo_auth`` fault answers 401 with ``invalid token: Bearer <key>``.  A
real kernel of this venv runs a notebook's worth of cells with ``COMETAPI_KEY=<sentinel>``
(twice: driven message by message through jupyter_client, and through nbclient, which saves
the widget state into the notebook).

Scanned for the key (raw, JSON-escaped, HTML-escaped, URL-encoded, and a distinctive 10-letter
core that any partial echo would carry):

* every message on iopub, shell and control, requests included, as full dicts (headers, content,
  metadata, binary buffers): comm_open/comm_msg widget states, display_data,
  update_display_data, execute_result, error (with ``%xmode Verbose`` locals), stream;
* the executed notebook built from those messages with ``nbformat`` (outputs and widget state),
  and the notebook nbclient saved;
* the kernel's own stdout/stderr, and every file the runs wrote in their work folders (saved
  video, IPython history).

So that a pass cannot be vacuous, the test also checks that the key was really used and the
hostile paths really ran: the simulator logged accepted-key requests for every task and the
401s, the success card reached SUCCESS, and ``[redacted]`` stands where the server echoed it.
"""

from __future__ import annotations

import base64
import html
import json
import os
import queue
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote, quote_plus

import nbformat
import pytest

from kernel_envs import _DROP, _kill_kernel
from runway_widgets.simulator import Fault, Simulator, Timeline

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]

#: Made up.  Shaped like a base64-ish key, with characters that JSON (``"``), HTML (``<&>"``),
#: PHP (``/``) and URL encoding (``/+=<&>"``) all rewrite, so each escaped form differs from
#: the raw one and is worth scanning for.  CORE is in every form.
CORE = "7f3a9c2e5b"
SENTINEL = f'sentinel-KEY-{CORE}/+=<&>"q'
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
CELL_TIMEOUT = 60.0


def _key_forms(key: str) -> dict[str, str]:
    as_json = json.dumps(key)[1:-1]
    forms = {
        "raw": key,
        "json": as_json,
        "json-in-json": json.dumps(as_json)[1:-1],
        "json-php-slashes": as_json.replace("/", "\\/"),
        "json-go": as_json.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"),
        "html": html.escape(key),
        "html-noquote": html.escape(key, quote=False),
        "html-in-json": json.dumps(html.escape(key))[1:-1],
        "url": quote(key, safe=""),
        "url-path": quote(key),
        "url-plus": quote_plus(key),
        "core": CORE,
    }
    # base64 (e.g. a Basic header or an embedded blob), at each of the three alignments.
    raw = key.encode()
    for shift in range(3):
        b64 = base64.b64encode(raw[shift:]).decode()
        forms[f"base64+{shift}"] = b64[:len(b64) - 4]  # the tail depends on what follows
    return forms


KEY_FORMS = _key_forms(SENTINEL)


def key_hits(blob: str | bytes) -> list[str]:
    """Names of the key forms found in ``blob``."""
    if isinstance(blob, (bytes, bytearray, memoryview)):
        blob = bytes(blob).decode("utf-8", "replace")
    return [name for name, form in KEY_FORMS.items() if form in blob]


def test_the_key_forms_differ() -> None:
    """The forms scanned are really distinct, and the scanner finds each of them."""
    assert len({KEY_FORMS[k] for k in ("raw", "json", "html", "url", "json-php-slashes", "json-go")}) == 6
    for name, form in KEY_FORMS.items():
        assert name in key_hits(f"xx{form}yy"), name
    assert key_hits("nothing to see [redacted]") == []


# ----------------------------------------------------------------------------- the scenario
class Scenario:
    """Tasks owned by the sentinel key and the cells that watch them.

    A cell is ``(source, before, during)``: ``before()`` runs just before the cell is sent,
    ``during()`` in a thread while it runs (to inject a fault mid-watch).
    """

    def __init__(self, sim: Simulator, workdir: Path) -> None:
        self.sim = sim
        self.url = sim.base_url
        self.videos = workdir / "videos"
        add = lambda tl: sim.add_task(SENTINEL, tl)  # noqa: E731
        self.ok = add(Timeline.fast())
        self.fail = add(Timeline.fast(outcome="FAILURE"))
        # The server puts the key into the fields it returns (action, failure text and code).
        self.echo = add(Timeline.fast(outcome="FAILURE", action=f"echo {SENTINEL}",
                                      fail_reason=f"upstream said: Authorization: Bearer {SENTINEL}",
                                      fail_code=SENTINEL))
        # Runs long: polled about once a second (the 1 s floor) until the echo_auth fault, injected mid-watch, ends it.
        self.auth = add(Timeline.fast(run_for=60.0))
        self.auth2 = add(Timeline.fast())  # fetched once, straight into an echo_auth 401
        self.task_ids = [self.ok, self.fail, self.echo, self.auth, self.auth2]
        self.auth_injected = threading.Event()
        url = self.url
        self.cells: list[tuple[str, Callable[[], None] | None, Callable[[], None] | None]] = [
            ("import os, sys\nprint(sys.prefix)\nprint(os.getpid())\n"
             "print('COMETAPI_KEY' in os.environ, 'COMETAPI_BASE_URL' in os.environ)", None, None),
            ("%load_ext runway_widgets", None, None),
            (f"%runway_watch {self.ok} --base-url {url} --save {self.videos}/", None, None),
            (f"%runway_watch {self.fail} {self.echo} --base-url {url} --wait", None, None),
            (f"%runway_watch {self.auth} --official --base-url {url} --interval 0.5 --wait", None, self._inject_auth),
            # A traceback with every frame's locals, through the client, on a 401 that echoes the key.
            ("%xmode Verbose\nimport runway_widgets as rw\n"
             f"rw.Client(base_url={url!r}, feed='official').fetch({self.auth2!r})", self._inject_auth2, None),
            ("%xmode Context", None, None),
            ("%runway_tasks", None, None),
            ("import runway_widgets as rw\nrw.wait_all(60)", None, None),
            ("rw.live_watches(), rw.recent_watches()", None, None),
            ("[(w.update(), w.update().snapshot.raw if w.update().snapshot else None) for w in rw.recent_watches()]",
             None, None),
            ("import os; 'COMETAPI_KEY' in os.environ", None, None),
        ]

    def _inject_auth(self) -> None:
        # Let the watch see the task a few times with the right key, then the server turns hostile.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ok = [r for r in self.sim.requests_for(self.auth) if r.status == 200 and r.key_ok]
            if len(ok) >= 2:
                break
            time.sleep(0.05)
        self.sim.inject(Fault("echo_auth", path=f"/runwayml/v1/tasks/{self.auth}"))
        self.auth_injected.set()

    def _inject_auth2(self) -> None:
        self.sim.inject(Fault("echo_auth", path=f"/runwayml/v1/tasks/{self.auth2}"))

    def check_requests(self) -> None:
        """The kernel really used the sentinel key, for every task, and met the hostile 401s."""
        assert self.auth_injected.is_set()
        for task_id in (self.ok, self.fail, self.echo, self.auth):
            polls = [r for r in self.sim.requests_for(task_id) if not r.path.startswith("/media/")]
            assert any(r.status == 200 and r.key_ok for r in polls), (task_id, polls)
            assert all(r.key_ok for r in polls), f"a request for {task_id} carried another key: {polls}"
        for task_id in (self.auth, self.auth2):
            assert [r.status for r in self.sim.requests_for(task_id) if r.status == 401 and r.key_ok], \
                f"no echo_auth 401 was served for {task_id}"
        media = [r for r in self.sim.requests_for(self.ok) if r.path.startswith("/media/")]
        assert media and all(r.status in (200, 206) for r in media), media
        assert not any(r.auth_sent for r in media), "the key was sent along with the video download"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    server = Simulator(keys={SENTINEL})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def kernel_env(workdir: Path) -> dict[str, str]:
    """This venv's kernel, private dirs in ``workdir``, the sentinel key, no base URL."""
    private = workdir / ".kernel-home"
    dirs = {name: private / name for name in ("data", "config", "runtime", "ipython", "tmp")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in _DROP}
    env.update({
        "PATH": str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "IPYTHONDIR": str(dirs["ipython"]),
        "TMPDIR": str(dirs["tmp"]),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "COMETAPI_KEY": SENTINEL,
    })
    env.pop("COMETAPI_BASE_URL", None)
    return env


def files_with_key(folder: Path) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            hits = key_hits(path.read_bytes())
            if hits:
                found.append(f"{path}: {hits}")
    return found


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


# --------------------------------------------------------------- a kernel, message by message
class RecordingKernel:
    """A jupyter_client kernel whose every message (both ways, all channels) is kept."""

    def __init__(self, env: dict[str, str], cwd: Path, log_path: Path) -> None:
        from jupyter_client import KernelManager

        self.messages: list[tuple[str, dict[str, Any]]] = []  # (channel, msg)
        self._iopub: "queue.SimpleQueue[dict[str, Any]]" = queue.SimpleQueue()
        self._stop = threading.Event()
        self._log = open(log_path, "wb")
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env, cwd=str(cwd), stdout=self._log, stderr=self._log)
        self.pid = self.km.provisioner.process.pid  # type: ignore[union-attr]
        self.kc = self.km.client()
        self.kc.start_channels()
        # Only this thread reads iopub (jupyter_client's wait_for_ready would read it too).
        self._thread = threading.Thread(target=self._collect, name="kernel-secrets-iopub", daemon=True)
        self._thread.start()
        self._wait_ready(60)

    def _wait_ready(self, timeout: float) -> None:
        """kernel_info until the reply *and* an iopub message prove both channels are connected."""
        deadline = time.monotonic() + timeout
        while True:
            msg_id = self._send(self.kc.shell_channel, "shell", "kernel_info_request", {})
            try:
                self._reply(self.kc.shell_channel, "shell", msg_id, max(1.0, deadline - time.monotonic()))
            except queue.Empty:
                pass
            try:
                self._iopub.get(timeout=1.0)  # iopub subscriptions take a moment (slow joiner)
                return
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise TimeoutError("the kernel did not become ready") from None

    def _collect(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.kc.iopub_channel.get_msg(timeout=0.1)
            except queue.Empty:
                continue
            except Exception:  # the channel closed under us at shutdown
                if self._stop.is_set():
                    return
                raise
            self.messages.append(("iopub", msg))
            self._iopub.put(msg)

    def _send(self, channel: Any, name: str, msg_type: str, content: dict[str, Any]) -> str:
        msg = self.kc.session.msg(msg_type, content)
        self.messages.append((f"{name}-request", msg))
        channel.send(msg)
        return msg["header"]["msg_id"]

    def _reply(self, channel: Any, name: str, msg_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            msg = channel.get_msg(timeout=max(0.1, deadline - time.monotonic()))
            self.messages.append((name, msg))
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {name} reply to {msg_id}")

    def execute(self, code: str, during: Callable[[], None] | None = None, timeout: float = CELL_TIMEOUT) -> str:
        """Run ``code``; return when its reply and its idle status have both arrived."""
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": False}
        msg_id = self._send(self.kc.shell_channel, "shell", "execute_request", content)
        helper = threading.Thread(target=during, daemon=True) if during else None
        if helper:
            helper.start()
        reply = self._reply(self.kc.shell_channel, "shell", msg_id, timeout)
        assert reply["content"]["status"] in ("ok", "error"), reply["content"]
        deadline = time.monotonic() + timeout
        while True:
            msg = self._iopub.get(timeout=max(0.1, deadline - time.monotonic()))
            if (msg["msg_type"] == "status" and msg["parent_header"].get("msg_id") == msg_id
                    and msg["content"]["execution_state"] == "idle"):
                break
        if helper:
            helper.join(timeout)
        return msg_id

    def control(self, msg_type: str, content: dict[str, Any] | None = None) -> dict[str, Any]:
        msg_id = self._send(self.kc.control_channel, "control", msg_type, content or {})
        return self._reply(self.kc.control_channel, "control", msg_id, 30)

    def close(self) -> None:
        try:
            try:
                self.control("shutdown_request", {"restart": False})
            except Exception:
                pass
            time.sleep(0.3)  # the last iopub messages (shutdown status)
            self._stop.set()
            self._thread.join(5)
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)
        finally:
            _kill_kernel(self.pid)
            self._log.close()


def build_notebook(cells: list[str], msg_ids: list[str], messages: list[tuple[str, dict[str, Any]]]) -> Any:
    """The executed notebook a frontend would save: outputs per cell, displays updated by id,
    and the widget state from the comm messages (as nbclient's store_widget_state does)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    by_parent = {msg_id: nbformat.v4.new_code_cell(src) for src, msg_id in zip(cells, msg_ids)}
    nb.cells = list(by_parent.values())
    displays: dict[str, list[Any]] = {}
    widgets: dict[str, dict[str, Any]] = {}
    for channel, msg in messages:
        if channel != "iopub":
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "comm_open" and content.get("target_name") == "jupyter.widget":
            data = content["data"]
            widgets[content["comm_id"]] = {"model_name": data["state"].get("_model_name"),
                                           "model_module": data["state"].get("_model_module"),
                                           "model_module_version": data["state"].get("_model_module_version"),
                                           "state": dict(data["state"])}
            continue
        if kind == "comm_msg" and content.get("comm_id") in widgets:
            data = content.get("data", {})
            if data.get("method") in ("update", "echo_update"):
                widgets[content["comm_id"]]["state"].update(data.get("state", {}))
            continue
        if kind == "update_display_data":
            for out in displays.get(content.get("transient", {}).get("display_id"), []):
                out["data"], out["metadata"] = content["data"], content["metadata"]
            continue
        cell = by_parent.get(msg["parent_header"].get("msg_id"))
        if cell is None:
            continue
        if kind == "execute_input":
            cell.execution_count = content["execution_count"]
        elif kind in ("stream", "display_data", "execute_result", "error"):
            out = nbformat.v4.output_from_msg(msg)
            cell.outputs.append(out)
            display_id = content.get("transient", {}).get("display_id")
            if display_id:
                displays.setdefault(display_id, []).append(out)
        elif kind == "clear_output":
            cell.outputs = []
    nb.metadata["widgets"] = {WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": widgets}}
    return nb


def message_leaks(messages: list[tuple[str, dict[str, Any]]]) -> list[str]:
    leaks = []
    for index, (channel, msg) in enumerate(messages):
        blob = json.dumps({k: v for k, v in msg.items() if k != "buffers"}, default=str, ensure_ascii=False)
        hits = key_hits(blob)
        for buf in msg.get("buffers") or []:
            hits += key_hits(bytes(buf))
        if hits:
            excerpt = blob[max(0, blob.find(CORE) - 300):blob.find(CORE) + 200] if CORE in blob else blob[:300]
            leaks.append(f"#{index} {channel} {msg.get('msg_type')}: {sorted(set(hits))}: ...{excerpt}...")
    return leaks


def cell_outputs(nb: Any, source_start: str) -> list[Any]:
    [cell] = [c for c in nb.cells if c.cell_type == "code" and _text(c.source).startswith(source_start)]
    return cell.outputs


def check_outputs(nb: Any, sc: Scenario, where: str) -> None:
    """What the run showed: the key was used and every hostile echo came back redacted."""
    text = nbformat.writes(nb)
    # Cell 0: this venv's kernel, the key in its environment, no base URL there.
    probe = "".join(_text(o.get("text")) for o in cell_outputs(nb, "import os, sys") if o.output_type == "stream")
    lines = probe.split()
    assert Path(lines[0]) == Path(sys.prefix), f"{where}: not this venv's kernel: {probe!r}"
    assert probe.strip().endswith("True False"), f"{where}: {probe!r}"
    # The cards: final static bundles (the update_display_data) by task.
    plain = "\n".join(_text(o.get("data", {}).get("text/plain")) for c in nb.cells for o in c.outputs
                      if o.output_type == "display_data"
                      and o.get("metadata", {}).get("runway_widgets", {}).get("output") == "card")
    assert re.search(rf"^{sc.ok}: SUCCESS: done in .* -> ", plain, re.M), f"{where}: {plain}"
    assert re.search(rf"^{sc.fail}: FAILURE: Content moderation", plain, re.M), f"{where}: {plain}"
    assert re.search(rf"^{sc.echo}: FAILURE: upstream said: Authorization: Bearer \[redacted\] \[\[redacted\]\]$",
                     plain, re.M), f"{where}: {plain}"
    assert re.search(rf"^{sc.auth}: error: The server rejected the API key \(HTTP 401\): "
                     r"invalid token: Bearer \[redacted\]; check COMETAPI_KEY\.$", plain, re.M), f"{where}: {plain}"
    # The live widgets' final states (what a reopened notebook shows).
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    bars = sorted(m["state"].get("bar_style") for m in state.values() if m["model_name"] == "FloatProgressModel")
    assert bars == ["danger", "danger", "danger", "success"], f"{where}: {bars}"
    bodies = [m["state"].get("value", "") for m in state.values()
              if "runway-body" in m["state"].get("_dom_classes", [])]
    assert any("SUCCESS: done" in b and "<video" in b and "base64," in b for b in bodies), \
        f"{where}: no finished success card (with the saved video embedded) in the widget state"
    assert any("echo [redacted]" in b for b in bodies), f"{where}: the echoed action is not shown redacted"
    # The Verbose traceback of the direct fetch: the 401's echo, redacted, in the message and the locals.
    [err] = [o for o in cell_outputs(nb, "%xmode Verbose") if o.output_type == "error"]
    assert err.ename == "AuthenticationError", f"{where}: {err.ename}: {err.evalue}"
    assert "invalid token: Bearer [redacted]" in err.evalue
    assert len("".join(err.traceback)) > 500, f"{where}: the Verbose traceback is suspiciously short"
    # The task table, the handles' reprs, the raw (scrubbed) payloads.
    tables = [o for o in cell_outputs(nb, "%runway_tasks") if o.output_type == "display_data"]
    assert tables and all(t in tables[0]["data"]["text/html"] for t in (sc.ok, sc.echo, sc.auth)), where
    [reprs] = [o for o in cell_outputs(nb, "rw.live_watches()") if o.output_type == "execute_result"]
    shown = reprs["data"]["text/plain"]
    assert re.match(r"\(\[\],\s*\[<Watch ", shown) and shown.count("<Watch ") == 4, f"{where}: {shown}"
    [raws] = [o for o in cell_outputs(nb, "[(w.update()") if o.output_type == "execute_result"]
    assert "'action': 'echo [redacted]'" in raws["data"]["text/plain"], where
    [env_result] = [o for o in cell_outputs(nb, "import os; 'COMETAPI_KEY'") if o.output_type == "execute_result"]
    assert env_result["data"]["text/plain"] == "True", where
    assert "[redacted]" in text


# ------------------------------------------------------------------------------------ tests
def test_no_key_in_any_kernel_message_or_saved_notebook(sim: Simulator, tmp_path: Path) -> None:
    workdir = tmp_path / "manual"
    workdir.mkdir()
    sc = Scenario(sim, workdir)
    kernel = RecordingKernel(kernel_env(workdir), workdir, tmp_path / "kernel-manual.log")
    msg_ids = []
    try:
        for source, before, during in sc.cells:
            if before:
                before()
            msg_ids.append(kernel.execute(source, during))
        info = kernel.control("kernel_info_request")
        assert info["content"]["status"] == "ok"
    finally:
        kernel.close()

    messages = kernel.messages
    kinds = {msg["msg_type"] for _, msg in messages}
    assert {"comm_open", "comm_msg", "display_data", "update_display_data", "execute_result", "error", "stream",
            "execute_reply", "kernel_info_reply", "shutdown_reply"} <= kinds, kinds
    assert message_leaks(messages) == []

    nb = build_notebook([src for src, _, _ in sc.cells], msg_ids, messages)
    out = workdir / "secrets.out.ipynb"
    nbformat.write(nb, str(out))
    assert key_hits(out.read_bytes()) == []
    check_outputs(nbformat.read(str(out), as_version=4), sc, "jupyter_client run")
    sc.check_requests()
    assert files_with_key(workdir) == []  # the saved video, IPython's history, temp files
    assert key_hits((tmp_path / "kernel-manual.log").read_bytes()) == []
    check_journal(sc)
    assert list(sc.videos.glob("*.mp4")), "the success's video was not saved"


def test_the_scanner_sees_a_key_the_kernel_shows(tmp_path: Path) -> None:
    """Control: the same recording and scanning do find the key when a cell does show it
    (printed, as HTML, URL-encoded, in a widget's state), so the scans above can fail."""
    cells = [
        "import os, html, urllib.parse\nk = os.environ['COMETAPI_KEY']\nprint(k[::-1])",  # not the key: no hit
        "print(k)",
        "from IPython.display import HTML\nHTML(html.escape(k))",
        "urllib.parse.quote(k, safe='')",
        "import ipywidgets as W\nW.Text(value=k.replace('-', ''))",  # partial: found by the core
    ]
    kernel = RecordingKernel(kernel_env(tmp_path), tmp_path, tmp_path / "kernel.log")
    try:
        msg_ids = [kernel.execute(src) for src in cells]
    finally:
        kernel.close()
    by_cell = {i: [m for c, m in kernel.messages if m["parent_header"].get("msg_id") == msg_id
                   and key_hits(json.dumps(m, default=str))] for i, msg_id in enumerate(msg_ids)}
    assert by_cell[0] == []
    assert {m["msg_type"] for m in by_cell[1]} >= {"stream"}
    assert {m["msg_type"] for m in by_cell[2]} >= {"execute_result"}
    assert {m["msg_type"] for m in by_cell[3]} >= {"execute_result"}
    assert {m["msg_type"] for m in by_cell[4]} >= {"comm_open"}
    nb = build_notebook(cells, msg_ids, kernel.messages)
    assert "raw" in key_hits(nb.cells[1].outputs[0].text)
    # In the .ipynb (JSON) the key's quote is escaped: only the JSON form (and the core) match there.
    hits = key_hits(nbformat.writes(nb))
    assert {"json", "html-in-json", "url", "core"} <= set(hits) and "raw" not in hits, hits


def test_no_key_in_the_notebook_nbclient_saves(sim: Simulator, tmp_path: Path) -> None:
    from nbclient import NotebookClient

    workdir = tmp_path / "nbclient"
    workdir.mkdir()
    sc = Scenario(sim, workdir)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src, _, _ in sc.cells]
    helpers: list[threading.Thread] = []

    def on_cell_start(cell: Any, cell_index: int) -> None:
        _, before, during = sc.cells[cell_index]
        if before:
            before()
        if during:
            helpers.append(threading.Thread(target=during, daemon=True))
            helpers[-1].start()

    client = NotebookClient(nb, timeout=int(CELL_TIMEOUT), kernel_name="python3", allow_errors=True,
                            store_widget_state=True, record_timing=True, on_cell_start=on_cell_start,
                            resources={"metadata": {"path": str(workdir)}})
    log_path = tmp_path / "kernel-nbclient.log"
    with open(log_path, "wb") as log:
        try:
            client.execute(env=kernel_env(workdir), stdout=log, stderr=log)
        finally:
            for helper in helpers:
                helper.join(10)
            outputs = nb.cells[0].outputs if nb.cells else []
            pid = "".join(_text(o.get("text")) for o in outputs if o.get("output_type") == "stream").split()
            _kill_kernel(int(pid[1]) if len(pid) > 1 and pid[1].isdigit() else None)
    out = workdir / "secrets.nbclient.ipynb"
    nbformat.write(nb, str(out))
    saved = out.read_bytes()
    assert WIDGET_STATE.encode() in saved, "nbclient saved no widget state"
    assert key_hits(saved) == []
    check_outputs(nbformat.read(str(out), as_version=4), sc, "nbclient run")
    sc.check_requests()
    assert files_with_key(workdir) == []
    assert key_hits(log_path.read_bytes()) == []
    check_journal(sc)


def check_journal(sc: Scenario) -> None:
    """The task journal the kernel wrote ($RUNWAY_WIDGETS_HOME, inherited) has every task and no key."""
    from runway_widgets.journal import journal_home

    home = journal_home()
    journal = (home / "tasks.jsonl").read_bytes()
    assert all(task.encode() in journal for task in sc.task_ids[:4]), journal[:500]
    assert b"[redacted]" in journal  # the echoing task's fields, scrubbed
    assert key_hits(journal) == []
    assert files_with_key(home) == []


def test_a_url_encoded_echo_is_scrubbed_too(sim: Simulator) -> None:
    from runway_widgets import Client

    url = f"https://cdn.example/v.mp4?token={quote(SENTINEL, safe='')}"  # a gateway signing URLs with the key
    task_id = sim.add_task(SENTINEL, Timeline(invisible_for=0, submitted_for=0, queued_for=0, run_for=0,
                                              result_url_override=url))
    with Client(SENTINEL, sim.base_url) as client:
        snapshot = client.fetch(task_id)
    assert snapshot.result_url and snapshot.result_url.startswith("https://cdn.example/v.mp4?token=")
    assert key_hits(repr(snapshot) + str(snapshot.result_url) + json.dumps(dict(snapshot.raw), default=str)) == []

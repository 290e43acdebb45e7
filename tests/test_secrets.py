"""Secret hygiene: a sentinel key goes through every path and surfaces nowhere.

The made-up key below is sent for real (the strict simulators accept only it), through
normal runs and every error path: a server that echoes the Authorization header back (as
401, 200, 429 and 500 answers), a redirect, 5xx, resets, stalls past the read timeout, a
task whose own fields carry the key, a failed download.  Then everything a user, a log or a
saved notebook could see is scanned:

* the CLI's stdout and stderr with ``-v`` (DEBUG logging of every library, urllib3 included);
* in process, with every logger at DEBUG: each log record (message, args, formatted
  exception), each exception (str, repr, args, attributes, the displayed traceback, and its
  __cause__/__context__ chain), each WatchUpdate and snapshot (repr, ``as_dict``, raw payload),
  every value every trait of every widget of a live TaskCard took, the static HTML card,
  the text summary and the terminal view;
* and the key is read on the main thread only (the magic with a fake Colab ``userdata``).

The kernel-message scan (every IOPub message of a real notebook run) lives in
tests/test_notebooks.py.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import traceback
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import traitlets
from ipywidgets import Widget

import runway_widgets
from runway_widgets import (
    AuthenticationError,
    Client,
    GaveUpError,
    PacingConfig,
    RunwayWidgetsError,
    TaskFailedError,
    TaskNotFoundError,
    WatchTimeoutError,
    WatchUpdate,
    watch,
)
from runway_widgets.errors import BadRequestError
from runway_widgets.simulator import Fault, Simulator, Timeline
from runway_widgets.views.board import board_html
from runway_widgets.views.card import card_html
from runway_widgets.views.terminal import TerminalBoard
from runway_widgets.views.text import summary_line
from runway_widgets.views.widget import TaskCard
from helpers import quick

KEY = "sentinel-KEY-5a1e7c0ffee"  # made up; never a real key
TAIL = "5a1e7c0ffee"  # its distinctive part: a truncated or re-cased echo is caught too
PACE = PacingConfig(min_interval=0.05, backoff_base=0.2, backoff_cap=0.4)
PERSISTENT = 10_000


def assert_clean(text: str, where: str) -> None:
    assert KEY not in text and TAIL not in text.lower(), f"the key leaked into {where}: ...{_around(text)}..."


def _around(text: str) -> str:
    at = text.lower().find(TAIL)
    return text[max(0, at - 80): at + 40] if at >= 0 else text[:120]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the CLI, with -v -------------------------------------------------------------------------------


@dataclass
class CliCase:
    name: str
    timeline: Timeline | None
    faults: tuple[Fault, ...]
    args: tuple[str, ...]
    code: int
    words: str  # in stderr, proving the error path was taken


CLI_CASES = [
    CliCase("success, saved", quick(), (), ("--save", "{tmp}/", "--json"), 0, ""),
    CliCase("401 echoing the key", quick(), (Fault("echo_auth"),), (), 3, "[redacted]"),
    CliCase("200 echoing the key", quick(), (Fault("echo_auth", status=200, count=PERSISTENT),),
            ("--give-up-after", "1"), 6, "[redacted]"),
    CliCase("500 echoing the key", quick(), (Fault("echo_auth", status=500, count=PERSISTENT),),
            ("--give-up-after", "1"), 6, "[redacted]"),
    CliCase("redirect", quick(), (Fault("redirect"),), (), 2, "a redirect to http://127.0.0.2:"),
    CliCase("502 HTML", quick(), (Fault("server_error_html", count=PERSISTENT),), ("--give-up-after", "1"), 6,
            "HTTP 502"),
    CliCase("reset", quick(), (Fault("reset", count=PERSISTENT),), ("--give-up-after", "1"), 6, "broke mid-answer"),
    CliCase("stall past the 15 s read timeout", quick(), (Fault("slow", delay=16.0),), ("--give-up-after", "0"), 6,
            "Gave up after 1 failed attempt in "),  # (and "did not answer within 15 s")
    CliCase("watch timeout", quick(run_for=60), (), ("--timeout", "1"), 4, "did not finish within 1 s"),
    CliCase("not found", Timeline(invisible_for=float("inf")), (), ("--not-found-grace", "0.5"), 5, "not found"),
    CliCase("key in the failure reason", quick(outcome="FAILURE", fail_reason=f"token {KEY} was revoked"), (), (),
            1, "token [redacted] was revoked"),
    CliCase("key in action and result URL",
            quick(action=f"Bearer {KEY}", result_url_override=f"https://cdn.example.com/v.mp4?token={KEY}"),
            (), ("--json",), 0, ""),
    CliCase("media answering HTML", quick(), (Fault("html200", path="/media/"),), ("--save", "{tmp}/"), 6,
            "not a video"),
    CliCase("nothing listening", None, (), ("--give-up-after", "1"), 6, "connection refused"),
]


def test_cli_never_prints_the_key(tmp_path: Path) -> None:
    sims: list[Simulator] = []
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for case in CLI_CASES:
            if case.timeline is None:
                base_url, task = f"http://127.0.0.1:{_closed_port()}", "some-task"
            else:
                sim = Simulator(keys=[KEY]).start()
                sims.append(sim)
                task = sim.add_task(KEY, case.timeline)
                for fault in case.faults:
                    sim.inject(fault)
                base_url = sim.base_url
            folder = tmp_path / case.name.replace(" ", "-").replace(",", "")
            args = [a.replace("{tmp}", str(folder)) for a in case.args]
            env = {k: v for k, v in os.environ.items() if not k.startswith("COMETAPI_")}
            env.update(COMETAPI_KEY=KEY, COMETAPI_BASE_URL=base_url, PYTHONIOENCODING="utf-8")
            procs[case.name] = subprocess.Popen(
                [sys.executable, "-m", "runway_widgets.cli", task, "-v", "--interval", "0.1", *args],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", env=env,
                start_new_session=True)
        results = {name: proc.communicate(timeout=90) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
        for sim in sims:
            sim.stop()
    for case in CLI_CASES:
        out, err = results[case.name]
        assert procs[case.name].returncode == case.code, (case.name, out, err)
        assert case.words in err, (case.name, err)
        assert "Starting new HTTP connection" in err, case.name  # DEBUG logging really was on
        assert_clean(out, f"stdout of {case.name!r}")
        assert_clean(err, f"stderr of {case.name!r}")
    for sim in sims:  # the key did travel: every API request carried the accepted key
        assert all(r.key_ok for r in sim.requests if not r.path.startswith("/media/"))
    saved = list((tmp_path / "success-saved").iterdir())
    assert len(saved) == 1 and saved[0].stat().st_size > 0
    assert_journal_clean([sim.requests[0].task_id for sim in sims if sim.requests and sim.requests[0].task_id])


def assert_journal_clean(task_ids: list[str]) -> None:
    """The task journal these runs wrote holds every task, the redacted echoes, and never the key."""
    from runway_widgets.journal import journal_path

    text = journal_path().read_text(encoding="utf-8")
    assert task_ids and all(task in text for task in task_ids), "a task is missing from the journal"
    assert "[redacted]" in text  # the echoes reached the journal, scrubbed
    assert_clean(text, "the task journal")


# -- the Python API, the card and the static card, with every logger at DEBUG ---------------------------


class Everything(logging.Handler):
    """Keeps every record of every logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def debug_logs() -> Iterator[Everything]:
    handler = Everything()
    root = logging.getLogger()
    old_level = root.level
    names = ("urllib3", "requests", "runway_widgets", "runway_widgets.simulator", "charset_normalizer")
    old = {name: logging.getLogger(name).level for name in names}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for name, level in old.items():
            logging.getLogger(name).setLevel(level)


def record_texts(record: logging.LogRecord) -> list[str]:
    formatted = logging.Formatter("%(name)s %(levelname)s %(message)s").format(record)
    return [formatted, str(record.msg), repr(record.args), repr(record.exc_text), repr(record.stack_info),
            repr({k: v for k, v in vars(record).items() if k not in ("exc_info",)})]


def exception_texts(error: BaseException) -> list[str]:
    """Everything a traceback, a log line or a debugger would show, down the whole chain
    (the __context__ a ``raise ... from None`` hides included)."""
    texts = ["".join(traceback.format_exception(error))]
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args), repr(vars(current))]
        # A requests exception hidden in the chain keeps the request it failed on, headers and all.
        for carrier in (getattr(current, "request", None), getattr(getattr(current, "response", None), "request", None)):
            if carrier is not None:
                texts.append(repr(dict(getattr(carrier, "headers", None) or {})))
        for value in vars(current).values():
            if isinstance(value, BaseException):
                texts += exception_texts(value)
        current = current.__cause__ or current.__context__
    return texts


def all_widgets(root: Widget) -> list[Widget]:
    found: dict[int, Widget] = {}
    stack = [root]
    while stack:
        widget = stack.pop()
        if id(widget) in found:
            continue
        found[id(widget)] = widget
        for name in widget.trait_names():
            value = getattr(widget, name, None)
            if isinstance(value, Widget):
                stack.append(value)
            elif isinstance(value, (list, tuple)):
                stack.extend(v for v in value if isinstance(v, Widget))
    return list(found.values())


@dataclass
class Observed:
    """One watch with every view on it, recording everything they ever showed."""

    handle: runway_widgets.Watch
    card: TaskCard
    trait_values: list[str]
    updates: list[WatchUpdate]
    terminal: io.StringIO
    error: BaseException | None = None

    def texts(self) -> list[str]:
        texts = list(self.trait_values)
        for widget in all_widgets(self.card.root):  # the final state, as a saved notebook keeps it
            texts.append(json.dumps(widget.get_state(), default=repr))
            texts.append(repr({name: getattr(widget, name, None) for name in widget.trait_names()}))
        for update in self.updates:
            texts += [repr(update), card_html(update), summary_line(update), str(update.note)]
            if update.snapshot is not None:
                texts += [repr(update.snapshot), json.dumps(update.snapshot.as_dict()),
                          json.dumps(dict(update.snapshot.raw), default=repr)]
            if update.error is not None:
                texts += exception_texts(update.error)
        texts.append(board_html(self.updates[-1:]))
        texts += [repr(self.handle), repr(self.handle.update()), self.terminal.getvalue()]
        if self.error is not None:
            texts += exception_texts(self.error)
        return texts


def observe(task: str, client: Client, **kwargs: Any) -> Observed:
    card = TaskCard(task)
    values: list[str] = []
    for widget in all_widgets(card.root):
        widget.observe(lambda change: values.append(repr(change["new"])), names=traitlets.All)
    updates: list[WatchUpdate] = []
    terminal = io.StringIO()
    options: dict[str, Any] = {"interval": 0.1, "pacing": PACE, "give_up_after": 0.5, "not_found_grace": 0.5,
                               **kwargs}
    handle = watch(task, client=client, on_update=card.render, **options)
    handle.on_update(updates.append)
    handle.on_update(TerminalBoard([task], terminal, live=False))
    return Observed(handle, card, values, updates, terminal)


API_CASES: list[tuple[str, Timeline, tuple[Fault, ...], dict[str, Any], type[BaseException] | None, str]] = [
    ("success, saved", quick(), (), {"save": "{tmp}"}, None, ""),
    ("401 echoing the key", quick(), (Fault("echo_auth"),), {}, AuthenticationError, "[redacted]"),
    ("200 echoing the key", quick(), (Fault("echo_auth", status=200, count=PERSISTENT),), {}, GaveUpError,
     "[redacted]"),
    ("429 echoing the key", quick(), (Fault("echo_auth", status=429, count=PERSISTENT),), {}, GaveUpError,
     "[redacted]"),
    ("500 echoing the key", quick(), (Fault("echo_auth", status=500, count=PERSISTENT),), {}, GaveUpError,
     "[redacted]"),
    ("redirect", quick(), (Fault("redirect"),), {}, BadRequestError, "a redirect to"),
    ("503 JSON", quick(), (Fault("server_error_json", count=PERSISTENT),), {}, GaveUpError, "HTTP 503"),
    ("reset", quick(), (Fault("reset", count=PERSISTENT),), {}, GaveUpError, "broke mid-answer"),
    ("stall past the read timeout", quick(), (Fault("slow", delay=1.0, count=PERSISTENT),), {}, GaveUpError,
     "did not answer within 0.3 s"),
    ("watch timeout", quick(run_for=60), (), {"timeout": 0.6}, WatchTimeoutError, "did not finish"),
    ("not found", Timeline(invisible_for=float("inf")), (), {}, TaskNotFoundError, "was not found"),
    ("key in the failure reason", quick(outcome="FAILURE", fail_reason=f"token {KEY} was revoked",
                                        fail_code=f"BAD_KEY_{KEY}"), (), {}, TaskFailedError, "[redacted]"),
    ("key in action and result URL",
     quick(action=f"Bearer {KEY}", result_url_override=f"https://cdn.example.com/v.mp4?token={KEY}"), (), {},
     None, ""),
    ("media answering HTML", quick(), (Fault("html200", path="/media/"),), {"save": "{tmp}"},
     runway_widgets.DownloadError, "not a video"),
]


def test_api_card_and_logs_never_show_the_key(debug_logs: Everything, tmp_path: Path) -> None:
    sims: list[Simulator] = []
    clients: list[Client] = []
    runs: dict[str, Observed] = {}
    try:
        for name, timeline, faults, kwargs, _, _ in API_CASES:
            sim = Simulator(keys=[KEY]).start()
            sims.append(sim)
            task = sim.add_task(KEY, timeline)
            for fault in faults:
                sim.inject(fault)
            # A short read timeout only where a stall is the point: elsewhere a loaded machine
            # must not turn a slow answer into an error path the case did not mean.
            client = Client(KEY, sim.base_url, read_timeout=0.3 if name.startswith("stall") else 5.0, deadline=8.0)
            clients.append(client)
            folder = str(tmp_path / name.replace(" ", "-").replace(",", "")) + os.sep
            options = {k: (folder if v == "{tmp}" else v) for k, v in kwargs.items()}
            runs[name] = observe(task, client, **options)
        for run in runs.values():
            try:
                run.handle.wait(20)
            except RunwayWidgetsError as exc:
                run.error = exc
        # The create call, too, when the server echoes the key into its answer.
        sims[0].inject(Fault("echo_auth", path="/runway/pro/"))
        with pytest.raises(AuthenticationError) as created:
            runway_widgets.create_text_to_video("a boat", api_key=KEY, base_url=sims[0].base_url,
                                                callback_url="https://example.com/hook")
        registry = repr(runway_widgets.recent_watches()) + repr(runway_widgets.live_watches())
        client_reprs = [repr(c) + str(c) + repr(vars(c)) for c in clients]
    finally:
        for client in clients:
            client.close()
        for sim in sims:
            sim.stop()

    for name, _, _, _, kind, words in API_CASES:
        run = runs[name]
        if kind is None:
            assert run.error is None, (name, run.error)
        else:
            assert isinstance(run.error, kind), (name, repr(run.error))
            assert words in "\n".join(exception_texts(run.error)), (name, str(run.error))
        for text in run.texts():
            assert_clean(text, name)
    assert "[redacted]" in str(created.value)
    for text in exception_texts(created.value) + [registry, *client_reprs]:
        assert_clean(text, "the create call, the registry or a client")
    assert runs["key in action and result URL"].handle.result_url == "https://cdn.example.com/v.mp4?token=[redacted]"
    assert "Bearer [redacted]" in runs["key in action and result URL"].card.body.value

    assert_journal_clean([run.handle.task_id for run in runs.values()])

    assert len(debug_logs.records) > 50
    names = {record.name for record in debug_logs.records}
    assert {"urllib3.connectionpool", "runway_widgets.simulator"} <= names  # DEBUG logging was on
    for record in debug_logs.records:
        for text in record_texts(record):
            assert_clean(text, f"a log record of {record.name}")


def test_the_journal_scrubs_the_key_from_what_a_create_call_sent() -> None:
    """A prompt or parameter holding the key (pasted by mistake) reaches the journal redacted."""
    from runway_widgets.journal import journal_path

    with Simulator(keys=[KEY], default_timeline=quick()) as sim:
        task = runway_widgets.create_text_to_video(f"a boat {KEY}", api_key=KEY, base_url=sim.base_url,
                                                   callback_url=f"https://example.com/hook?token={KEY}")
        handle = watch(task, api_key=KEY, base_url=sim.base_url, interval=0.1)
        handle.wait(20)
    text = journal_path().read_text(encoding="utf-8")
    assert task in text and "a boat [redacted]" in text and "hook?token=[redacted]" in text
    assert_clean(text, "the task journal")


# -- the key is read on the main thread only -------------------------------------------------------------


class FakeUserdata(types.ModuleType):
    """``google.colab.userdata`` (not thread-safe in Colab): records which thread asks."""

    def __init__(self) -> None:
        super().__init__("google.colab.userdata")
        self.calls: list[tuple[str, threading.Thread]] = []

    def get(self, name: str) -> str:
        self.calls.append((name, threading.current_thread()))
        if name != "COMETAPI_KEY":
            raise KeyError(name)
        return KEY


@pytest.fixture
def colab(monkeypatch: pytest.MonkeyPatch) -> FakeUserdata:
    userdata = FakeUserdata()
    package = types.ModuleType("google.colab")
    package.userdata = userdata  # type: ignore[attr-defined]
    if "google" not in sys.modules:
        monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", package)
    monkeypatch.setitem(sys.modules, "google.colab.userdata", userdata)
    return userdata


def spy_on_resolve_key(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """Wrap ``resolve_key`` wherever it was imported; return the threads that call it."""
    from runway_widgets import api, client, config, magic

    threads: list[threading.Thread] = []
    original = config.resolve_key

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return original(*args, **kwargs)

    for module in (api, client, config, magic):
        monkeypatch.setattr(module, "resolve_key", spy)
    return threads


def test_the_key_is_read_on_the_main_thread_only(monkeypatch: pytest.MonkeyPatch, colab: FakeUserdata,
                                                 debug_logs: Everything, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    threads = spy_on_resolve_key(monkeypatch)
    monkeypatch.delenv("COMETAPI_KEY", raising=False)  # only the Colab secret has it
    with Simulator(keys=[KEY]) as sim:
        monkeypatch.setenv("COMETAPI_BASE_URL", sim.base_url)
        foreground, background = sim.add_task(KEY, quick()), sim.add_task(KEY, quick(run_for=1.0))
        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "runway_widgets")
        try:
            first = shell.run_line_magic("runway_watch", f"{foreground} --save {tmp_path}")
            second = shell.run_line_magic("runway_watch", f"{background} --background")
            assert second.wait(20).succeeded and first.done() and first.saved_path
        finally:
            shell.run_line_magic("unload_ext", "runway_widgets")
        assert all(r.key_ok for r in sim.requests if r.path == "/runway/feed")  # the secret was the key used
    main = threading.main_thread()
    assert colab.calls and all(name == "COMETAPI_KEY" and thread is main for name, thread in colab.calls)
    assert threads and all(thread is main for thread in threads), {t.name for t in threads}
    captured = capsys.readouterr()
    assert foreground[:8] in captured.out  # the terminal board was shown ...
    assert_clean(captured.out + captured.err, "the shell's output")  # ... without the key
    for record in debug_logs.records:
        for text in record_texts(record):
            assert_clean(text, f"a log record of {record.name}")


def test_a_worker_thread_never_resolves_a_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Plain Python: watching with saving and an expired URL (a second poll from a worker) reads no key."""
    threads = spy_on_resolve_key(monkeypatch)
    with Simulator(keys=[KEY]) as sim:
        task = sim.add_task(KEY, quick(url_ttl=1))
        sim.inject(Fault("slow", delay=2.1, path="/media/"))  # the signed URL has expired when it arrives
        handle = watch(task, api_key=KEY, base_url=sim.base_url, interval=0.1, save=tmp_path)
        handle.wait(20)
        assert handle.saved_path and [r.path.split("/")[1] for r in sim.requests_for(task)][-2:] == ["runway", "media"]
    assert threads and all(thread is threading.main_thread() for thread in threads)

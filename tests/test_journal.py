"""The task journal: where it lives, what a watch writes and when, several writers, corruption,
its size bound, and a home that cannot be written (also as a non-root user)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import runway_widgets as rw
from runway_widgets import journal as journal_mod
from runway_widgets import recorder
from runway_widgets.filelock import _acquire_fallback
from runway_widgets.journal import Journal, get_journal, journal_home, journal_path
from runway_widgets.records import TaskRecord, url_expiry
from runway_widgets.simulator import Fault, Simulator

from helpers import FAKE_KEY, drop_to_nobody, nobody_python, quick

pytestmark = pytest.mark.timeout(120)


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ------------------------------------------------------------------------------ where it lives
def test_the_journal_lives_in_runway_widgets_home_else_the_xdg_data_folder(monkeypatch: pytest.MonkeyPatch,
                                                                              tmp_path: Path) -> None:
    monkeypatch.setenv("RUNWAY_WIDGETS_HOME", str(tmp_path / "explicit"))
    assert journal_path() == tmp_path / "explicit" / "tasks.jsonl"
    monkeypatch.delenv("RUNWAY_WIDGETS_HOME")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert journal_home() == tmp_path / "xdg" / "runway_widgets"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")  # the XDG spec: relative values are invalid
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert journal_home() == tmp_path / "home" / ".local" / "share" / "runway_widgets"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert journal_home() == tmp_path / "home" / "Library" / "Application Support" / "runway_widgets"


def test_the_tests_journal_is_not_in_the_real_home(journal_home: Path) -> None:
    assert journal_path().parent == journal_home
    assert not str(journal_home).startswith(os.path.expanduser("~/.local"))


# ---------------------------------------------------------------------- what a watch writes
def test_a_created_and_watched_task_is_journaled_before_its_first_poll_and_as_it_moves(
        sim: Simulator, tmp_path: Path) -> None:
    sim.set_default_timeline(quick(submitted_for=0.3, run_for=1.2, url_ttl=3600, queued_for=1.5))
    task = rw.create_text_to_video("a paper boat", api_key=FAKE_KEY, base_url=sim.base_url,
                                   callback_url="https://example.com/hook", seconds=5)
    created = TaskRecord.from_dict(get_journal().tasks()[(sim.base_url, task)])
    assert (created.outcome, created.kind, created.prompt) == ("created", "text_to_video", "a paper boat")
    assert created.parameters == {"callback_url": "https://example.com/hook", "ratio": "16:9", "options": {"seconds": 5}}
    assert created.unfinished  # created, never watched: resume would pick it up

    sim.inject(Fault("slow", delay=1.0, path="/runway/feed"))  # the first poll takes a second
    handle = rw.watch(task, api_key=FAKE_KEY, base_url=sim.base_url, interval=0.1, save=str(tmp_path / "videos") + os.sep)
    first = TaskRecord.from_dict(get_journal().tasks()[(sim.base_url, task)])
    assert not [r for r in sim.requests_for(task) if r.path == "/runway/feed"]  # no poll answered yet
    assert first.outcome == "watching" and first.status is None and first.pid == os.getpid()
    # "python" in a plain interpreter; "ipython" once an earlier test in this process made a shell.
    assert first.save == str(tmp_path / "videos") + os.sep and first.origin == recorder.origin()
    assert first.origin in ("python", "ipython")
    assert first.prompt == "a paper boat"  # the create record's fields survive the merge
    handle.wait(20)

    record = rw.history()[0]
    assert (record.task_id, record.outcome, record.status, record.progress) == (task, "succeeded", "SUCCESS", 100)
    assert record.saved_path == str(tmp_path / "videos" / f"{task}.mp4") and Path(record.saved_path).is_file()
    assert record.result_url and record.result_expires_at is not None
    assert abs(record.result_expires_at - (time.time() + 3600)) < 60 and record.url_state() == "fresh"
    assert record.ended_at and record.updated_at and record.watched_at and record.created_at
    assert not record.unfinished
    written = [r for r in lines_of(journal_path()) if r["task_id"] == task]
    polls = handle.update().polls
    # Written on changes, not on every poll of an unchanged state.
    assert polls >= 8 and len(written) <= 2 + len({r.get("status") for r in written}) + 2, (polls, written)
    assert {"QUEUED", "IN_PROGRESS", "SUCCESS"} <= {r.get("status") for r in written}
    assert "sk-" not in journal_path().read_text() and FAKE_KEY not in journal_path().read_text()


def test_a_failure_records_its_reason_and_code(sim: Simulator) -> None:
    task = sim.add_task(FAKE_KEY, quick(submitted_for=0.3, queued_for=0.3, run_for=1.2, outcome="FAILURE", fail_reason="Moderation said no.", fail_code="SAFETY.X"))
    handle = rw.watch(task, api_key=FAKE_KEY, base_url=sim.base_url, interval=0.1)
    with pytest.raises(rw.TaskFailedError):
        handle.wait(20)
    [record] = rw.history(status="failed")
    assert (record.fail_reason, record.fail_code, record.outcome) == ("Moderation said no.", "SAFETY.X", "failed")
    assert record.error and "Moderation said no." in record.error


def test_a_superseded_watch_does_not_overwrite_its_successor(sim: Simulator) -> None:
    task = sim.add_task(FAKE_KEY, quick(submitted_for=0.3, queued_for=0.3, run_for=30))
    first = rw.watch(task, api_key=FAKE_KEY, base_url=sim.base_url, interval=0.2)
    second = rw.watch(task, api_key=FAKE_KEY, base_url=sim.base_url, interval=0.2)
    assert first.done() and "Superseded" in str(first.error)
    assert rw.history()[0].outcome == "watching"
    second.stop()
    assert rw.history()[0].outcome == "stopped"


def test_signed_url_expiry_forms() -> None:
    assert url_expiry("http://h/m.mp4?exp=1796290738&sig=ab") == 1796290738
    assert url_expiry("https://d.cloudfront.net/v.mp4?Expires=1796290738&Signature=x&Key-Pair-Id=K") == 1796290738
    amz = url_expiry("https://b.s3.amazonaws.com/v.mp4?X-Amz-Date=20261203T000000Z&X-Amz-Expires=3600&X-Amz-Signature=s")
    assert amz == 1796256000 + 3600
    goog = url_expiry("https://storage.googleapis.com/b/v.mp4?X-Goog-Date=20261203T000000Z&X-Goog-Expires=60")
    assert goog == 1796256000 + 60
    assert url_expiry("https://a.blob.core.windows.net/c/v.mp4?sv=2020&se=2026-12-03T00%3A00%3A00Z&sig=x") == 1796256000
    assert url_expiry("https://cdn/v.mp4?hdnts=st=1~exp=1796290738~acl=/*~hmac=ab") == 1796290738
    for nothing in (None, "", "https://cdn/v.mp4", "https://cdn/v.mp4?exp=soon", "https://cdn/v.mp4?exp=12"):
        assert url_expiry(nothing) is None


# ------------------------------------------------------------------------- several writers
WRITER = textwrap.dedent("""
    import json, os, sys, time
    from runway_widgets.journal import Journal
    path, name, count, tasks, max_bytes, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    journal = Journal(path, max_bytes=max_bytes, max_tasks=tasks * 2)
    pad = "x" * 900  # ~1 KB records: a torn write would show
    while time.time() < start:
        time.sleep(0.001)
    began = time.perf_counter()
    for seq in range(count):
        ok = journal.append({"task_id": f"{name}-{seq % tasks}", "base_url": "http://127.0.0.1:1", "writer": name,
                             "seq": seq, "updated_at": f"{time.time():.6f}", "pad": pad})
        assert ok
    print(json.dumps({"seconds": time.perf_counter() - began, "compactions": journal.compactions}))
""")


def run_writers(path: Path, count: int, tasks: int, max_bytes: int) -> list[dict[str, Any]]:
    start = time.time() + 1.5  # both begin together, after interpreter start-up
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, str(count), str(tasks), str(max_bytes),
                               str(start)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True) for name in ("a", "b")]
    try:
        results = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.communicate()
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in results]


def test_two_processes_append_concurrently_and_every_record_is_there_whole(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    count = 3000
    stats = run_writers(path, count, tasks=count, max_bytes=1 << 40)  # no compaction
    raw = path.read_bytes().split(b"\n")
    assert raw[-1] == b""
    records = [json.loads(line) for line in raw[:-1]]  # every line is whole JSON
    assert len(records) == 2 * count
    for name in ("a", "b"):
        seqs = [r["seq"] for r in records if r["writer"] == name]
        assert seqs == list(range(count))  # all there, in each writer's order
    # Interleaved, not one after the other: the lock was really contended.  (How often
    # the file switches writer depends on the scheduler: on 2 busy cores one writer may
    # hold a core for hundreds of records, and a fresh-clone `make test` read exactly 20
    # switches.  One after the other reads 1.)
    writers = [r["writer"] for r in records]
    assert sum(1 for x, y in zip(writers, writers[1:]) if x != y) >= 3
    spans = {name: [float(r["updated_at"]) for r in records if r["writer"] == name] for name in ("a", "b")}
    assert spans["a"][0] < spans["b"][-1] and spans["b"][0] < spans["a"][-1]  # each wrote while the other did
    rate = 2 * count / max(s["seconds"] for s in stats)
    print(f"\njournal: {rate:.0f} records/s with two writers (1 KB records)")
    assert rate > 200


def test_two_writers_with_compaction_keep_the_bound_and_the_newest(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    max_bytes = 120_000
    stats = run_writers(path, 3000, tasks=100, max_bytes=max_bytes)
    assert sum(s["compactions"] for s in stats) > 5
    size = path.stat().st_size
    assert size <= max_bytes + 2000, size
    journal = Journal(path)
    records = journal.records()  # whole lines only (a corrupt one would warn and be dropped)
    assert records and len(path.read_bytes().split(b"\n")) - 1 == len(records)
    tasks = journal.tasks()
    newest = max(tasks.values(), key=lambda r: r["updated_at"])
    assert newest["seq"] == 2999 and newest["task_id"].endswith("-99")  # the last write survived
    assert len(tasks) <= 200 and len(tasks) >= 40


# ----------------------------------------------------------------------------- corruption
def test_corrupt_records_are_skipped_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "tasks.jsonl"
    good = [{"task_id": f"t{i}", "base_url": "http://127.0.0.1:1", "outcome": "succeeded",
             "updated_at": f"2026-12-0{i + 1}T00:00:00.000Z"} for i in range(3)]
    lines = [json.dumps(good[0]).encode(), b"{not json", json.dumps([1, 2]).encode(), b'{"base_url": "x"}',
             json.dumps(good[1]).encode(), b"\xff\xfe garbage", json.dumps(good[2]).encode(), b'{"task_id": "t9", "ba']
    path.write_bytes(b"\n".join(lines))  # the last one torn: no newline after it
    journal = Journal(path)
    with caplog.at_level(logging.WARNING, logger="runway_widgets"):
        assert [r["task_id"] for r in journal.records()] == ["t0", "t1", "t2"]
        assert set(journal.tasks()) == {("http://127.0.0.1:1", f"t{i}") for i in range(3)}
        journal.records()
    warnings = [r for r in caplog.records if "corrupt" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "skipped 5 corrupt records" in warnings[0].getMessage() and str(path) in warnings[0].getMessage()
    assert journal.compact()
    assert [r["task_id"] for r in lines_of(path)] == ["t0", "t1", "t2"]  # compaction drops them


def test_history_skips_corrupt_lines_of_the_real_journal(caplog: pytest.LogCaptureFixture) -> None:
    path = journal_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('garbage\n{"task_id": "t1", "base_url": "http://127.0.0.1:1", "outcome": "failed"}\n')
    with caplog.at_level(logging.WARNING, logger="runway_widgets"):
        assert [r.task_id for r in rw.history()] == ["t1"]
        assert [r.task_id for r in rw.history(status="failed")] == ["t1"]
    assert len([r for r in caplog.records if "corrupt" in r.getMessage()]) == 1


def test_a_torn_line_does_not_swallow_the_next_record(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_bytes(b'{"task_id": "t1", "base_url": "u"}\n{"task_id": "killed mid-wri')  # kill -9 mid-line
    journal = Journal(path)
    assert journal.append({"task_id": "t2", "base_url": "u"})
    with caplog.at_level(logging.WARNING, logger="runway_widgets"):
        assert [r["task_id"] for r in journal.records()] == ["t1", "t2"]
    assert "skipped 1 corrupt record" in caplog.text


FULL_DISK = textwrap.dedent("""
    import json, os, resource, signal, sys
    from runway_widgets.journal import Journal
    journal = Journal(sys.argv[1])
    assert journal.append({"task_id": "before", "base_url": "u"})
    size = os.path.getsize(sys.argv[1])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit: EFBIG instead of a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, size + 100))  # the "disk" fills mid-line
    big = journal.append({"task_id": "big", "base_url": "u", "pad": "x" * 1000})
    again = journal.append({"task_id": "big2", "base_url": "u", "pad": "x" * 1000})
    small = journal.append({"task_id": "small", "base_url": "u"})
    print(json.dumps([big, again, small, os.path.getsize(sys.argv[1]) - size]))
""")


def test_a_full_disk_mid_record_leaves_no_fragment_and_warns_once(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    proc = subprocess.run([sys.executable, "-c", FULL_DISK, str(path)], capture_output=True, text=True, timeout=60,
                          start_new_session=True)
    assert proc.returncode == 0, proc.stderr
    big, again, small, grown = json.loads(proc.stdout)
    assert (big, again, small) == (False, False, True) and 0 < grown <= 100
    assert proc.stderr.count("cannot write the task journal") == 1, proc.stderr
    assert "too large" in proc.stderr.lower()  # EFBIG's strerror: the reason is in the sentence
    assert [r["task_id"] for r in Journal(path).records()] == ["before", "small"]
    assert path.read_bytes().endswith(b"\n")


# ------------------------------------------------------------------------------- the bound
def test_the_journal_size_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    max_bytes = 64 * 1024
    journal = Journal(path, max_bytes=max_bytes, max_tasks=100)
    largest = 0
    biggest_file = 0
    for seq in range(5000):
        record = {"task_id": f"task-{seq // 5}", "base_url": "http://127.0.0.1:1", "seq": seq,
                  "updated_at": f"{seq:08d}", "prompt": "p" * (seq % 300)}
        largest = max(largest, len(json.dumps(record)) + 1)
        assert journal.append(record)
        biggest_file = max(biggest_file, path.stat().st_size)
    assert biggest_file <= max_bytes + largest
    assert journal.compactions > 10
    assert journal.compact()
    tasks = journal.tasks()
    assert len(tasks) == 100  # the newest max_tasks (they fit in half the bound here)
    newest = tasks[("http://127.0.0.1:1", "task-999")]
    assert newest["seq"] == 4999  # the newest task, merged to its latest record
    kept = sorted(int(t.split("-")[1]) for _, t in tasks)
    assert kept == list(range(kept[0], 1000))  # the newest tasks, none missing in between
    print(f"\njournal bound: {max_bytes} bytes -> file never above {biggest_file} bytes; {len(tasks)} tasks kept")


# ----------------------------------------------------------------- a home that cannot be written
def test_an_unwritable_home_warns_once_and_the_watch_goes_on(sim: Simulator, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RUNWAY_WIDGETS_HOME", str(blocker / "home"))  # NotADirectoryError, even for root
    tasks = [sim.add_task(FAKE_KEY, quick(submitted_for=0.3, queued_for=0.3, run_for=1.2)) for _ in range(2)]
    with caplog.at_level(logging.WARNING, logger="runway_widgets"):
        handles = [rw.watch(t, api_key=FAKE_KEY, base_url=sim.base_url, interval=0.1, save=str(tmp_path / "v") + os.sep)
                   for t in tasks]
        for handle in handles:
            assert handle.wait(20).succeeded and handle.saved_path
        assert rw.history() == []
    warnings = [r.getMessage() for r in caplog.records if "task journal" in r.getMessage()]
    assert len(warnings) == 1 and "cannot write the task journal" in warnings[0], warnings


READ_ONLY_SCRIPT = textwrap.dedent("""
    import os, sys
    import runway_widgets as rw
    handle = rw.watch(sys.argv[1], api_key="sk-test-123", base_url=sys.argv[2], interval=0.1, save=sys.argv[3])
    snapshot = handle.wait(30)
    second = rw.watch(sys.argv[4], api_key="sk-test-123", base_url=sys.argv[2], interval=0.1)
    second.wait(30)
    print("uid", os.getuid(), "ok", snapshot.status, handle.saved_path, "history", len(rw.history()))
""")


def test_a_read_only_home_as_a_non_root_user(sim: Simulator) -> None:
    """chmod 555 on the journal folder: root would ignore it, so as root the watch runs as nobody."""
    root = Path(tempfile.mkdtemp(prefix="rw-readonly-"))  # not under pytest's 0700 tmp folders
    try:
        root.chmod(0o755)
        home, videos = root / "home", root / "videos"
        home.mkdir()
        videos.mkdir()
        (home / "tasks.jsonl").write_text("")
        home.chmod(0o555)
        (home / "tasks.jsonl").chmod(0o444)
        videos.chmod(0o777)
        tasks = [sim.add_task("sk-test-123", quick(submitted_for=0.3, queued_for=0.3, run_for=1.2)) for _ in range(2)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMETAPI_")}
        env.update(RUNWAY_WIDGETS_HOME=str(home), HOME=str(root), PYTHONDONTWRITEBYTECODE="1")
        as_root = os.geteuid() == 0
        argv, extra = nobody_python() if as_root else ([sys.executable], {})
        env.update(extra)
        proc = subprocess.run([*argv, "-c", READ_ONLY_SCRIPT, tasks[0], sim.base_url, str(videos) + "/",
                               tasks[1]], capture_output=True, text=True, timeout=60, env=env, cwd=str(root),
                              preexec_fn=drop_to_nobody if as_root else None, start_new_session=True)
        assert proc.returncode == 0, proc.stderr
        assert f"uid {65534 if as_root else os.getuid()} ok SUCCESS {videos}/{tasks[0]}.mp4 history 0" in proc.stdout
        assert proc.stderr.count("cannot write the task journal") == 1, proc.stderr
        assert "Permission denied" in proc.stderr and str(home) in proc.stderr
        assert (videos / f"{tasks[0]}.mp4").stat().st_size > 0
        assert (home / "tasks.jsonl").read_text() == ""
    finally:
        for path in (root / "home",):
            if path.exists():
                path.chmod(0o755)
        import shutil

        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------------- the lock
def test_the_portable_lock_fallback_excludes_and_breaks_a_stale_lock(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    lock = tmp_path / "tasks.lock"
    release = _acquire_fallback(-1, lock, time.monotonic() + 1)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        _acquire_fallback(-1, lock, time.monotonic() + 0.2)
    assert 0.15 < time.monotonic() - started < 2
    release()
    _acquire_fallback(-1, lock, time.monotonic() + 0.2)()  # free again
    _acquire_fallback(-1, lock, time.monotonic() + 0.2)  # taken and never released: its owner "died"
    marker = Path(str(lock) + ".excl")
    old = time.time() - 60
    os.utime(marker, (old, old))
    _acquire_fallback(-1, lock, time.monotonic() + 0.5)()  # the stale marker is broken


def test_a_lock_that_never_comes_drops_the_write_with_the_warning(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    import fcntl

    journal = Journal(tmp_path / "tasks.jsonl", lock_timeout=0.3)
    assert journal.append({"task_id": "t", "base_url": "u"})
    holder = os.open(journal.lock_path, os.O_RDWR)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with caplog.at_level(logging.WARNING, logger="runway_widgets"):
            started = time.monotonic()
            assert journal.append({"task_id": "t2", "base_url": "u"}) is False
            assert time.monotonic() - started < 2
    finally:
        os.close(holder)
    assert [r.getMessage() for r in caplog.records if "task journal" in r.getMessage()]
    assert journal.append({"task_id": "t3", "base_url": "u"})
    assert [r["task_id"] for r in journal.records()] == ["t", "t3"]


def test_journal_module_is_light() -> None:
    """The journal, the records and the recorder import neither IPython nor ipywidgets."""
    code = ("import sys, runway_widgets.journal, runway_widgets.recorder, runway_widgets.resuming; "
            "print([m for m in ('IPython', 'ipywidgets') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
    assert journal_mod.MAX_BYTES <= 4 * 1024 * 1024

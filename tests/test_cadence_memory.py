"""The gateway cadence remembered across processes (``cadence.json`` next to the journal).

Real files in the test's own ``$RUNWAY_WIDGETS_HOME`` (conftest), real processes for the
concurrent writers and the end-to-end run against the simulator; nothing mocked.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runway_widgets import cadence_memory as cm
from runway_widgets import cadence_store as store
from runway_widgets.cadence import Cadence, learn
from runway_widgets.cadence_memory import decode, encode, entry_for, memory_key, reanchor
from runway_widgets.cadence_store import CadenceMemory
from runway_widgets.gateways import Gateway, GatewayRegistry
from runway_widgets.simulator import Simulator, Timeline
from helpers import FAKE_KEY, communicate

URL = "https://gateway.example"


def locked_cadence(period: float = 15.0, phase: float = 3.0, ticks: int = 12, at: float = 0.0) -> Cadence:
    """A cadence learnt from sharp brackets around ``at + phase + k * period``."""
    cadence = Cadence()
    for k in range(ticks):
        tick = at + phase + k * period
        cadence = learn(cadence, (tick - 0.3, tick + 0.3))
    assert cadence.locked and cadence.period is not None and abs(cadence.period - period) < 0.1
    return cadence


@pytest.fixture(autouse=True)
def fresh_warnings() -> None:
    store._warned.clear()  # one warning per file and process: each test starts with none given


# -- pure: the conversion and the ageing ---------------------------------------------------------


def test_monotonic_and_wall_clock_convert_both_ways() -> None:
    cadence = locked_cadence(at=100.0)
    # Saved by a process whose monotonic clock reads 300 when the wall clock reads 5000 ...
    entry = encode(cadence, 4950.0, 300.0, 5000.0)
    assert entry is not None
    assert entry["start"] == pytest.approx(cadence.start + 4700.0, abs=1e-3)
    assert entry["brackets"][0] == pytest.approx([cadence.brackets[0][0] + 4700.0, cadence.brackets[0][1] + 4700.0],
                                                 abs=1e-3)
    # ... and loaded 10 s later by one whose monotonic clock reads 7 then: offset 5003.
    recall = decode(json.loads(json.dumps(entry)), 7.0, 5010.0)
    assert recall is not None and recall.cadence.locked
    for (lo, hi), (lo2, hi2) in zip(cadence.brackets, recall.cadence.brackets):
        assert (lo2, hi2) == pytest.approx((lo + 4700.0 - 5003.0, hi + 4700.0 - 5003.0), abs=1e-3)
    # The same ticks, predicted on the new clock: a tick of the old window, shifted.
    shift = 4700.0 - 5003.0
    tick_then = cadence.window(0)[0] + shift
    lo, hi = recall.cadence.window(0)
    k = round((lo - tick_then) / cadence.period)  # type: ignore[operator]
    assert lo <= tick_then + k * cadence.period + 1e-6 and tick_then + k * cadence.period <= hi + cadence.width
    assert recall.cadence.start <= 7.0 < recall.cadence.start + cadence.period  # re-anchored at the latest tick


def test_a_fresh_entry_stays_locked_an_old_one_keeps_its_period_a_very_old_one_is_forgotten() -> None:
    cadence = Cadence(brackets=((2.7, 3.3),), period=15.0, start=3.0, width=0.5, drift=0.01, sharp_at=3.3)
    entry = encode(cadence, 1000.0, 0.0, 1000.0)
    # An hour later (the same offset: both clocks read 1000 apart): the latest tick is the
    # 239th, its window 0.5 + 2 * 239 * 0.01 = 5.28 s wide, still within 0.4 * 15 s.
    fresh = decode(entry, 3600.0, 1000.0 + 3600.0)
    assert fresh is not None and fresh.cadence.locked and fresh.prior == 15.0
    assert fresh.cadence.width == pytest.approx(0.5 + 2 * 239 * 0.01)
    assert fresh.cadence.start == pytest.approx(3.0 + 239 * 15.0 - 239 * 0.01)
    assert fresh.cadence.window(1) == pytest.approx(cadence.window(240))  # it predicts what the saver would
    old = decode(entry, 7200.0, 1000.0 + 7200.0)  # 479 ticks: 10.1 s wide, too wide to aim at
    assert old is not None and not old.cadence.locked and old.cadence.period is None
    assert old.prior == 15.0  # the period is still believed
    assert decode(entry, 0.0, 1000.0 + cm.FORGET + 1.0) is None
    assert decode(entry, 0.0, 1000.0 - cm.SKEW - 1.0) is None  # from the future: a clock gone wrong
    assert reanchor(Cadence(), 0.0) is None


def test_brackets_older_than_their_age_are_dropped() -> None:
    cadence = Cadence()
    for lo in (10.0, 40.0, 90.0):
        cadence = learn(cadence, (lo, lo + 4.0))
    assert not cadence.locked
    entry = entry_for(cadence, 100.0, 10_100.0)
    assert entry is not None and len(entry["brackets"]) == 3 and "period" not in entry
    assert entry["seen"] == pytest.approx(10_000.0 + 94.05)
    recent = decode(entry, 0.0, 10_100.0)
    assert recent is not None and len(recent.cadence.brackets) == 3
    assert decode(entry, 0.0, 10_000.0 + cm.BRACKET_AGE + 30.0) is not None  # only the first is too old
    assert len(decode(entry, 0.0, 10_000.0 + cm.BRACKET_AGE + 30.0).cadence.brackets) == 2  # type: ignore[union-attr]


def test_a_continuous_verdict_is_kept_and_ages_out() -> None:
    learnt = learn(learn(Cadence(), (0.0, 1.0)), (1.0, 2.0), bound=1.5)
    assert learnt.continuous
    entry = entry_for(learnt, 50.0, 1050.0)
    assert entry == {"seen": 1050.0, "continuous": True}
    loaded = decode(entry, 0.0, 2000.0)
    assert loaded is not None and loaded.cadence.continuous and loaded.cadence.fast
    # Loaded but never seen again in this process: not written again (its age stays honest).
    assert entry_for(loaded.cadence, 10.0, 2010.0) is None
    assert decode(entry, 0.0, 1050.0 + cm.FORGET + 1.0) is None


def test_a_loaded_cadence_learns_on_and_follows_a_gateway_that_moved() -> None:
    saved = locked_cadence(phase=3.0, ticks=12)
    recall = decode(encode(saved, 1000.0, 200.0, 1000.0), 200.0, 1000.0)
    assert recall is not None and recall.cadence.locked
    cadence = recall.cadence
    # The gateway restarted: its ticks now fall at phase 10.  Narrow brackets there fit no
    # remembered phase, so the old evidence goes and the new phase is learnt.
    for k in range(20, 40):
        tick = 10.0 + k * 15.0
        cadence = learn(cadence, (tick - 0.3, tick + 0.3), prior=recall.prior)
    assert cadence.locked
    lo, hi = cadence.window(cadence.index_after(10.0 + 45 * 15.0))
    assert lo - 0.5 <= 10.0 + 45 * 15.0 <= hi + 0.5


# -- the key, and no secrets ---------------------------------------------------------------------


def test_the_key_drops_userinfo_query_fragment_and_the_trailing_slash() -> None:
    assert memory_key("https://user:sk-made-up-secret@API.Example.com:8443/v1/?key=sk-x#frag") == \
        "https://api.example.com:8443/v1"
    assert memory_key("https://api.cometapi.com/") == memory_key("https://api.cometapi.com") == "https://api.cometapi.com"
    assert memory_key("http://[::1]:8080/") == "http://[::1]:8080"


def test_no_secret_reaches_the_file(journal_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-made-up-0123456789abcdef"
    monkeypatch.setenv("COMETAPI_KEY", secret)
    memory = CadenceMemory(f"https://someone:{secret}@gateway.example/?key={secret}")
    memory.note(locked_cadence(at=time.monotonic() - 200.0))
    text = (journal_home / store.FILENAME).read_text(encoding="utf-8")
    assert memory.saves == 1 and "gateway.example" in text
    assert secret not in text and "someone" not in text and "key=" not in text


# -- the file: round trip, throttle, merge, bound, failures --------------------------------------


def test_round_trip_through_the_file(journal_home: Path) -> None:
    memory = CadenceMemory(URL + "/")
    assert memory.recall() is None  # nothing yet
    cadence = locked_cadence(at=time.monotonic() - 200.0)
    memory.note(cadence)  # the first lock is written at once
    data = json.loads((journal_home / store.FILENAME).read_text(encoding="utf-8"))
    assert data["version"] == 1 and list(data["gateways"]) == [URL]
    assert data["gateways"][URL]["period"] == pytest.approx(cadence.period)
    recall = CadenceMemory(URL).recall()
    assert recall is not None and recall.cadence.locked
    assert recall.cadence.period == pytest.approx(cadence.period)
    assert len(recall.cadence.brackets) == len(cadence.brackets)


def test_saves_are_throttled_and_flushed_at_exit(journal_home: Path) -> None:
    now = [1000.0]
    memory = CadenceMemory(URL, clock=lambda: now[0], wall=lambda: now[0] + 1e9)
    unlocked = learn(learn(Cadence(), (900.0, 904.0)), (930.0, 934.0))
    memory.note(unlocked)  # nothing saved yet: due at once (never saved)
    assert memory.saves == 1
    memory.note(learn(unlocked, (960.0, 964.0)))  # new evidence, 0 s later: waits
    assert memory.saves == 1
    cadence = locked_cadence(at=700.0)
    memory.note(cadence)  # first lock: at once
    assert memory.saves == 2
    sharper = learn(cadence, (cadence.window(30)[0] - 0.1, cadence.window(30)[0] + 0.1))
    memory.note(sharper)  # the same period, sharper: within 30 s, waits
    assert memory.saves == 2
    assert memory.flush() and memory.saves == 3  # what atexit does
    assert not memory.flush()  # nothing left
    now[0] += store.SAVE_EVERY + 1
    memory.note(learn(sharper, (cadence.window(31)[0] - 0.1, cadence.window(31)[0] + 0.1)))
    assert memory.saves == 4


def test_the_newest_entry_wins_and_the_file_is_bounded(journal_home: Path) -> None:
    path = journal_home / store.FILENAME
    for i in range(store.MAX_ENTRIES + 8):
        store.write_entry(path, f"https://g{i}.example", {"seen": 1000.0 + i, "continuous": True})
    store.write_entry(path, "https://g39.example", {"seen": 10.0, "continuous": True})  # older: loses
    gateways = json.loads(path.read_text(encoding="utf-8"))["gateways"]
    assert len(gateways) == store.MAX_ENTRIES
    assert "https://g0.example" not in gateways and gateways["https://g39.example"]["seen"] == 1039.0
    assert not list(journal_home.glob(".cadence-*"))  # no temporary file left


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b'{"version": 1, "gateways": []}',
                                     b'{"version": 99, "gateways": {}}',
                                     b'{"version": 1, "gateways": {"https://gateway.example": {"seen": "yesterday"}}}',
                                     b'{"version": 1, "gateways": {"https://gateway.example": '
                                     b'{"seen": 1e18, "continuous": false, "brackets": "zz", "period": [1]}}}'])
def test_a_corrupt_or_hand_edited_file_is_ignored_and_replaced(journal_home: Path, content: bytes,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    (journal_home / store.FILENAME).write_bytes(content)
    registry = GatewayRegistry(remember=True)
    with caplog.at_level(logging.WARNING, logger="runway_widgets"):
        gateway = registry.get(URL)
        assert gateway.cadence == Cadence()  # nothing remembered, no exception
        CadenceMemory(URL).recall()
        gateway.record((10.0, 14.0), math.inf, 15.0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    if content.startswith((b"{not", b"\xff", b'{"version": 1, "gateways": []', b'{"version": 99')):
        assert len(warnings) == 1 and "cadence" in warnings[0].getMessage()  # once per file
    data = json.loads((journal_home / store.FILENAME).read_text(encoding="utf-8"))
    assert data["gateways"][URL]["brackets"]  # what was learnt is written over it


def test_an_unwritable_file_warns_once_and_the_watch_goes_on(journal_home: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    (journal_home / store.FILENAME).mkdir()  # the target is a folder: every replace fails, root or not
    memory = CadenceMemory(URL)
    with caplog.at_level(logging.WARNING, logger="runway_widgets"):
        memory.note(locked_cadence(at=time.monotonic() - 200.0))
        memory.note(locked_cadence(period=20.0, at=time.monotonic() - 300.0))  # another period: tried again
        assert memory.recall() is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "remembered gateway cadences" in warnings[0].getMessage()  # once per file
    assert memory.saves == 0 and not list(journal_home.glob(".cadence-*"))


def test_a_read_only_folder_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: permission bits do not stop writes (the folder-as-target test covers it)")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with caplog.at_level(logging.WARNING, logger="runway_widgets"):
            memory = CadenceMemory(URL, path=folder / store.FILENAME)
            memory.note(locked_cadence(at=time.monotonic() - 200.0))
        assert memory.saves == 0 and "cannot write" in caplog.text
    finally:
        folder.chmod(0o700)


def test_a_lock_that_never_comes_costs_a_bounded_wait(journal_home: Path, caplog: pytest.LogCaptureFixture) -> None:
    fcntl = pytest.importorskip("fcntl")
    fd = os.open(journal_home / store.LOCKNAME, os.O_RDWR | os.O_CREAT, 0o600)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({str(journal_home / store.LOCKNAME)!r}, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("held", flush=True)
        time.sleep(30)
        """)], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        memory = CadenceMemory(URL, lock_timeout=0.2)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="runway_widgets"):
            memory.note(locked_cadence(at=time.monotonic() - 200.0))
        assert time.monotonic() - started < 2.0
        assert memory.saves == 0 and "cannot write" in caplog.text
    finally:
        holder.kill()
        holder.communicate()
        os.close(fd)
    del fcntl


def test_two_processes_writing_at_once_keep_both_urls(journal_home: Path) -> None:
    script = textwrap.dedent("""
        import sys, time
        from runway_widgets import cadence_store as store
        path = store.memory_path()
        for i in range(40):
            store.write_entry(path, sys.argv[1], {"seen": time.time(), "continuous": True}, lock_timeout=10.0)
        print("ok")
        """)
    env = {**os.environ, "RUNWAY_WIDGETS_HOME": str(journal_home)}
    procs = [subprocess.Popen([sys.executable, "-c", script, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env, start_new_session=True)
             for url in ("https://one.example", "https://two.example")]
    for proc in procs:
        code, out, err = communicate(proc, 60.0)
        assert code == 0 and out.strip() == "ok", err
    gateways = json.loads((journal_home / store.FILENAME).read_text(encoding="utf-8"))["gateways"]
    assert set(gateways) == {"https://one.example", "https://two.example"}


# -- the registry ----------------------------------------------------------------------------------


def test_the_process_registry_starts_from_memory_and_a_bare_gateway_touches_no_file(journal_home: Path) -> None:
    CadenceMemory(URL).note(locked_cadence(at=time.monotonic() - 200.0))
    assert GatewayRegistry(remember=True).get(URL).cadence.locked
    assert not GatewayRegistry().get(URL).cadence.locked  # tests and benchmarks: no memory
    (journal_home / store.FILENAME).unlink()
    gateway = Gateway(URL)
    for k in range(12):
        gateway.record((3.0 + 15 * k - 0.3, 3.0 + 15 * k + 0.3), math.inf, 15.0)
    assert gateway.cadence.locked and not (journal_home / store.FILENAME).exists()


def test_opting_out(journal_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runway_widgets import config

    CadenceMemory(URL).note(locked_cadence(at=time.monotonic() - 200.0))
    before = (journal_home / store.FILENAME).read_bytes()
    monkeypatch.setenv(config.NO_CADENCE_MEMORY_ENV, "1")
    gateway = GatewayRegistry(remember=True).get(URL)
    assert not gateway.cadence.locked
    for k in range(12):
        gateway.record((3.0 + 15 * k - 0.3, 3.0 + 15 * k + 0.3), math.inf, 15.0)
    assert (journal_home / store.FILENAME).read_bytes() == before  # nothing written either
    monkeypatch.setenv(config.NO_CADENCE_MEMORY_ENV, "0")
    assert GatewayRegistry(remember=True).get(URL).cadence.locked
    monkeypatch.setattr(config, "_configured", {})
    config.configure(remember_cadence=False)
    assert not config.remember_cadence() and not GatewayRegistry(remember=True).get(URL).cadence.locked
    with pytest.raises(config.ConfigError):
        config.configure(remember_cadence="no")


# -- end to end: a real CLI process learns, the next one starts phase-locked -----------------------


def test_a_cli_process_learns_the_ticks_and_the_next_process_starts_locked(journal_home: Path) -> None:
    period = 3.5
    with Simulator(default_timeline=Timeline.fast(), refresh_period=period) as sim:
        # Progress moves at every tick for ~13 s: a change per tick and task, each seen
        # between two polls 0.25 s apart (three tasks: three such brackets per tick).
        tasks = [sim.add_task(FAKE_KEY, Timeline(invisible_for=0, submitted_for=0.2, queued_for=0.2, run_for=13.0))
                 for _ in range(3)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMETAPI_")}
        env.update(COMETAPI_KEY=FAKE_KEY, COMETAPI_BASE_URL=sim.base_url, RUNWAY_WIDGETS_HOME=str(journal_home))
        proc = subprocess.Popen([sys.executable, "-m", "runway_widgets.cli", *tasks, "--interval", "0.25",
                                 "--no-save"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                start_new_session=True)
        code, out, err = communicate(proc, 60.0)
        assert code == 0, (out, err)
        entry = json.loads((journal_home / store.FILENAME).read_text(encoding="utf-8"))["gateways"][sim.base_url]
        assert "period" in entry, entry  # phase-locked when saved
        assert entry["period"] == pytest.approx(period, rel=0.05)  # a few ticks pin it to a few %
        assert abs(entry["seen"] - time.time()) < 60.0
        probe = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
            from runway_widgets.gateways import get_gateways
            c = get_gateways().get({sim.base_url!r}).cadence
            print(c.locked, c.period)
            """)], capture_output=True, text=True, env=env, timeout=30)
        assert probe.returncode == 0, probe.stderr
        locked, learnt = probe.stdout.split()
        assert locked == "True" and float(learnt) == pytest.approx(entry["period"])

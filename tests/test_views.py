"""Views without a kernel: render updates into the card/board and the static HTML."""

from __future__ import annotations

import html
import io

import pytest

from runway_widgets.snapshot import parse_task
from runway_widgets.views.board import GRID_CELL, board_html
from runway_widgets.views.card import card_html, elapsed_words, eta_words, status_html, video_html
from runway_widgets.views.terminal import TerminalBoard
from runway_widgets.views.widget import TaskBoard, TaskCard
from runway_widgets.watch import Outcome, WatchUpdate

TID = "3d957031-9a2a-45e2-9dc7-bc8513059c50"
URL = "https://cdn.example.com/v/1.mp4?sig=a&exp=2"
HOSTILE = '<img src=x onerror="window.__pwned=1"> bad & "quoted"'


def test_running_card_bar_and_status() -> None:
    card = TaskCard(TID)
    card.render(WatchUpdate(TID, Outcome.WATCHING, parse_task({"task_id": TID, "status": "IN_PROGRESS", "progress": "45%", "action": "IMAGE_TO_VIDEO"}),
                            elapsed=42.0, polls=3, eta=30.0, note=""))
    assert card.bar.value == pytest.approx(0.45) and card.bar.description == "45%"
    assert card.bar.bar_style == "info"
    assert "IN_PROGRESS" in card.body.value and "42 s" in card.body.value
    assert "about 30 s left" in card.body.value
    assert "IMAGE_TO_VIDEO" in card.body.value and "3d957031" in card.title.value
    assert "rw-video" not in card.body.value and card.stop_button.layout.display != "none" and not card.controls_hidden


def test_a_clock_only_change_of_the_status_line_waits_to_ride_along(monkeypatch: pytest.MonkeyPatch) -> None:
    # Under two minutes the line counts seconds, so it would change at every poll: one comm
    # message more per poll than the bar's.  A clock-only change waits up to 10 s.
    clock = [100.0]
    monkeypatch.setattr("runway_widgets.views.widget.time.monotonic", lambda: clock[0])
    card = TaskCard(TID)
    writes: list[str] = []
    card.body.observe(lambda change: writes.append(change["new"]), names="value")

    def step(status: str, percent: int, elapsed: float, outcome: Outcome = Outcome.WATCHING) -> None:
        snap = parse_task({"task_id": TID, "status": status, "progress": f"{percent}%", "video_url": URL})
        card.render(WatchUpdate(TID, outcome, snap, elapsed=elapsed, polls=1, eta=60.0 - elapsed))

    step("IN_PROGRESS", 10, 12.0)
    assert len(writes) == 1 and "12 s" in card.body.value
    clock[0] += 6.0
    step("IN_PROGRESS", 20, 18.0)  # the bar moves at once; the clock waits
    assert len(writes) == 1 and card.bar.description == "20%" and "12 s" in card.body.value
    clock[0] += 5.0
    step("IN_PROGRESS", 30, 23.0)  # 11 s since the last rewrite: the clock rides along
    assert len(writes) == 2 and "23 s" in card.body.value
    clock[0] += 1.0
    step("SUCCESS", 100, 24.0, Outcome.SUCCEEDED)  # anything but the clock shows at once
    assert len(writes) == 3 and "SUCCE" in card.body.value


def test_retrying_note_is_shown_escaped() -> None:
    card = TaskCard(TID)
    card.render(WatchUpdate(TID, Outcome.WATCHING, None, 3.0, 2, note="retrying in 4 s: <b>HTTP 503</b>", retry_in=4.0))
    assert "retrying in 4 s" in card.body.value
    assert "<b>HTTP 503</b>" not in card.body.value and "&lt;b&gt;HTTP 503&lt;/b&gt;" in card.body.value


def test_success_card_green_with_video_and_link() -> None:
    card = TaskCard(TID)
    snap = parse_task({"task_id": TID, "status": "SUCCESS", "progress": "100%", "result_url": URL})
    card.render(WatchUpdate(TID, Outcome.SUCCEEDED, snap, 60.0, 9))
    assert card.bar.value == 1.0 and card.bar.bar_style == "success"
    assert "SUCCESS" in card.body.value
    assert f'src="{html.escape(URL, quote=True)}"' in card.body.value
    assert "<video" in card.body.value and " controls" in card.body.value
    assert "autoplay" not in card.body.value
    assert 'href="' in card.body.value and 'rel="noopener noreferrer"' in card.body.value
    assert card.controls_hidden and card.dom_class in card.root._dom_classes


def test_no_video_option_keeps_the_link() -> None:
    card = TaskCard(TID, show_video=False)
    snap = parse_task({"task_id": TID, "status": "SUCCESS", "result_url": URL})
    card.render(WatchUpdate(TID, Outcome.SUCCEEDED, snap, 1.0, 1))
    assert "<video" not in card.body.value and "Open video" in card.body.value


def test_failure_is_red_and_escaped_with_code() -> None:
    card = TaskCard(TID)
    snap = parse_task({"task_id": TID, "status": "FAILURE", "progress": "100%", "fail_reason": HOSTILE,
                       "data": {"failureCode": "SAFETY.INPUT"}})
    card.render(WatchUpdate(TID, Outcome.FAILED, snap, 10.0, 4))
    assert card.bar.bar_style == "danger"
    assert "<img" not in card.body.value
    assert html.escape(HOSTILE) in card.body.value
    assert "SAFETY.INPUT" in card.body.value
    assert "<video" not in card.body.value


def test_cancelled_has_its_own_colour() -> None:
    card = TaskCard(TID)
    card.render(WatchUpdate(TID, Outcome.CANCELLED, parse_task({"id": TID, "status": "CANCELLED"}), 5.0, 2))
    assert card.bar.bar_style == "warning"


def test_hostile_action_and_url_are_not_rendered_raw() -> None:
    snap = parse_task({"task_id": TID, "status": "SUCCESS", "action": HOSTILE, "result_url": "javascript:alert(1)"})
    update = WatchUpdate(TID, Outcome.SUCCEEDED, snap, 1.0, 1)
    page = card_html(update)
    assert "<img" not in page and "javascript:" not in page
    assert "not plain http(s)" in page
    card = TaskCard(TID)
    card.render(update)
    assert "<img" not in card.body.value and "javascript:" not in card.body.value


def test_attribute_breaking_url_is_refused() -> None:
    snap = parse_task({"task_id": TID, "status": "SUCCESS", "result_url": 'https://x.example/a.mp4" onload="alert(1)'})
    assert "onload" not in video_html(WatchUpdate(TID, Outcome.SUCCEEDED, snap, 1.0, 1))


def test_board_header_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("runway_widgets.views.widget._HEADER_INTERVAL", 0.0)
    ids = [f"task-{i}" for i in range(5)]
    board = TaskBoard(ids)
    ok = parse_task({"task_id": "x", "status": "SUCCESS", "result_url": URL})
    bad = parse_task({"task_id": "x", "status": "FAILURE", "fail_reason": "nope"})
    for i in range(3):
        board.render(WatchUpdate(ids[i], Outcome.SUCCEEDED, ok, 1.0, 1))
    board.render(WatchUpdate(ids[3], Outcome.FAILED, bad, 1.0, 1))
    assert "4/5 done, 1 failed" in board.header.value
    assert board.cards[ids[3]].bar.bar_style == "danger"
    assert board.stop_all.layout.display != "none"
    board.render(WatchUpdate(ids[4], Outcome.SUCCEEDED, ok, 1.0, 1))
    assert "5/5 done, 1 failed" in board.header.value and board.stop_all.layout.display == "none"
    static = board_html([c.last for c in board.cards.values() if c.last])
    assert "5/5 done, 1 failed" in static and static.count("rw-card") == 5


def test_static_card_shows_final_state_not_zero() -> None:
    snap = parse_task({"task_id": TID, "status": "SUCCESS", "progress": "100%", "result_url": URL})
    page = card_html(WatchUpdate(TID, Outcome.SUCCEEDED, snap, 61.0, 9))
    assert "width:100%" in page and "SUCCESS" in page and "<video" in page


def test_saved_file_is_preferred_for_the_video() -> None:
    snap = parse_task({"task_id": TID, "status": "SUCCESS", "result_url": URL})
    page = video_html(WatchUpdate(TID, Outcome.SUCCEEDED, snap, 1.0, 1, saved_path="videos/a b.mp4"))
    assert 'src="videos/a%20b.mp4"' in page and URL.split("?")[0] in page


def test_elapsed_and_eta_say_seconds_under_two_minutes() -> None:
    assert [elapsed_words(s) for s in (0, 42.7, 61, 119, 125, 3725)] == ["0 s", "42 s", "61 s", "119 s", "2 min", "62 min"]
    assert ([eta_words(s) for s in (1, 21, 59, 100, 130, 290)]
            == ["about 5 s left", "about 20 s left", "about 60 s left", "about 100 s left", "about 2 min left",
                "about 5 min left"])
    running = parse_task({"task_id": TID, "status": "IN_PROGRESS", "progress": "10%"})
    line = status_html(WatchUpdate(TID, Outcome.WATCHING, running, 42.0, 1, eta=20.0))
    assert "42 s · about 20 s left" in line and "min" not in line
    # Past two minutes the clock moves by the minute: the line stays put from poll to poll.
    lines = {status_html(WatchUpdate(TID, Outcome.WATCHING, running, t, 1, eta=600 - t)) for t in (181, 185, 190, 195)}
    assert len(lines) == 1


def test_the_header_and_the_card_say_which_ending(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("runway_widgets.views.widget._HEADER_INTERVAL", 0.0)
    running = parse_task({"task_id": "x", "status": "IN_PROGRESS", "progress": "30%"})
    stopped = [WatchUpdate(t, Outcome.STOPPED, running, 5.0, 2, note="Stopped watching.") for t in ("a-1", "a-2")]
    board = TaskBoard(["a-1", "a-2"])
    for update in stopped:
        board.render(update)
    assert "2/2 done, 2 stopped" in board.header.value and "failed" not in board.header.value
    assert "2/2 done, 2 stopped" in board_html(stopped)
    cancelled = parse_task({"task_id": "x", "status": "CANCELLED"})
    failed = parse_task({"task_id": "x", "status": "FAILURE", "fail_reason": "nope"})
    mixed = [WatchUpdate("b-1", Outcome.FAILED, failed, 1.0, 1), WatchUpdate("b-2", Outcome.CANCELLED, cancelled, 1.0, 1),
             WatchUpdate("b-3", Outcome.TIMED_OUT, running, 1.0, 1), WatchUpdate("b-4", Outcome.STOPPED, running, 1.0, 1),
             WatchUpdate("b-5", Outcome.WATCHING, running, 1.0, 1)]
    page = board_html(mixed)
    assert "4/5 done, 1 failed, 1 cancelled, 1 timed out, 1 stopped" in page
    cards = [card_html(u) for u in mixed[:4]]
    assert ['rw-failed" data-outcome="failed"' in cards[0], 'rw-cancelled" data-outcome="cancelled"' in cards[1],
            'rw-timed_out" data-outcome="timed out"' in cards[2], 'rw-stopped" data-outcome="stopped"' in cards[3]] == [True] * 4
    card = TaskCard("b-3")
    card.render(mixed[2])
    assert card.bar.bar_style == "warning" and "timed out" in card.body.value  # not the red of a failure


def test_a_failed_task_keeps_its_progress_in_red() -> None:
    failed = parse_task({"task_id": TID, "status": "FAILURE", "progress": "100%", "fail_reason": "nope"})
    update = WatchUpdate(TID, Outcome.FAILED, failed, 9.0, 4, held_progress=0.35)
    card = TaskCard(TID)
    card.render(update)
    assert card.bar.value == pytest.approx(0.35) and card.bar.description == "35%" and card.bar.bar_style == "danger"
    page = card_html(update)
    assert "width:35%" in page and "<small>35%</small>" in page and "width:100%" not in page
    out = io.StringIO()
    TerminalBoard([TID], stream=out, live=False).render(update)
    assert " 35%" in out.getvalue() and "100%" not in out.getvalue()


def test_several_finished_videos_make_a_compact_board(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("runway_widgets.views.widget._HEADER_INTERVAL", 0.0)
    ok = parse_task({"task_id": "x", "status": "SUCCESS", "result_url": URL})
    ids = ["v-1", "v-2", "v-3"]
    finished = [WatchUpdate(t, Outcome.SUCCEEDED, ok, 1.0, 1) for t in ids]
    page = board_html(finished)
    assert "display:grid" in page and f"minmax({GRID_CELL}px" in page and page.count("<video") == 3
    board = TaskBoard(ids)
    for update in finished[:2]:
        board.render(update)
    assert board.grid.layout.display != "grid"  # still running: one card a row
    board.render(finished[2])
    assert board.grid.layout.display == "grid" and f"{GRID_CELL}px" in board.grid.layout.grid_template_columns
    # A single card keeps its full-size player; a board with one video stays a column.
    assert 'width="480"' in card_html(finished[0]) and "display:grid" not in board_html(finished[:1])
    one_failed = [finished[0], WatchUpdate("v-2", Outcome.FAILED, parse_task({"task_id": "x", "status": "FAILURE"}), 1.0, 1)]
    assert "display:grid" not in board_html(one_failed)


def test_board_header_is_throttled_but_ends_exact() -> None:
    ids = [f"task-{i}" for i in range(6)]
    board = TaskBoard(ids)
    changes: list[str] = []
    board.header.observe(lambda change: changes.append(change["new"]), names="value")
    ok = parse_task({"task_id": "x", "status": "SUCCESS", "result_url": URL})
    for task in ids:  # six rows finishing within a few milliseconds
        board.render(WatchUpdate(task, Outcome.SUCCEEDED, ok, 1.0, 1))
    assert len(changes) <= 2 and "6/6 done" in board.header.value


def test_terminal_board_non_tty_prints_changes_only_and_strips_escapes() -> None:
    out = io.StringIO()
    board = TerminalBoard([TID], out, live=False)
    running = parse_task({"task_id": TID, "status": "IN_PROGRESS", "progress": "10%"})
    board.render(WatchUpdate(TID, Outcome.WATCHING, running, 1.0, 1))
    board.render(WatchUpdate(TID, Outcome.WATCHING, running, 2.0, 2))  # only the clock moved
    failed = parse_task({"task_id": TID, "status": "FAILURE", "fail_reason": "bad\x1b[2J\x1b[31mred\nline"})
    board.render(WatchUpdate(TID, Outcome.FAILED, failed, 3.0, 3))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "\x1b" not in out.getvalue() and "bad" in lines[1] and "red line" in lines[1]


def test_terminal_board_tty_redraws_in_place() -> None:
    out = io.StringIO()
    board = TerminalBoard(["a", "b"], out, live=True)
    snap = parse_task({"task_id": "a", "status": "QUEUED"})
    board.render(WatchUpdate("a", Outcome.WATCHING, snap, 1.0, 1))
    board.render(WatchUpdate("b", Outcome.WATCHING, snap, 1.0, 1))
    assert "\x1b[2F" in out.getvalue()  # moved back up over its two rows


def test_foreground_card_offers_interrupt_hint_not_a_dead_button() -> None:
    card = TaskCard(TID, foreground=True)
    assert card.stop_button.layout.display == "none" and card.hint.layout.display != "none"
    assert "interrupt the kernel" in card.hint.value
    snap = parse_task({"task_id": TID, "status": "SUCCESS", "result_url": URL})
    card.render(WatchUpdate(TID, Outcome.SUCCEEDED, snap, 1.0, 1))
    assert card.controls_hidden and ".runway-hint" in card.body.value and "runway-hint" in card.hint._dom_classes
    board = TaskBoard(["a", "b"], foreground=True)
    assert board.stop_all.layout.display == "none"


def _done(saved_path: str | None) -> WatchUpdate:
    snap = parse_task({"task_id": TID, "status": "SUCCESS", "progress": "100%", "result_url": URL})
    return WatchUpdate(TID, Outcome.SUCCEEDED, snap, elapsed=42.0, polls=3, saved_path=saved_path)


def test_open_video_links_the_copy_that_outlives_the_url(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    href = html.escape(URL, quote=True)
    # Not saved: the service's link, with the hint that it expires.
    page = video_html(_done(None))
    assert f'class="rw-link" href="{href}"' in page and ">Open video<" in page and "--save keeps a copy" in page
    # Saved beside the notebook: "Open video" is the local copy; the service link is second.
    page = video_html(_done(str(tmp_path / "videos" / "v.mp4")))
    assert '<a class="rw-saved" href="videos/v.mp4"' in page and page.index("videos/v.mp4") < page.index(href)
    assert ">Open video</a>" in page and ">service link</a>" in page
    # Embedded (a small saved file, the demo's): no link to a file the page cannot reach.
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    (elsewhere / "v.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    page = video_html(_done(str(elsewhere / "v.mp4")))
    assert "embedded in this notebook" in page and 'href="../' not in page and "Open video" not in page
    assert 'src="data:video/mp4;base64,AAAAGGZ0eXBtcDQy"' in page and ">service link</a>" in page


def test_the_player_embeds_only_a_small_saved_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from runway_widgets.views.media import EMBED_LIMIT

    monkeypatch.chdir(tmp_path)
    small, large = tmp_path / "small.mp4", tmp_path / "large.mp4"
    small.write_bytes(b"\x00" * 64)
    with open(large, "wb") as handle:
        handle.truncate(EMBED_LIMIT + 1)
    # The same decision reaches the static card, the board and the live card.
    assert 'src="data:video/mp4;base64,' in card_html(_done(str(small)))
    assert 'src="data:video/mp4;base64,' in board_html([_done(str(small))], "card")
    card = TaskCard(TID)
    card.render(_done(str(small)))
    assert 'src="data:video/mp4;base64,' in card.body.value and "embedded in this notebook" in card.body.value
    # Too large for the notebook: the player and "Open video" use the file beside it.
    page = card_html(_done(str(large)))
    assert 'src="large.mp4"' in page and '<a class="rw-saved" href="large.mp4"' in page and "base64" not in page
    # No player (--no-video): nothing is read or embedded; the link names the saved copy.
    page = card_html(_done(str(small)), show_video=False)
    assert "<video" not in page and "base64" not in page and '<a class="rw-saved" href="small.mp4"' in page


def _models(root: object) -> int:
    """How many widget models (children, layouts, styles) hang from ``root``: each one costs
    comm messages in the kernel when the view opens."""
    from ipywidgets import Widget

    found: set[int] = set()
    stack = [root]
    while stack:
        widget = stack.pop()
        if id(widget) in found or not isinstance(widget, Widget):
            continue
        found.add(id(widget))
        for name in widget.trait_names():
            value = getattr(widget, name, None)
            stack.extend(value if isinstance(value, (list, tuple)) else [value])
    return len(found)


def test_a_single_task_is_a_board_of_one_its_card_alone() -> None:
    board = TaskBoard([TID], "card", css="<style>.rw-record-x{display:none}</style>")
    card = board.cards[TID]
    assert board.root is card.root and "rw-record-x" in card.title.value  # the style still applies
    # No hidden header row, Stop-all or grid box: a lone card opens with no more widget models
    # than a bare card (the hidden header row had cost 12 more, and their messages, per watch).
    assert _models(board.root) == _models(TaskCard(TID).root)
    ok = parse_task({"task_id": TID, "status": "SUCCESS", "result_url": URL})
    board.render(WatchUpdate(TID, Outcome.SUCCEEDED, ok, 1.0, 1))
    assert 'width="480"' in card.body.value and card.controls_hidden
    page = board_html([card.last], "card") if card.last else ""
    assert "rw-header" not in page and page.count("rw-card ") == 1 and 'width="480"' in page


def test_a_gallery_is_a_board_in_a_grid_of_captioned_cards(monkeypatch: pytest.MonkeyPatch) -> None:
    from runway_widgets.views.caption import Caption

    monkeypatch.setattr("runway_widgets.views.widget._HEADER_INTERVAL", 0.0)
    ids = ["g-1", "g-2", "g-3", "g-4"]
    captions = {t: Caption(f"boat {HOSTILE}", {"seed": i}) for i, t in enumerate(ids)}
    board = TaskBoard(ids, "gallery", captions)
    assert board.grid.layout.display == "grid" and board.grid.layout.grid_template_columns == "repeat(2,minmax(0,1fr))"
    assert "runway-gallery-grid" in board.grid._dom_classes and board.stop_all.layout.display != "none"
    assert "“boat &lt;img" in board.cards["g-1"].title.value and "<img" not in board.cards["g-1"].title.value
    ok = parse_task({"task_id": "x", "status": "SUCCESS", "result_url": URL})
    finished = [WatchUpdate(t, Outcome.SUCCEEDED, ok, 1.0, 1) for t in ids]
    for update in finished:
        board.render(update)
    assert "4/4 done" in board.header.value and board.stop_all.layout.display == "none"
    page = board_html(finished, "gallery", captions)
    assert page.count('class="rw-cell"') == 4 and "repeat(2,minmax(0,1fr))" in page and "seed 3" in page
    assert "<img src=x" not in page and page.count("<video") == 4

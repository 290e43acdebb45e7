"""Reading an executed notebook: cards, their static fallback, the saved widget state.

Shared by tests/test_notebooks.py and tests/test_colab_env.py.  Works for the widget state
ipywidgets 7 (controls 1.5.0) and 8 (controls 2.0.0) save: both keep ``state[model_id] =
{"model_name", "model_module", "model_module_version", "state"}`` with children as
``"IPY_MODEL_<id>"`` strings.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runway_widgets.demo import FAIL_REASON

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_MAGIC_WATCH = re.compile(r"%runway_watch\b(?P<args>[^\n]*)")
_LINE = re.compile(r"^(?P<id>[A-Za-z0-9._:\-]+): (?P<status>[A-Z_]+|connecting|watching)\b(?P<rest>.*)$")
_BAR = re.compile(r'<div class="rw-bar"[^>]*><div style="width:(\d+)%')


def source_text(cell: Any) -> str:
    src = cell.source
    return src if isinstance(src, str) else "".join(src)


def code_cells(nb: Any) -> list[tuple[int, Any]]:
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def widget_state(nb: Any) -> dict[str, Any]:
    return nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})


def cell_seconds(cell: Any) -> float:
    """Wall time of a cell, from the timestamps nbclient records (execute_input -> reply)."""
    timing = cell.metadata.get("execution", {})
    begin = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    return (end - begin).total_seconds()


def strip_base64(text: str) -> str:
    return re.sub(r"base64,[A-Za-z0-9+/=]{40,}", "base64,<...>", text)


@dataclass
class WatchCell:
    """A cell with ``%runway_watch`` and what it should end with."""

    index: int
    source: str
    tasks: int
    fail_last: bool
    cards: list[Any] = field(default_factory=list)  # the card outputs (live widget, then the final static card)
    records: list[Any] = field(default_factory=list)  # the saved-state records beside them

    @property
    def expected(self) -> list[str]:
        return ["SUCCESS"] * (self.tasks - 1) + ["FAILURE" if self.fail_last else "SUCCESS"]


def watch_cells(nb: Any) -> list[WatchCell]:
    found = []
    for index, cell in code_cells(nb):
        src = source_text(cell)
        match = _MAGIC_WATCH.search(src)
        if not match:
            continue
        args = match.group("args")
        demo = re.search(r"--demo(?:\s+(\d+))?", args)
        if demo:
            tasks = int(demo.group(1) or 1)
        else:  # explicit ids (possibly $variables): the words that are neither options nor their values
            bare = re.sub(r"--(base-url|save|timeout|interval)\s+\S+", " ", args)
            tasks = len([w for w in bare.split() if not w.startswith("-")])
        found.append(WatchCell(index, src, tasks, "--demo-fail" in args, outputs_of(cell, "card"),
                               outputs_of(cell, "record")))
    return found


def role(output: Any) -> str | None:
    """What a runway_widgets output is ("card" or "record"), from its metadata; else None."""
    if output.output_type != "display_data":
        return None
    return output.get("metadata", {}).get("runway_widgets", {}).get("output")


def outputs_of(cell: Any, kind: str) -> list[Any]:
    return [o for o in cell.outputs if role(o) == kind]


def task_lines(text_plain: str) -> list[tuple[str, str, str]]:
    """(task id, status word, rest) for each line of a card's text/plain."""
    out = []
    for line in text_plain.splitlines():
        match = _LINE.match(line)
        assert match, f"unexpected text/plain line: {line!r}"
        out.append((match.group("id"), match.group("status"), match.group("rest")))
    return out


def error_outputs(nb: Any) -> list[str]:
    problems = []
    for index, cell in code_cells(nb):
        for out in cell.outputs:
            if out.output_type == "error":
                problems.append(f"cell {index}: {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr":
                problems.append(f"cell {index}: stderr: {out.text[:500]}")
    return problems


def stray_outputs(nb: Any) -> list[str]:
    """Outputs in cells that should not have them (a thread's display/print lands in whatever
    cell runs at that moment): cards only in %runway_watch cells, one per magic; tables only in
    %runway_tasks cells; stdout only in cells that print; at most one execute_result."""
    problems = []
    for index, cell in code_cells(nb):
        src = source_text(cell)
        magics = len(_MAGIC_WATCH.findall(src))
        kinds = [o.output_type for o in cell.outputs]
        cards, records = outputs_of(cell, "card"), outputs_of(cell, "record")
        others = [o for o in cell.outputs if o.output_type == "display_data" and role(o) is None]
        if len(cards) != magics or len(records) != magics:
            problems.append(f"cell {index} has {len(cards)} card(s) and {len(records)} record(s) "
                            f"for {magics} %runway_watch: {src[:60]!r}")
        if others and "%runway_tasks" not in src:
            problems.append(f"cell {index} has {len(others)} unexpected display_data: {src[:60]!r}")
        if kinds.count("execute_result") > 1:
            problems.append(f"cell {index} has {kinds.count('execute_result')} execute_results")
        if "stream" in kinds and "print(" not in src:
            problems.append(f"cell {index} has a stream output but prints nothing: {src[:60]!r}")
        for out in others:
            text = out.get("data", {}).get("text/html", "")
            if "rw-card" in text or WIDGET_VIEW in out.get("data", {}):
                problems.append(f"cell {index} has a card outside a card output")
    return problems


def check_final_card(nb: Any, wc: WatchCell) -> list[str]:
    """Everything a finished card must show: a static card that needs no widget model, and
    an emptied record (the saved notebook shows the card once, anywhere it is opened)."""
    where = f"cell {wc.index} ({wc.source.strip()[:50]!r})"
    if len(wc.cards) != 1 or len(wc.records) != 1:
        return [f"{where}: {len(wc.cards)} card and {len(wc.records)} record outputs instead of 1 each"]
    problems = []
    data = wc.cards[0]["data"]
    if WIDGET_VIEW in data:
        problems.append(f"{where}: the final card still needs a widget model")
    for mime in ("text/html", "text/plain"):
        if mime not in data:
            problems.append(f"{where}: no {mime}")
    if wc.records[0]["data"]:
        problems.append(f"{where}: the record of an ended watch is not empty: {sorted(wc.records[0]['data'])}")
    if problems:
        return problems
    lines = task_lines(data["text/plain"])
    statuses = [s for _, s, _ in lines]
    if statuses != wc.expected:
        problems.append(f"{where}: text/plain says {statuses}, expected {wc.expected}: {data['text/plain']!r}")
    for task_id, status, rest in lines:
        if status == "FAILURE" and FAIL_REASON not in rest:
            problems.append(f"{where}: the failure reason is missing for {task_id}: {rest!r}")
    page = data["text/html"]
    shown = strip_base64(page)[:3000]
    n_ok = wc.expected.count("SUCCESS")
    n_bad = wc.expected.count("FAILURE")
    widths = _BAR.findall(page)
    # A success's bar is full; a failed task's keeps the progress it had (the gateway says 100 %).
    if len(widths) != wc.tasks or any((w == "100") != (s == "SUCCESS") for w, s in zip(widths, wc.expected)):
        problems.append(f"{where}: static bars at {widths}% for {wc.expected}: {shown}")
    if page.count('class="rw-card rw-succeeded"') != n_ok or page.count('class="rw-card rw-failed"') != n_bad:
        problems.append(f"{where}: static card classes do not match {wc.expected}: {shown}")
    if page.count("<video") != n_ok:
        problems.append(f"{where}: {page.count('<video')} <video> for {n_ok} successes")
    if n_bad and html.escape(FAIL_REASON) not in page:
        problems.append(f"{where}: the failure reason is not in the static card")
    for initial in ("rw-running", ">connecting<", "width:0%"):
        if initial in page:
            problems.append(f"{where}: the static card still shows the initial state ({initial})")
    if wc.tasks > 1:
        header = f"{wc.tasks}/{wc.tasks} done" + (f", {n_bad} failed" if n_bad else "")
        if f"<b>{header}</b>" not in page:
            problems.append(f"{where}: board header is not {header!r}")
    return problems


def cross_cell_problems(nb: Any) -> list[str]:
    """No card shows a task started in another cell: each task id in exactly one card."""
    seen: dict[str, int] = {}
    problems = []
    for wc in watch_cells(nb):
        for out in wc.cards:
            for task_id, _, _ in task_lines(out["data"].get("text/plain", "")):
                if task_id in seen:
                    problems.append(f"task {task_id} has a card in cell {seen[task_id]} and in cell {wc.index}")
                seen[task_id] = wc.index
    return problems

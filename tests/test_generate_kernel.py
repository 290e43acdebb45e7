"""``%runway_generate`` and ``rw.generate`` on Runway's own API in a real kernel (nbclient):
the key comes from RUNWAYML_API_SECRET in the kernel's environment and reaches nothing the
run writes; the final saved cards show prompt, seed and the video."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import nbformat
import pytest

from kernel_envs import NotebookRun
from notebook_checks import WIDGET_VIEW, error_outputs, stray_outputs, task_lines, watch_cells
from runway_widgets.simulator import Simulator, Timeline

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(600)]

SENTINEL = "rw-sentinel-KEY-0987654321"  # made up, shaped like a key
IMAGE_URL = "https://images.example.com/boat.png"
CELLS = [
    "%load_ext runway_widgets\nimport runway_widgets as rw, types",
    f'%runway_generate "a paper boat at dusk" --image {IMAGE_URL} --seed 11 --wait',
    f'%runway_generate "a red kite" "a blue kite" --image {IMAGE_URL} --ratio 9:16 --wait',
    # Runway's SDK returns task objects; rw.watch takes anything with an .id
    f'made = rw.generate("a ship", image="{IMAGE_URL}", provider="runway")\n'
    "again = rw.watch(types.SimpleNamespace(id=made.task_id))\nprint(again.wait(60).status, again.client.provider)",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NotebookRun, Simulator]]:
    sim = Simulator(runway_keys=[SENTINEL], keys=["nobody-uses-this"], default_timeline=Timeline.fast()).start()
    work = tmp_path_factory.mktemp("gen-kernel")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    source = work / "src" / "runway_api.ipynb"
    source.parent.mkdir()
    nbformat.write(nb, str(source))
    # Only Runway's key is set: Runway's own API is chosen by itself.
    notebook = NotebookRun(sys.executable, source, work / "run",
                           env={"RUNWAYML_API_SECRET": SENTINEL, "RUNWAYML_BASE_URL": sim.base_url,
                                "RUNWAY_WIDGETS_SAVE": str(work / "run" / "videos"),
                                "RUNWAY_WIDGETS_HOME": str(work / "run" / "journal")})
    try:
        yield notebook.start().wait(), sim
    finally:
        notebook.stop()
        sim.stop()


def test_generate_on_runways_api_in_a_kernel(run: tuple[NotebookRun, Simulator]) -> None:
    notebook, sim = run
    nb = nbformat.read(notebook.out_path, as_version=4)
    assert not error_outputs(nb) and not stray_outputs(nb)
    cells = watch_cells(nb)
    assert [wc.tasks for wc in cells] == [1, 2]
    for wc in cells:  # final static cards that need no widget model, records emptied
        assert len(wc.cards) == 1 and len(wc.records) == 1 and not wc.records[0]["data"], wc
        data = wc.cards[0]["data"]
        assert WIDGET_VIEW not in data
        statuses = [status for _id, status, _rest in task_lines(data["text/plain"])]
        assert statuses == ["SUCCEEDED"] * wc.tasks, data["text/plain"]  # Runway's own word
        assert data["text/html"].count("<video") == wc.tasks
    card = cells[0].cards[0]["data"]["text/html"]
    assert "“a paper boat at dusk”" in card and "seed 11" in card and "<video" in card
    assert f'src="{IMAGE_URL}"' in card  # the input's thumbnail
    assert cells[1].cards[0]["data"]["text/html"].count("720:1280") == 2
    printed = "".join(o.get("text", "") for o in nb.cells[3].outputs if o.output_type == "stream")
    assert printed.strip() == "SUCCEEDED runway"
    paths = {r.path for r in sim.requests}
    assert "/v1/image_to_video" in paths and not any(p.startswith(("/runway/", "/runwayml/")) for p in paths)


def test_runways_key_reaches_no_file(run: tuple[NotebookRun, Simulator]) -> None:
    notebook, _sim = run
    assert SENTINEL.encode() not in notebook.out_path.read_bytes()
    written = [p for p in Path(notebook.workdir).rglob("*") if p.is_file() and p.name != "runner.log"]
    assert any(p.suffix == ".mp4" for p in written)  # the videos were saved (and scanned)
    assert any(p.name == "tasks.jsonl" for p in written)  # so was the task journal
    for path in written:
        assert SENTINEL.encode() not in path.read_bytes(), path

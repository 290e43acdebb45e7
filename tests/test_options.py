"""One option definition for ``%runway_watch`` and ``runway-watch``: same flags, same defaults,
same refusals; the CLI takes what the magic takes (``--demo N``, ``--demo-fail``, a bare ``--save``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runway_widgets.cli import build_parser
from runway_widgets.errors import EXIT_DESCRIPTIONS
from runway_widgets.magic import RunwayMagics
from runway_widgets.options import WATCH_OPTIONS
from runway_widgets.updates import WatchSettings


def _actions(parser) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {a.dest: a for a in parser._actions}


def test_both_front_doors_share_every_watch_option_and_default() -> None:
    cli = _actions(build_parser())
    magic = _actions(RunwayMagics.runway_watch.parser)  # built by IPython's magic_arguments
    for option in WATCH_OPTIONS:
        dest = option.flags[0].lstrip("-").replace("-", "_")
        assert dest in cli and dest in magic, dest
        for field in ("default", "const", "nargs", "type", "option_strings"):
            assert getattr(cli[dest], field) == getattr(magic[dest], field), (dest, field)
    assert cli["timeout"].default == WatchSettings.timeout == 1800.0
    assert cli["give_up_after"].default == WatchSettings.give_up_after
    assert cli["not_found_grace"].default == WatchSettings.not_found_grace


def test_exit_codes_are_written_once() -> None:
    text = " ".join(build_parser().format_help().split())
    for code, words in EXIT_DESCRIPTIONS.items():
        assert f"{code} {words}" in text


@pytest.mark.timeout(120)
def test_cli_takes_demo_n_demo_fail_and_a_bare_save(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMETAPI_")}
    run = subprocess.run([sys.executable, "-m", "runway_widgets.cli", "--demo", "2", "--demo-fail", "--save", "--json",
                          "--interval", "0.5"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=100,
                         start_new_session=True)
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert run.returncode == 1, run.stderr  # the last demo task fails
    assert [line["outcome"] for line in lines] == ["succeeded", "failed"], lines
    saved = lines[0]["saved_path"]
    assert saved and Path(tmp_path, saved).resolve().parent == (tmp_path / "runway_videos").resolve(), saved

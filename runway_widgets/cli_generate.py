"""``runway-watch generate PROMPT ...``: create tasks from a terminal and watch them.

``runway-watch TASK_ID`` keeps working: only a first argument of exactly ``generate``
selects this sub-command.  Same exit codes as watching (see :mod:`runway_widgets.cli`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from .api import shutdown_downloads, stop_all
from .errors import EXIT_OK, EXIT_USAGE, ConfigError, RunwayWidgetsError
from .generation import CONFIRM_ABOVE, generate
from .views.terminal import TerminalBoard, plain
from .watch import Outcome, Watch

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runway-watch generate",
        description="Create Runway video tasks from prompts (and/or an image) and watch them until they finish.",
        epilog="Keys come from COMETAPI_KEY (CometAPI) or RUNWAYML_API_SECRET (Runway's own API), never "
               "from the command line.  Text only on CometAPI needs --callback-url or $COMETAPI_CALLBACK_URL.",
    )
    parser.add_argument("prompts", nargs="*", metavar="PROMPT", help="one or more prompts (quote each one)")
    parser.add_argument("--image", metavar="URL_OR_PATH", help="the first frame: an https URL or a local image (inline, at most 5 MB)")
    parser.add_argument("--video", metavar="URL", help="video-to-video source (with --image: Act-One)")
    parser.add_argument("--model", metavar="M", help="the model (e.g. gen4_turbo)")
    parser.add_argument("--ratio", metavar="R", help="the aspect ratio (e.g. 1280:720; 16:9, 9:16, 1:1 are translated)")
    parser.add_argument("--duration", type=int, metavar="S", help="seconds of video")
    parser.add_argument("--seed", type=int, nargs="+", metavar="N", help="one or more seeds")
    parser.add_argument("--pair", action="store_true", help="pair prompts and seeds by position")
    parser.add_argument("--yes", action="store_true", help=f"confirm creating more than {CONFIRM_ABOVE} tasks (each costs credits)")
    parser.add_argument("--callback-url", metavar="URL", help="text only on CometAPI: your URL that receives the result")
    parser.add_argument("--provider", choices=("cometapi", "runway"), help="CometAPI or Runway's own API (default: by the keys set)")
    parser.add_argument("--base-url", metavar="URL", help="API base URL (default: the provider's)")
    parser.add_argument("--timeout", type=float, default=1800.0, metavar="SECONDS", help="stop watching after this long")
    parser.add_argument("--save", metavar="PATH", help="download each finished video to PATH (a file or a folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON line per task with its final state")
    parser.add_argument("--demo", action="store_true", help="create the tasks on the built-in simulator (no key, no credits)")
    return parser


def main(argv: Sequence[str]) -> int:
    """Run ``runway-watch generate``; returns the exit code."""
    args = build_parser().parse_args(argv)
    out = sys.stderr if args.json else sys.stdout
    try:
        if args.timeout is None or not args.timeout > 0:
            raise ConfigError("--timeout must be a positive number of seconds.")
        prompts: Any = args.prompts if len(args.prompts) != 1 else args.prompts[0]
        seeds: Any = args.seed if args.seed is None or len(args.seed) != 1 else args.seed[0]
        result = generate(prompts or "", image=args.image, video=args.video, model=args.model, ratio=args.ratio,
                          duration=args.duration, seed=seeds, pair=args.pair, confirm=args.yes,
                          callback_url=args.callback_url, provider=None if args.demo else args.provider,
                          base_url=None if args.demo else args.base_url, demo=args.demo,
                          timeout=args.timeout, save=args.save)
    except RunwayWidgetsError as exc:
        sys.stderr.write(f"runway-watch: {plain(str(exc))}\n")
        return exc.exit_code if not isinstance(exc, ConfigError) else EXIT_USAGE
    watches: list[Watch] = list(result) if isinstance(result, list) else [result]
    error = getattr(result, "error", None)
    if error is not None:
        sys.stderr.write(f"runway-watch: created {len(watches)} task(s); then: {plain(str(error))}\n")
    for handle in watches:
        out.write(f"Created {handle.task_id}\n")
    board = TerminalBoard([w.task_id for w in watches], out)
    for handle in watches:
        handle.on_update(board)
    try:
        for handle in watches:
            try:
                handle.wait()
            except RunwayWidgetsError:
                pass  # the board and the exit code say it
    except KeyboardInterrupt:
        stop_all("Interrupted.")
        shutdown_downloads(5.0)
        out.write("\nInterrupted; stopped watching (the tasks go on on the server).\n")
        return 130
    finally:
        if args.demo:
            from .demo import stop_demo

            stop_demo()
    if args.json:
        for handle in watches:
            update = handle.update()
            line = update.snapshot.as_dict() if update.snapshot else {"task_id": handle.task_id, "status": None}
            line.update(outcome=update.outcome.value, saved_path=update.saved_path,
                        error=str(update.error) if update.error else None)
            sys.stdout.write(json.dumps(line) + "\n")
    for handle in watches:
        if handle.outcome is not Outcome.SUCCEEDED or handle.error is not None:
            return handle.error.exit_code if handle.error is not None else 1
    return EXIT_OK if error is None else error.exit_code

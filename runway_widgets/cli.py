"""``runway-watch``: watch tasks from a terminal.

It takes the options ``%runway_watch`` takes (``options.py`` defines them once) plus
``--json`` and ``-v``.  Exit codes are listed in ``--help``, from
:data:`~runway_widgets.errors.EXIT_DESCRIPTIONS`; with several tasks, the first one (in
command-line order) that did not succeed decides the code.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap
from contextlib import ExitStack
from typing import Any, NoReturn, Sequence, TextIO
from urllib.parse import urlsplit

from .api import shutdown_downloads, wait_each, watch
from .client import Client
from .config import resolve_base_url, resolve_key, validate_save, validate_task_id
from .errors import EXIT_OK, EXIT_USAGE, ConfigError, RunwayWidgetsError
from .options import WATCH_OPTIONS, add_options, check_combination, exit_codes_text, usage_sentence, watch_settings
from .journal import journal_path
from .providers import choose_provider
from .recorder import set_origin
from .records import TaskRecord
from .resuming import resumable, resume_records
from .views.terminal import TerminalBoard, plain
from .watch import Outcome, Watch

__all__ = ["main", "build_parser"]

EPILOG = f"""\
To create tasks from prompts and watch them:  runway-watch generate "a paper boat" --image boat.png
(see runway-watch generate --help).

The API key is read from the COMETAPI_KEY environment variable (never from the command
line, where it would land in shell history and process lists).  No key?  Try --demo.

{textwrap.fill("exit codes: " + exit_codes_text() + ".", 88)}
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line gets one sentence that names the option, not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {usage_sentence(message, self.prog)}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="runway-watch",
        description="Watch CometAPI / Runway video tasks until they finish.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(parser, WATCH_OPTIONS)
    parser.add_argument("--json", action="store_true", help="print one JSON line per task with its final state")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    return parser


def _exit_code(watches: Sequence[Watch]) -> int:
    for handle in watches:
        if handle.outcome is not Outcome.SUCCEEDED or handle.error is not None:
            return handle.error.exit_code if handle.error is not None else 1
    return EXIT_OK


def _start_demo(stack: ExitStack, out: TextIO, count: int, fail: bool) -> tuple[Client, list[str]]:
    """Run the simulator in this process and create ``count`` demo tasks on it."""
    from .demo import create_demo_tasks, stop_demo

    stack.callback(stop_demo)
    client, task_ids = create_demo_tasks(count, fail=fail)
    what = f"demo task {task_ids[0]}" if count == 1 else f"{count} demo tasks"
    out.write(f"Simulator running at {client.base_url}; created {what}\n")
    return client, task_ids


def _plan_resume(args: argparse.Namespace, out: TextIO) -> list[TaskRecord]:
    """The journal's unfinished tasks of the gateway; says what it skips and why."""
    records, skipped = resumable(args.base_url, include_live=args.include_live)
    host = urlsplit(resolve_base_url(args.base_url)).netloc
    for record, why in skipped:
        out.write(f"Skipped {record.task_id}: {why}.\n")
    count = len(records)
    if count:
        out.write(f"Resuming {count} unfinished task{'s' if count != 1 else ''} of {host} (journal: {journal_path()})\n")
    else:
        out.write(f"Nothing to resume: no unfinished task of {host} in {journal_path()}.\n")
    return records


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``runway-watch``; returns the exit code."""
    previous = set_origin("cli")  # the journal says where each task was watched from
    try:
        return _main(argv)
    finally:
        set_origin(previous)


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["generate"]:  # ``runway-watch generate PROMPT ...`` (cli_generate.py)
        from .cli_generate import main as generate_main

        return generate_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    progress_stream = sys.stderr if args.json else sys.stdout
    try:
        with ExitStack() as stack:
            check_combination(args)
            if args.save is not None:
                validate_save(args.save)  # before a simulator starts or a task is created
            records: list[TaskRecord] | None = None
            if args.resume:
                records = _plan_resume(args, progress_stream)
                if not records:
                    return EXIT_OK
                task_ids = [r.task_id for r in records]
            elif args.demo is not None:
                client, task_ids = _start_demo(stack, progress_stream, args.demo, args.demo_fail)
            else:
                if not args.task_ids:
                    raise ConfigError("Give at least one TASK_ID (or --demo to try the simulator).")
                task_ids = [validate_task_id(t) for t in args.task_ids]
                provider = choose_provider(args.provider, base_url=args.base_url)
                if resolve_key(None, provider.key_env) is None:
                    raise ConfigError(provider.no_key("cli"))
                client = Client(base_url=args.base_url, feed="official" if args.official else "runway",
                                provider=provider.name)
                stack.callback(client.close)
            task_ids = list(dict.fromkeys(task_ids))  # the same id twice is one task
            show = not args.json or progress_stream.isatty()
            board = TerminalBoard(task_ids, progress_stream) if show else None
            options: dict[str, Any] = {**watch_settings(args), "on_update": board}
            save = False if args.no_save else args.save
            if records is not None:
                watches = resume_records(records, save=save, **options)
            else:
                watches = [watch(t, client=client, save=save, **options) for t in task_ids]
            try:
                wait_each(watches, interrupted="Interrupted.")  # the board and the exit code say how each ended
            except KeyboardInterrupt:
                # A --save download sees the stop between chunks and deletes its partial
                # file; its thread is a daemon, so without this wait the process could
                # exit first and leave the .part file behind.
                shutdown_downloads(5.0)
                progress_stream.write("\nInterrupted; stopped watching (the tasks go on on the server).\n")
                return 130
            for handle in watches:
                # The board shows how each watch ended on stdout; a failure also gets its
                # one sentence on stderr, where scripts and humans look for errors.
                if handle.error is not None and handle.outcome is Outcome.SUCCEEDED:  # only saving failed
                    sys.stderr.write(f"runway-watch: Task {handle.task_id} succeeded, but could not save: "
                                     f"{plain(str(handle.error))}\n")
                elif handle.error is not None:
                    sys.stderr.write(f"runway-watch: {plain(str(handle.error))}\n")
            if args.json:
                for handle in watches:
                    update = handle.update()
                    line = update.snapshot.as_dict() if update.snapshot else {"task_id": handle.task_id, "status": None,
                                                                               "progress": None, "result_url": None,
                                                                               "fail_reason": ""}
                    line.update(outcome=update.outcome.value, error=str(update.error) if update.error else None,
                                saved_path=update.saved_path)
                    sys.stdout.write(json.dumps(line) + "\n")
            return _exit_code(watches)
    except ConfigError as exc:
        sys.stderr.write(f"runway-watch: {plain(str(exc))}\n")
        return EXIT_USAGE
    except RunwayWidgetsError as exc:  # e.g. the demo's create call failed
        sys.stderr.write(f"runway-watch: {plain(str(exc))}\n")
        return exc.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

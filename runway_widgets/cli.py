"""``runway-watch``: watch tasks from a terminal.

Exit codes: 0 all succeeded, 1 a task failed or was cancelled, 2 usage or configuration
error, 3 authentication error, 4 timed out, 5 task not found, 6 gave up after repeated
transport/server errors (or the video could not be saved).  With several tasks, the first
one (in command-line order) that did not succeed decides the code.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from contextlib import ExitStack
from typing import Any, NoReturn, Sequence, TextIO
from urllib.parse import urlsplit

from .api import shutdown_downloads, stop_all, watch
from .client import Client
from .config import (missing_key_help, positive_seconds, resolve_base_url, resolve_key, seconds, validate_save,
                     validate_task_id)
from .errors import EXIT_OK, EXIT_USAGE, ConfigError, RunwayWidgetsError
from .journal import journal_path
from .recorder import set_origin
from .records import TaskRecord
from .resuming import resumable, resume_records
from .views.terminal import TerminalBoard, plain
from .watch import Outcome, Watch

__all__ = ["main", "build_parser"]

EPILOG = """\
The API key is read from the COMETAPI_KEY environment variable (never from the command
line, where it would land in shell history and process lists).  No key?  Try --demo.

exit codes: 0 all succeeded, 1 a task failed or was cancelled, 2 usage/configuration
error, 3 authentication error, 4 timed out, 5 task not found, 6 gave up after repeated
transport/server errors or the video could not be saved.
"""


_KINDS = {"seconds": "a number of seconds, 0 or more", "positive seconds": "a positive number of seconds"}


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line gets one sentence that names the option, not a usage block."""

    def error(self, message: str) -> NoReturn:
        bad_value = re.match(r"argument ([^:]+): invalid (.+) value: (.*)$", message)
        if bad_value and bad_value.group(2) in _KINDS:
            option, kind, value = bad_value.groups()
            sentence = f"{option.split('/')[-1]} takes {_KINDS[kind]}, not {value}."
        elif message.startswith("unrecognized arguments: "):
            # Name the options only: a value beside them may be a pasted key.
            options = [word for word in message.split(": ", 1)[1].split() if word.startswith("-")]
            sentence = (f"Unrecognized option{'s' if len(options) > 1 else ''} {' '.join(options)}; see {self.prog} --help."
                        if options else f"Too many arguments; see {self.prog} --help.")
        else:
            sentence = f"{message[:1].upper()}{message[1:]}; see {self.prog} --help."
        self.exit(EXIT_USAGE, f"{self.prog}: {sentence}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="runway-watch",
        description="Watch CometAPI / Runway video tasks until they finish.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("task_ids", nargs="*", metavar="TASK_ID", help="task ids returned by a create call")
    parser.add_argument("--base-url", help="API base URL (default: $COMETAPI_BASE_URL or https://api.cometapi.com)")
    parser.add_argument("--timeout", type=positive_seconds, default=1800.0, metavar="SECONDS",
                        help="give up on a task that has not finished after this long (default: 1800)")
    parser.add_argument("--interval", type=positive_seconds, metavar="SECONDS", help="poll on a fixed interval instead of adaptively")
    parser.add_argument("--give-up-after", type=seconds, default=120.0, metavar="SECONDS",
                        help="give up after this long with nothing but transport/server errors (default: 120)")
    parser.add_argument("--not-found-grace", type=seconds, default=30.0, metavar="SECONDS",
                        help="how long a fresh task id may read task_not_exist before it counts as not found (default: 30)")
    parser.add_argument("--save", metavar="PATH", help="download each finished video to PATH (a file, or a folder; "
                                                       "default: $RUNWAY_WIDGETS_SAVE if set)")
    parser.add_argument("--no-save", action="store_true", help="do not save, even if $RUNWAY_WIDGETS_SAVE is set")
    parser.add_argument("--json", action="store_true", help="print one JSON line per task with its final state")
    parser.add_argument("--official", action="store_true", help="poll GET /runwayml/v1/tasks/{id} instead of POST /runway/feed")
    parser.add_argument("--demo", action="store_true", help="start the built-in simulator, create a task on it and watch it (no key needed)")
    parser.add_argument("--resume", action="store_true",
                        help="watch again every unfinished task of the gateway in the task journal "
                             "(after a killed CLI or a restarted kernel); each saves where it was asked to")
    parser.add_argument("--include-live", action="store_true",
                        help="with --resume: also tasks that another live process is still watching")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    return parser


def _exit_code(watches: Sequence[Watch]) -> int:
    for handle in watches:
        if handle.outcome is not Outcome.SUCCEEDED or handle.error is not None:
            return handle.error.exit_code if handle.error is not None else 1
    return EXIT_OK


def _start_demo(stack: ExitStack, out: TextIO) -> tuple[Client, list[str]]:
    """Run the simulator in this process and create one demo task on it."""
    from .demo import create_demo_tasks, stop_demo

    stack.callback(stop_demo)
    client, task_ids = create_demo_tasks(1)
    out.write(f"Simulator running at {client.base_url}; created demo task {task_ids[0]}\n")
    return client, task_ids


def _plan_resume(args: argparse.Namespace, out: TextIO) -> list[TaskRecord]:
    """The journal's unfinished tasks of the gateway; says what it skips and why."""
    if args.task_ids or args.demo:
        raise ConfigError("--resume takes its tasks from the journal; do not pass task ids or --demo with it.")
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
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    progress_stream = sys.stderr if args.json else sys.stdout
    try:
        with ExitStack() as stack:
            if args.no_save and args.save is not None:
                raise ConfigError("Choose one of --save and --no-save.")
            if args.save is not None:
                validate_save(args.save)  # before a simulator starts or a task is created
            records: list[TaskRecord] | None = None
            if args.include_live and not args.resume:
                raise ConfigError("--include-live only goes with --resume.")
            if args.resume:
                records = _plan_resume(args, progress_stream)
                if not records:
                    return EXIT_OK
                task_ids = [r.task_id for r in records]
            elif args.demo:
                if args.task_ids:
                    raise ConfigError("--demo creates its own task; do not pass task ids with it.")
                client, task_ids = _start_demo(stack, progress_stream)
            else:
                if not args.task_ids:
                    raise ConfigError("Give at least one TASK_ID (or --demo to try the simulator).")
                task_ids = [validate_task_id(t) for t in args.task_ids]
                if resolve_key() is None:
                    raise ConfigError(missing_key_help("cli"))
                client = Client(base_url=args.base_url, feed="official" if args.official else "runway")
                stack.callback(client.close)
            task_ids = list(dict.fromkeys(task_ids))  # the same id twice is one task
            show = not args.json or progress_stream.isatty()
            board = TerminalBoard(task_ids, progress_stream) if show else None
            options: dict[str, Any] = {"timeout": args.timeout, "interval": args.interval, "on_update": board,
                                       "give_up_after": args.give_up_after, "not_found_grace": args.not_found_grace}
            save = False if args.no_save else args.save
            if records is not None:
                watches = resume_records(records, save=save, **options)
            else:
                watches = [watch(t, client=client, save=save, **options) for t in task_ids]
            try:
                for handle in watches:
                    try:
                        handle.wait()
                    except RunwayWidgetsError:
                        pass  # reported by the board and the exit code
            except KeyboardInterrupt:
                stop_all("Interrupted.")
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

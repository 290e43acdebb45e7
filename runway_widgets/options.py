"""The options ``%runway_watch`` and ``runway-watch`` share: one definition, one set of defaults.

Each option is written once here, with its default taken from :class:`WatchSettings` (the
one place limits are defined), and added to both front doors: to the CLI's argparse parser
by :func:`add_options`, and to the magic by :func:`magic_options` (as IPython
``magic_arguments``).  Options only one door has (``--json`` in a terminal, ``--wait`` in a
notebook) stay with that door.  Checks that need several options together live in
:func:`check_combination`, so both doors refuse the same things with the same sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, TypeVar

from .config import DEFAULT_SAVE_DIR, positive_seconds, seconds
from .errors import EXIT_DESCRIPTIONS, ConfigError
from .updates import WatchSettings

__all__ = ["DEFAULT_SAVE_DIR", "DEMO_MAX", "WATCH_OPTIONS", "Option", "add_options", "magic_options",
           "check_combination", "watch_settings", "usage_sentence", "exit_codes_text"]

DEMO_MAX = 20  # demo tasks one command may create
DEMO_INTERVAL = 1.0  # s between polls of a demo task (the simulator is local)


def demo_count(text: str) -> int:
    """An argparse type: how many demo tasks, 1 to :data:`DEMO_MAX`."""
    value = int(text)
    if not 1 <= value <= DEMO_MAX:
        raise ValueError("out of range")
    return value


demo_count.__name__ = "demo count"  # argparse says "invalid demo count value: 'x'"
_KINDS = {"seconds": "a number of seconds, 0 or more", "positive seconds": "a positive number of seconds",
          "demo count": f"a number of tasks from 1 to {DEMO_MAX}", "int": "a whole number", "float": "a number"}


@dataclass(frozen=True)
class Option:
    """One option: argparse's ``add_argument`` arguments."""

    flags: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


WATCH_OPTIONS: tuple[Option, ...] = (
    Option(("task_ids",), dict(nargs="*", metavar="TASK_ID", help="task ids returned by a create call")),
    Option(("--base-url",), dict(metavar="URL", help="API base URL (default: $COMETAPI_BASE_URL, else https://api.cometapi.com)")),
    Option(("--timeout",), dict(type=positive_seconds, default=WatchSettings.timeout, metavar="SECONDS",
                                help=f"stop watching a task that has not finished after this long (default {WatchSettings.timeout:g})")),
    Option(("--interval",), dict(type=positive_seconds, default=None, metavar="SECONDS",
                                 help="poll on a fixed interval instead of adaptively")),
    Option(("--give-up-after",), dict(type=seconds, default=WatchSettings.give_up_after, metavar="SECONDS",
                                      help="give up after this long with nothing but transport/server errors "
                                           f"(default {WatchSettings.give_up_after:g})")),
    Option(("--not-found-grace",), dict(type=seconds, default=WatchSettings.not_found_grace, metavar="SECONDS",
                                        help="how long a fresh task id may read task_not_exist before it counts as "
                                             f"not found (default {WatchSettings.not_found_grace:g})")),
    Option(("--save",), dict(nargs="?", const=DEFAULT_SAVE_DIR, metavar="PATH_OR_DIR",
                             help=f"download each finished video to this file or folder (alone: {DEFAULT_SAVE_DIR}; "
                                  "default: rw.configure(save=...) or $RUNWAY_WIDGETS_SAVE)")),
    Option(("--no-save",), dict(action="store_true", help="do not save, even if a default save folder is set")),
    Option(("--official",), dict(action="store_true", help="poll GET /runwayml/v1/tasks/{id} instead of POST /runway/feed")),
    Option(("--provider",), dict(choices=("cometapi", "runway"),
                                 help="CometAPI (COMETAPI_KEY) or Runway's own API (RUNWAYML_API_SECRET, "
                                      "GET /v1/tasks/{id}); default: Runway when only RUNWAYML_API_SECRET is set")),
    Option(("--demo",), dict(nargs="?", type=demo_count, const=1, default=None, metavar="N",
                             help="start the built-in simulator, create N demo tasks (default 1) and watch them; "
                                  "no key needed")),
    Option(("--demo-fail",), dict(action="store_true", help="with --demo: make the last demo task fail")),
    Option(("--resume",), dict(action="store_true",
                               help="watch again every unfinished task of the gateway in the task journal (after a "
                                    "kernel restart or a killed CLI); each saves where its first watch was asked to")),
    Option(("--include-live",), dict(action="store_true",
                                     help="with --resume: also tasks another live kernel or CLI is still watching")),
)


def add_options(parser: Any, options: Iterable[Option] = WATCH_OPTIONS) -> None:
    """Add ``options`` to an argparse parser."""
    for option in options:
        parser.add_argument(*option.flags, **option.kwargs)


F = TypeVar("F", bound=Callable[..., Any])


def magic_options(options: Iterable[Option] = WATCH_OPTIONS) -> Callable[[F], F]:
    """A decorator adding ``options`` to a magic, as stacked ``@argument(...)`` lines would
    (put it under ``@magic_arguments()``; the options keep their order in the help)."""
    from IPython.core.magic_arguments import argument

    def decorate(func: F) -> F:
        for option in reversed(tuple(options)):  # stacked decorators apply bottom-up
            func = argument(*option.flags, **option.kwargs)(func)
        return func

    return decorate


def check_combination(args: Any) -> None:
    """Options that do not go together: one sentence, raised as :class:`ConfigError`."""
    if args.no_save and args.save is not None:
        raise ConfigError("Choose one of --save and --no-save.")
    if args.demo_fail and args.demo is None:
        raise ConfigError("--demo-fail only goes with --demo.")
    if args.include_live and not args.resume:
        raise ConfigError("--include-live only goes with --resume.")
    if args.resume and (args.task_ids or args.demo is not None):
        raise ConfigError("--resume takes its tasks from the journal; do not pass task ids or --demo with it.")
    if args.demo is not None and args.task_ids:
        raise ConfigError("--demo creates its own tasks; do not pass task ids with it.")


def watch_settings(args: Any) -> dict[str, Any]:
    """The parsed limits, as keyword arguments of :func:`runway_widgets.watch`."""
    interval = args.interval
    if interval is None and getattr(args, "demo", None) is not None:
        # The simulator runs in this process and costs nothing to ask: a demo card moves every
        # second instead of exploring at a real gateway's careful pace (6 s, as Runway's SDK).
        interval = DEMO_INTERVAL
    return {"timeout": args.timeout, "interval": interval, "give_up_after": args.give_up_after,
            "not_found_grace": args.not_found_grace}


def usage_sentence(message: str, prog: str) -> str:
    """argparse's complaint as one sentence that names the option (never echoing an
    unrecognized option's value, which may be a pasted key)."""
    bad_value = re.match(r"argument ([^:]+): invalid (.+) value: (.*)$", message)
    if bad_value and bad_value.group(2) in _KINDS:
        option, kind, value = bad_value.groups()
        # --demo ID: the id was read as the count.
        hint = "; it creates its own tasks, so do not pass task ids with it" if kind == "demo count" else ""
        return f"{option.split('/')[-1]} takes {_KINDS[kind]}, not {value}{hint}."
    if message.startswith("unrecognized arguments: "):
        flags = [word for word in message.split(": ", 1)[1].split() if word.startswith("-")]
        if flags:
            return f"Unrecognized option{'s' if len(flags) > 1 else ''} {' '.join(flags)}; see {prog} --help."
        return f"Too many arguments; see {prog} --help."
    return f"{message[:1].upper()}{message[1:]}; see {prog} --help."


def exit_codes_text() -> str:
    """``0 all succeeded, 1 ...``: the exit codes in words, from :data:`EXIT_DESCRIPTIONS`."""
    return ", ".join(f"{code} {words}" for code, words in EXIT_DESCRIPTIONS.items())

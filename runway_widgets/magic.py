"""IPython magics: ``%runway_watch``, ``%runway_stop``, ``%runway_tasks`` (``%runway_generate``: generate_magic.py).

A thin adapter over :func:`runway_widgets.watch`: it parses arguments, reads the key on
the main thread (environment, then Colab secrets), creates and displays the card, and
returns the handle(s).  Bad input raises a plain :class:`~IPython.core.error.UsageError`:
IPython prints its one sentence without a traceback.
"""

from __future__ import annotations

import html
import textwrap
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from . import api
from .config import KEY_ENV, default_save, missing_key_help, resolve_key, validate_task_id
from .errors import RunwayWidgetsError
from .options import WATCH_OPTIONS, check_combination, magic_options, usage_sentence, watch_settings
from .notebook import NotebookView, WatchList, colab_secret, in_colab, in_kernel, notebook_key
from .providers import choose_provider
from .views.terminal import TerminalBoard
from .views.text import summary_line
from .views.widget import require_ipywidgets
from .watch import Watch

__all__ = ["RunwayMagics", "WatchInterrupted"]


class WatchInterrupted(KeyboardInterrupt):
    """Ctrl-C (or the kernel's stop button) during a waiting ``%runway_watch``.

    Still a KeyboardInterrupt, so "Run All" stops there; IPython shows its one line instead
    of a traceback, under a card that already says what happened.
    """

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


def _interrupted(watches: list[Watch]) -> WatchInterrupted:
    count = f"{len(watches)} task{'s' if len(watches) != 1 else ''}"
    return WatchInterrupted(f"Interrupted: stopped watching {count} (the server goes on with "
                            f"{'them' if len(watches) != 1 else 'it'}).")


@magics_class
class RunwayMagics(Magics):
    """Watch Runway video tasks (CometAPI) from a notebook."""

    @magic_arguments()
    @magic_options(WATCH_OPTIONS)
    @argument("--wait", action="store_true", help="block the cell until done (the card keeps moving); for Run All")
    @argument("--foreground", action="store_true", help="same as --wait (the default in Colab and terminal IPython)")
    @argument("--background", action="store_true", help="return at once and update the card in the background (the default in Jupyter)")
    @argument("--no-video", action="store_true", help="show a link instead of an inline video")
    @line_magic
    def runway_watch(self, line: str) -> Any:
        """Watch one or more Runway tasks: a live card, then the video inline.

        Examples:

            %runway_watch --demo                 # try it: a simulated task, no key needed
            %runway_watch 3d957031-9a2a-45e2-9dc7-bc8513059c50
            h = %runway_watch ID --save videos/  # keep the handle: h.wait(), h.result_url
            %runway_watch ID1 ID2 ID3 --wait     # a board; the cell returns when all are done
            %runway_watch --resume               # every unfinished task of the journal, after a restart

        Then: %runway_stop ID (or --all) stops watching, %runway_tasks lists the tasks
        of this kernel (--history: of every kernel and CLI).
        The key comes from COMETAPI_KEY (or, in Colab, a secret of that name).
        """
        args = self._parse(self.runway_watch, line)
        if args.wait and args.background or args.foreground and args.background:
            raise UsageError("Choose one of --wait/--foreground and --background.")
        try:
            check_combination(args)
            if in_kernel(self.shell):
                require_ipywidgets()  # before any task is created or watched
            save = False if args.no_save else args.save
            if args.resume:
                watches = self._resume(args, save)
                if not watches:
                    return None
            else:
                client, task_ids = self._client_and_ids(args)
                if save is None and args.demo is not None and default_save() is None:
                    from .demo import demo_save_dir

                    save = demo_save_dir()  # the card then embeds the small file
                watches = [api.watch(t, client=client, save=save, **watch_settings(args)) for t in task_ids]
        except RunwayWidgetsError as exc:
            raise UsageError(str(exc)) from None
        return self._present(watches, args)

    def _resume(self, args: Any, save: str | bool | None) -> list[Watch]:
        """``--resume``: watches of the journal's unfinished tasks of the gateway (none: says so)."""
        from .journal import journal_path
        from .resuming import resumable, resume_records

        records, skipped = resumable(args.base_url, include_live=args.include_live)
        for record, why in skipped:
            print(f"Skipped {record.task_id}: {why}.")
        if not records:
            print(f"Nothing to resume: no unfinished task of this gateway in {journal_path()}.")
            return []
        key = resolve_key()
        if key is None and not all(r.demo for r in records):
            secret = colab_secret(KEY_ENV)  # on the main thread, as Colab requires
            key = resolve_key(secret) if secret else None
            if key is None:
                raise UsageError(missing_key_help("magic"))
        return resume_records(records, api_key=key, save=save, **watch_settings(args))

    def _parse(self, func: Any, line: str) -> Any:
        try:
            return parse_argstring(func, line)
        except UsageError as exc:  # argparse's complaint, as one sentence naming the option
            raise UsageError(usage_sentence(str(exc), f"%{func.__name__}?").replace(" --help", "")) from None
        except SystemExit:  # argparse's own exit on a bad value
            raise UsageError(f"Bad arguments: {line!r}; see %{func.__name__}?") from None

    def _client_and_ids(self, args: Any) -> tuple[Any, list[str]]:
        if args.demo is not None:
            from .demo import create_demo_tasks

            return create_demo_tasks(args.demo, fail=args.demo_fail)
        if not args.task_ids:
            raise UsageError("Give at least one TASK_ID (or try --demo for a simulated task).")
        task_ids = [validate_task_id(t) for t in args.task_ids]  # a bad id is the first thing to say, as in the CLI
        provider = choose_provider(args.provider, base_url=args.base_url)
        key = notebook_key(provider)
        client = api.get_client(key, args.base_url, feed="official" if args.official else "runway", provider=provider.name)
        return client, list(dict.fromkeys(task_ids))

    def _present(self, watches: list[Watch], args: Any) -> Any:
        foreground = args.wait or args.foreground or (not args.background and (in_colab() or not in_kernel(self.shell)))
        count = getattr(self.shell, "execution_count", None)
        for handle in watches:
            # Displaying the returned handle in this same cell shows nothing: the card is the display.
            handle._shown_in = count  # type: ignore[attr-defined]
        if not in_kernel(self.shell):
            result = self._present_terminal(watches, foreground)
            # Terminal IPython prints "Out[n]:" for any non-None result, even one that
            # displays nothing; a bare `%runway_watch` line should leave only the board.
            return None if _is_bare_statement(self.shell) else result
        view = NotebookView([w.task_id for w in watches], show_video=not args.no_video, foreground=foreground)
        view.show()
        for handle in watches:
            view.attach(handle)
        if foreground:
            try:
                view.drive()
            except KeyboardInterrupt:
                raise _interrupted(watches) from None
        return watches[0] if len(watches) == 1 else WatchList(watches)

    def _present_terminal(self, watches: list[Watch], foreground: bool) -> Any:
        if foreground:
            board = TerminalBoard([w.task_id for w in watches])
            for handle in watches:
                handle.on_update(board)
            try:
                api.wait_each(watches)
            except KeyboardInterrupt:
                raise _interrupted(watches) from None
        return watches[0] if len(watches) == 1 else WatchList(watches)

    @magic_arguments()
    @argument("task_ids", nargs="*", metavar="TASK_ID", help="ids (or their first characters) of tasks to stop watching")
    @argument("--all", action="store_true", help="stop every watch in this kernel")
    @line_magic
    def runway_stop(self, line: str) -> None:
        """Stop watching tasks (the tasks themselves go on on the server)."""
        args = self._parse(self.runway_stop, line)
        live = api.live_watches()
        if args.all:
            chosen = live
        elif args.task_ids:
            chosen = []
            for wanted in args.task_ids:
                matches = [w for w in live if w.task_id == wanted] or [w for w in live if w.task_id.startswith(wanted)]
                if len(matches) != 1:
                    what = "no live watch" if not matches else f"{len(matches)} live watches"
                    raise UsageError(f"{wanted!r} matches {what}; see %runway_tasks.")
                chosen.extend(matches)
        else:
            raise UsageError("Say which tasks to stop (ids, or --all).")
        for handle in chosen:
            handle.stop("Stopped with %runway_stop.")
        print(f"Stopped watching {len(chosen)} task{'s' if len(chosen) != 1 else ''}.")

    @magic_arguments()
    @argument("--history", action="store_true",
              help="every task in the journal (all kernels and CLIs of this user), newest first")
    @argument("--status", action="append", metavar="STATUS",
              help="with --history: only this outcome, state or status (e.g. failed, succeeded, unfinished); repeatable")
    @argument("--limit", type=int, default=50, metavar="N", help="with --history: at most N tasks (default 50)")
    @argument("--base-url", metavar="URL", help="with --history: only this gateway's tasks")
    @line_magic
    def runway_tasks(self, line: str = "") -> None:
        """List the tasks watched in this kernel and how each stands or ended (``--history``: every kernel's)."""
        from IPython.display import display

        args = self._parse(self.runway_tasks, line)
        if args.history:
            _history_of(args)
            return
        if args.status or args.base_url:
            raise UsageError("--status and --base-url go with --history.")
        watches = api.recent_watches()
        if not watches:
            print("No tasks watched yet. Try  %runway_watch --demo")
            return
        updates = [w.update() for w in watches]
        left = ' style="text-align:left"'
        rows = "".join(
            f"<tr><td{left}><code>{html.escape(u.task_id)}</code></td><td{left}>{html.escape(u.outcome.value)}</td>"
            f"<td{left}>{html.escape(summary_line(u).split(': ', 1)[-1])}</td></tr>"
            for u in updates
        )
        table = f"<table><tr><th{left}>task</th><th{left}>watch</th><th{left}>status</th></tr>{rows}</table>"
        display({"text/html": table, "text/plain": "\n".join(summary_line(u) for u in updates)}, raw=True)


def _tidy_help(magic: Any) -> None:
    """Drop the reST ``::`` that IPython's magic_arguments puts above the usage line,
    which ``%runway_watch?`` would show as a stray "Docstring: ::"."""
    doc = magic.__doc__ or ""
    if doc.lstrip().startswith("::"):
        magic.__doc__ = textwrap.dedent(doc.lstrip()[2:].lstrip("\n"))


for _magic in (RunwayMagics.runway_watch, RunwayMagics.runway_stop, RunwayMagics.runway_tasks):
    _tidy_help(_magic)


def _history_of(args: Any) -> None:
    from IPython.display import display

    from .journal import journal_path
    from .resuming import history
    from .views.history import history_bundle

    if args.limit < 0:
        raise UsageError("--limit takes a number, 0 or more.")
    try:
        records = history(status=args.status, limit=args.limit, base_url=args.base_url)
    except RunwayWidgetsError as exc:
        raise UsageError(str(exc)) from None
    if not records:
        which = f" with status {', '.join(args.status)}" if args.status else ""
        print(f"No tasks{which} in the journal ({journal_path()}).")
        return
    display(history_bundle(records), raw=True)


def _is_bare_statement(shell: Any, magic: str = "runway_watch") -> bool:
    """True when the running cell calls ``%runway_watch`` only as a bare statement.

    IPython has transformed the cell into ``get_ipython().run_line_magic(...)`` calls and
    stored it in ``_ih``; if every such call is an expression statement, nobody uses the
    result.  When unsure (no history, a parse error), say False and keep the result.
    """
    import ast

    history = shell.user_ns.get("_ih") or [""]
    try:
        tree = ast.parse(history[-1])
    except SyntaxError:
        return False
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr == "run_line_magic" and node.args and isinstance(node.args[0], ast.Constant)
             and node.args[0].value == magic]
    bare = [node.value for node in ast.walk(tree) if isinstance(node, ast.Expr)]
    return bool(calls) and all(any(call is b for b in bare) for call in calls)

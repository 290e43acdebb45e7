"""``%runway_generate``: create tasks from a prompt and show them (a card, or a gallery for several).

A thin adapter over :func:`runway_widgets.generate.generate`.  Bad input raises a plain
:class:`~IPython.core.error.UsageError` (one sentence, no traceback) before anything is sent.
"""

from __future__ import annotations

import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from . import api
from .config import default_save, positive_seconds
from .errors import RunwayWidgetsError
from .generation import CONFIRM_ABOVE, generate
from .notebook import NotebookView, WatchList, in_colab, in_kernel, notebook_key
from .providers import choose_provider
from .views.terminal import TerminalBoard
from .views.widget import require_ipywidgets
from .watch import Watch

__all__ = ["GenerateMagics"]


@magics_class
class GenerateMagics(Magics):
    """Generate Runway videos from a notebook."""

    @magic_arguments()
    @argument("prompts", nargs="*", metavar="PROMPT", help="one or more prompts, each in quotes")
    @argument("--image", metavar="URL_OR_PATH", help="the first frame: an https URL or a local PNG/JPEG/WebP/GIF (sent inline, at most 5 MB)")
    @argument("--video", metavar="URL", help="video-to-video: the video to redraw (with --image: Act-One's performance)")
    @argument("--model", metavar="M", help="the model (image: gen4_turbo, gen4.5, gen3a_turbo; text on CometAPI: gen4, gen4_turbo)")
    @argument("--ratio", metavar="R", help="the aspect ratio, e.g. 1280:720 (16:9, 9:16 and 1:1 are translated)")
    @argument("--duration", type=int, metavar="S", help="seconds of video (5 or 10 for most models)")
    @argument("--seed", type=int, nargs="+", metavar="N", help="one or more seeds; with several prompts, every prompt gets every seed")
    @argument("--pair", action="store_true", help="pair prompts and seeds by position instead of trying every combination")
    @argument("--yes", action="store_true", help=f"confirm creating more than {CONFIRM_ABOVE} tasks at once (each costs credits)")
    @argument("--callback-url", metavar="URL", help="text only on CometAPI: your URL that receives the result (default $COMETAPI_CALLBACK_URL)")
    @argument("--provider", choices=("cometapi", "runway"), help="CometAPI (COMETAPI_KEY) or Runway's own API (RUNWAYML_API_SECRET)")
    @argument("--base-url", metavar="URL", help="API base URL (default: the provider's)")
    @argument("--wait", action="store_true", help="block the cell until done (for Run All)")
    @argument("--save", nargs="?", const="runway_videos/", metavar="PATH_OR_DIR", help="download each finished video (alone: runway_videos/)")
    @argument("--no-save", action="store_true", help="do not save, even if a default save folder is set")
    @argument("--no-video", action="store_true", help="a link instead of an inline video")
    @argument("--timeout", type=positive_seconds, default=1800.0, metavar="SECONDS", help="stop watching after this long (default 1800)")
    @argument("--demo", action="store_true", help="create the tasks on the built-in simulator (no key, no credits)")
    @line_magic
    def runway_generate(self, line: str) -> Any:
        """Create video tasks from a prompt and watch them: a captioned card, or a gallery.

        Examples::

            %runway_generate "a paper boat in the rain" --image boat.png --seed 7
            %runway_generate "a boat" "a ship" --seed 1 2 --wait     # 4 tasks, side by side
            %runway_generate "a paper boat" --demo                   # the simulator: no key needed

        Text only on CometAPI needs --callback-url (or $COMETAPI_CALLBACK_URL): a URL you own
        receives the result.  An image needs none.  The key is never an argument.
        """
        args = self._parse(line)
        if args.no_save and args.save is not None:
            raise UsageError("Choose one of --save and --no-save.")
        save: Any = False if args.no_save else args.save
        try:
            if in_kernel(self.shell):
                require_ipywidgets()
            options: dict[str, Any] = {"image": args.image, "video": args.video, "model": args.model,
                                       "ratio": args.ratio, "duration": args.duration, "callback_url": args.callback_url,
                                       "confirm": args.yes, "pair": args.pair, "timeout": args.timeout}
            prompts = args.prompts if len(args.prompts) != 1 else args.prompts[0]
            seeds = args.seed if args.seed is None or len(args.seed) != 1 else args.seed[0]
            if args.demo:
                if save is None and default_save() is None:
                    from .demo import demo_save_dir

                    save = demo_save_dir()  # the small demo file is then embedded in the card
                result = generate(prompts or "", seed=seeds, demo=True, save=save, **options)
            else:
                result = generate(prompts or "", seed=seeds, client=self._client(args), save=save, **options)
        except RunwayWidgetsError as exc:
            raise UsageError(str(exc)) from None
        watches = list(result) if isinstance(result, list) else [result]
        error = getattr(result, "error", None)
        if error is not None:
            print(f"Created {len(watches)} task(s); the next create failed, so no more were sent: {error}")
        return self._present(watches, args)

    def _parse(self, line: str) -> Any:
        # POSIX quoting, so "a paper boat" is one prompt without its quotes.
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"Bad arguments ({exc}); put each prompt in matching quotes.") from None
        try:
            return self.runway_generate.parser.parse_args(argv)
        except UsageError:
            raise
        except SystemExit:
            raise UsageError(f"Bad arguments: {line!r}; see %runway_generate?") from None

    def _client(self, args: Any) -> Any:
        provider = choose_provider(args.provider, base_url=args.base_url)
        return api.get_client(notebook_key(provider), args.base_url, provider=provider.name)

    def _present(self, watches: list[Watch], args: Any) -> Any:
        from .gallery_view import caption_for

        foreground = args.wait or in_colab() or not in_kernel(self.shell)
        count = getattr(self.shell, "execution_count", None)
        for handle in watches:
            handle._shown_in = count  # type: ignore[attr-defined]
        result = watches[0] if len(watches) == 1 else WatchList(watches)
        if not in_kernel(self.shell):
            board = TerminalBoard([w.task_id for w in watches])
            for handle in watches:
                handle.on_update(board)
            for handle in watches:
                try:
                    handle.wait()
                except RunwayWidgetsError:
                    pass  # the board shows why
            from .magic import _is_bare_statement

            # Terminal IPython prints "Out[n]:" for any result: a bare line leaves only the board.
            return None if _is_bare_statement(self.shell, "runway_generate") else result
        captions = {w.task_id: caption_for(w) for w in watches}
        view = NotebookView([w.task_id for w in watches], show_video=not args.no_video, foreground=foreground,
                            captions=captions, layout="card" if len(watches) == 1 else "gallery")
        view.show()
        for handle in watches:
            view.attach(handle)
        if foreground:
            view.drive()
        return result

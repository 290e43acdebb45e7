"""Run the simulator standalone: ``python -m runway_widgets.simulator [--demo]``.

The first line printed is ``Runway simulator listening on <base_url>``, so a
parent process can read the URL; the server then runs until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .server import Simulator
from .timeline import Timeline

DEMO_KEY = "sk-simulator-demo"


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m runway_widgets.simulator",
        description="A fake CometAPI server speaking the Runway-compatible protocol.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to bind, 0 for any free one (default: 8765)")
    parser.add_argument("--key", action="append", dest="keys", metavar="KEY",
                        help="accept only this API key (repeatable; default: accept any non-empty key)")
    parser.add_argument("--demo", action="store_true",
                        help="use the leisurely demo timeline (about 14 s from creation to video)")
    parser.add_argument("--fast", action="store_true", help="use the fast test timeline (about 2 s)")
    parser.add_argument("--refresh-period", type=float, metavar="SECONDS",
                        help="refresh every task in one loop every SECONDS, like a gateway (0: continuously; "
                             "default: as each timeline says)")
    parser.add_argument("--refresh-phase", type=float, metavar="SECONDS",
                        help="where in the period the ticks fall (default: random)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.refresh_period is not None and not (0 <= args.refresh_period < float("inf")):
        parser.error("--refresh-period must be a number of seconds, 0 or more")
    timeline = Timeline.demo() if args.demo else Timeline.fast() if args.fast else Timeline()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # SIGTERM (e.g. from a test harness) should shut down as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, on_signal)
    try:
        sim = Simulator(host=args.host, port=args.port, keys=args.keys, default_timeline=timeline,
                        refresh_period=args.refresh_period, refresh_phase=args.refresh_phase).start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    key = args.keys[0] if args.keys else DEMO_KEY
    print(f"Runway simulator listening on {sim.base_url}", flush=True)
    hint = "one of the --key values" if args.keys else "any non-empty key"
    print(f"Use base_url={sim.base_url!r} with {hint}, e.g. api_key={key!r}. Ctrl-C to stop.", flush=True)
    if sim.refresh_period is not None:
        print(f"One refresh loop for every task: every {sim.refresh_period:g} s (phase {sim.refresh_phase:.2f} s)."
              if sim.refresh_period else "Every task is refreshed continuously.", flush=True)
    try:
        while not stop.wait(0.5):  # short waits keep Ctrl-C responsive on every platform
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    print("Simulator stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The process-wide request budget: a token bucket that every watch draws from.

A 429 from the gateway is a statement about *all* our traffic, so it pauses every watch
(for the Retry-After, or a backoff) and halves the rate and the burst; successes restore
them gently (additive increase, multiplicative decrease, as TCP does).  Not thread-safe on its
own: the scheduler calls it under its lock.  Time is passed in, so tests need no clock.

The process's default budget grows with its watches (``per_watch``): 10 requests/s, or
what the Runway SDK would send for the same watches (one request per 6 s each, bursts of
four seconds of that), whichever is more.  A gateway that takes the SDK's traffic takes
ours; a fixed 10/s made 200 watches see finishes 1-2x as late as the SDK (a tick that
shows a hundred finishes cannot have them polled within a second or two at 10/s).  A
budget set explicitly (``rw.set_request_budget``) is a fixed cap.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RequestBudget", "DEFAULT_RATE", "DEFAULT_BURST", "SDK_PER_WATCH"]

DEFAULT_RATE = 10.0  # requests per second for the whole process
DEFAULT_BURST = 10.0
SDK_PER_WATCH = 1.0 / 6.0  # requests/s the Runway SDK sends per watch (one every 6 s on average)
# A budget scaled to its watches holds this many seconds of its rate.  Gateways of this
# family count requests per client over windows of a minute or more, so what matters to
# them is the rate; a tick that may show a finish to most of 200 watches needs the
# looks after it within a second or two, which 2 s of the rate could not pay for (the
# waiting tasks' looks went 3-6 s after the tick).
BURST_SECONDS = 4.0


@dataclass
class RequestBudget:
    """A token bucket with a shared pause.

    Parameters
    ----------
    rate:
        Sustained requests per second for the whole process.
    burst:
        Tokens the bucket holds: how many requests may go at once after a quiet spell.
    min_rate:
        The rate never drops below this after 429s.
    per_watch:
        Requests/s each watch adds (see :meth:`fit_watches`): the rate is then at least
        ``per_watch`` times the watches, the burst :data:`BURST_SECONDS` of that.  0: fixed.
    """

    rate: float = DEFAULT_RATE
    burst: float = DEFAULT_BURST
    min_rate: float = 0.2
    per_watch: float = 0.0

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1 or self.per_watch < 0:
            raise ValueError("need rate > 0, burst >= 1 and per_watch >= 0")
        self.base = (self.rate, self.burst)  # what the budget never scales below
        self.configured_rate = self.rate
        self.tokens = self.burst
        self.updated: float | None = None
        self.paused_until = float("-inf")
        self.spent = 0

    @property
    def holds(self) -> float:
        """The tokens the bucket holds at most now: the burst, reduced by 429s as the rate
        is (a gateway that limits requests per second answered the last burst with 429s;
        refilled to the full burst between ticks, the next burst would meet them again)."""
        return max(1.0, self.burst * min(1.0, self.rate / self.configured_rate))

    def _refill(self, now: float) -> None:
        if self.updated is not None and now > self.updated:
            self.tokens = min(self.holds, self.tokens + (now - self.updated) * self.rate)
        self.updated = now if self.updated is None else max(self.updated, now)

    def wait_time(self, now: float, reserved: int = 0) -> float:
        """Seconds until one more request may go (0 if it may go now).

        ``reserved`` requests were promised a token but have not taken it yet (they are on
        their way to a worker thread): they count as already spent.
        """
        self._refill(now)
        pause = max(0.0, self.paused_until - now)
        lack = max(0.0, 1.0 + reserved - self.tokens) / self.rate
        return max(pause, lack)

    def try_spend(self, now: float) -> bool:
        """Take one token if one is available now."""
        if self.wait_time(now) > 0:
            return False
        self.tokens -= 1.0
        self.spent += 1
        return True

    def penalize(self, now: float, pause: float) -> None:
        """A 429: nobody sends for ``pause`` seconds, and the rate halves."""
        self.paused_until = max(self.paused_until, now + max(0.0, pause))
        self.rate = max(self.min_rate, self.rate / 2.0)
        self.tokens = min(self.tokens, 0.0)

    def reconfigure(self, rate: float, burst: float) -> None:
        """Take a new fixed rate and burst (no more scaling with the watches), keeping
        what the gateway said.

        A 429 pause still running stays, and a rate reduced by 429s stays reduced in the
        same proportion (it creeps back toward the new rate as answers come in).
        """
        if rate <= 0 or burst < 1:
            raise ValueError("need rate > 0 and burst >= 1")
        self.base, self.per_watch = (rate, burst), 0.0
        self._retarget(rate, burst)

    def rescale(self, per_watch: float, rate: float, burst: float) -> None:
        """Scale with the watches again: at least ``rate``/``burst``, ``per_watch`` each."""
        if per_watch <= 0:
            raise ValueError("need per_watch > 0")
        self.reconfigure(rate, burst)
        self.per_watch = per_watch

    def fit_watches(self, watches: int) -> None:
        """Scale a ``per_watch`` budget to ``watches`` running watches (a fixed one stays)."""
        if self.per_watch <= 0:
            return
        wanted = watches * self.per_watch
        rate, burst = max(self.base[0], wanted), max(self.base[1], BURST_SECONDS * wanted)
        if (rate, burst) != (self.configured_rate, self.burst):
            self._retarget(rate, burst)

    def _retarget(self, rate: float, burst: float) -> None:
        reduced = self.rate / self.configured_rate
        self.configured_rate, self.burst = rate, burst
        self.rate = max(min(self.min_rate, rate), rate * reduced)
        self.tokens = min(self.tokens, burst)

    def reward(self) -> None:
        """A good answer: creep back toward the configured rate."""
        if self.rate < self.configured_rate:
            self.rate = min(self.configured_rate, self.rate + 0.05 * self.configured_rate)

"""A gateway's refresh cadence, learnt from the changes that polls see.  Pure.

A CometAPI/new-api gateway does not show a task's state the moment it changes upstream:
one loop refreshes every unfinished task, sleeps, and starts again, and the feed shows
each task as of the last pass.  So every change a poll sees happened at a *tick*
``phase + k * period`` that lies between that poll and the one before it (a
:data:`Bracket`).  The period is a property of the gateway, not of a task: brackets from
every watch of one base URL are pooled here.

Inference, in short:

* Two changes of one task need two ticks, at least a period apart: ``hi2 - lo1`` bounds
  the period from above.  A bound under :data:`MIN_PERIOD` means the server is
  continuous (or ticks too fast to be worth aiming at).
* Every bracket must hold a tick: for a candidate period, the brackets taken modulo the
  period must share a phase (:func:`phase_cover`).  Submultiples of the true period
  always fit; multiples and chance values stop fitting once changes at neighbouring
  ticks are seen.  So the *longest* period that fits, backed by changes at three or more
  distinct ticks, is taken, then refined on a fine grid (a loop that sleeps 15 s after a
  0.3 s pass ticks every 15.3 s, which is learnt as such).
* A later bracket that fits no phase means the gateway changed (restarted, slowed
  down): older evidence is dropped and the cadence is learnt again.

Nothing here reads a clock: times are arguments (monotonic seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Dict, Optional, Tuple

__all__ = ["Bracket", "Cadence", "learn", "phase_cover", "fit_period", "MIN_PERIOD", "MAX_PERIOD"]

Bracket = Tuple[float, float]  # (lo, hi]: a tick fell after lo and at or before hi

MIN_PERIOD = 3.0  # s: ticks closer than this are as good as continuous for pacing
MAX_PERIOD = 120.0  # s: longer refresh loops are not looked for
FAST_PERIOD = 8.0  # s: a gateway known to tick at least this often is paced like a continuous one
_KEEP = 48  # brackets kept per gateway: enough for the period, flat memory
_SLACK = 0.05  # s: bracket ends are request midpoints, off by half a round trip at most
_GRID = 1.02  # ratio between neighbouring candidate periods of the coarse search
_FINE = 41  # candidates of the fine search around a coarse fit
_LOCK = 0.4  # share of a period: a phase known more loosely is not worth aiming at
_SUPPORT = 3  # distinct ticks a period needs behind it (2 for the prior, or busy ones)
_BUSY = 8  # changes at one tick that make it busy (see _supported)
_NEAR_PRIOR = 0.05  # a period this close to the prior is the prior (not a rival to it)
_ODDS = 100.0  # how much likelier than chance a fit must be
_REFIT_EVERY = 8  # brackets between two refinements of a locked period
_RECENT = 6  # periods: the phase is taken from brackets this recent
_WIDE = 0.6  # share of a period: a wider bracket is not kept once the phase is known
_SHARP, _SHARP_S = 0.1, 2.0  # a bracket this narrow (share of a period, or s) pins the phase


@dataclass(frozen=True)
class Cadence:
    """What is known of one gateway's ticks (a value: :func:`learn` returns a new one).

    A tick falls in ``[start + k * period, start + width + k * period]`` for integer k.
    """

    brackets: Tuple[Bracket, ...] = ()
    upper: float = math.inf  # the period is at most this (two changes of one task)
    period: Optional[float] = None
    start: float = 0.0
    width: float = math.inf
    continuous: bool = False
    since_fit: int = 0
    sharp_at: float = -math.inf  # when a sharp bracket last pinned the phase
    drift: float = 0.0  # how far off the period may be: windows widen by this per tick from start
    span: float = 0.0  # ticks the cover's evidence spans: a period a little off biases it by drift each

    @property
    def fast(self) -> bool:
        """Continuous, or ticking too fast for polls a few seconds apart to place the ticks."""
        return self.continuous or (self.upper <= FAST_PERIOD and not self.locked)

    @property
    def locked(self) -> bool:
        """True when the ticks are known well enough to aim polls at them."""
        return self.period is not None and not self.continuous and self.width <= _LOCK * self.period

    def window(self, k: int) -> Tuple[float, float]:
        """The k-th tick window ``(earliest, latest)`` (k counts from ``start``, where the
        phase was last pinned; the period's own uncertainty widens windows further off)."""
        assert self.period is not None
        lo = self.start + k * self.period
        off = (abs(k) + self.span) * self.drift
        return lo - off, lo + self.width + off

    def index_after(self, t: float) -> int:
        """The first k whose window ends at or after ``t``."""
        assert self.period is not None
        return math.ceil((t - self.start - self.width) / self.period)

    def fits(self, bracket: Bracket) -> bool:
        """Does a predicted tick window overlap ``bracket``?"""
        lo, hi = self.window(self.index_after(bracket[0]))
        return lo < bracket[1]

    def last_tick(self, t: float) -> float:
        """When the latest tick at or before ``t`` most likely fell (what a poll at ``t`` shows)."""
        k = self.index_after(t)
        if self.window(k)[0] > t:
            k -= 1  # t is before window k: the tick it shows is the one before
        lo, hi = self.window(k)
        return min((lo + hi) / 2, t)


def learn(cadence: Cadence, bracket: Bracket, bound: float = math.inf, prior: float = 0.0) -> Cadence:
    """Fold one change into the cadence.

    ``bracket`` is (poll before, poll that saw the change); ``bound`` the longest period
    the same task's changes allow (see :func:`~.policy.period_bound`); ``prior`` a
    period to believe on thinner evidence (0: none).
    """
    lo, hi = bracket[0] - _SLACK, bracket[1] + _SLACK
    if not hi > lo:
        return cadence
    upper = min(cadence.upper, bound + 2 * _SLACK)
    if upper < MIN_PERIOD:
        # Changes closer than any tick period we aim at: the server is continuous.
        return Cadence(brackets=(), upper=upper, continuous=True)
    if cadence.continuous:
        return replace(cadence, upper=upper)
    period = cadence.period
    if period is not None and cadence.locked and hi - lo > _WIDE * period and cadence.fits((lo, hi)):
        # Wider than most of a period and as predicted: it pins nothing (polls aimed
        # just after ticks see every change this way).
        return replace(cadence, upper=upper)
    brackets = _add(cadence.brackets, (lo, hi))
    sharp_at = hi if hi - lo <= max(_SHARP_S, _SHARP * (period or 0.0)) else cadence.sharp_at
    out = replace(cadence, brackets=brackets, upper=upper, since_fit=cadence.since_fit + 1, sharp_at=sharp_at)
    if cadence.locked and period is not None and period <= upper:
        cover = phase_cover(brackets, period)
        if cover is not None and out.since_fit < _REFIT_EVERY:
            return _fitted(out, (period, cover[0], cover[1], cadence.drift))
        if cover is not None:
            # A submultiple of the true period fits every bracket too (the 15 s prior,
            # taken on two ticks 60 s apart, did for good): take a longer period once
            # the evidence backs it, as fit_period would from scratch.
            longer = fit_period(brackets, upper)
            if longer is not None and longer[0] > 1.5 * period:
                return _fitted(out, longer)
        fine = _refine(brackets, period)
        if fine is not None:
            return _fitted(out, fine)
        # No phase fits any more: the gateway changed (restarted, slowed down).  Keep
        # the newest evidence only and learn again.
        brackets = brackets[-max(4, len(brackets) // 4):]
        out = replace(out, brackets=brackets)
    fit = fit_period(brackets, upper, prior)
    if fit is None:
        return replace(out, period=None, width=math.inf, since_fit=0)
    return _fitted(out, fit)


def _fitted(cadence: Cadence, fit: Tuple[float, float, float, float]) -> Cadence:
    """Set the fit, with the phase taken from the recent evidence.

    A period a little off still fits brackets spread over many ticks, but its cover is a
    compromise between old and new ones; the recent brackets alone say where the ticks
    are now, and windows widen by ``drift`` per tick away from them.
    """
    period, start, width, drift = fit
    newest = cadence.brackets[-1][1]
    recent = tuple(b for b in cadence.brackets if b[1] >= newest - _RECENT * period)
    cover = phase_cover(recent, period)
    anchor = newest
    if cover is not None and cover[1] <= _LOCK * period:
        start, width = cover
        used = recent
    else:
        used = cadence.brackets
        # The phase was pinned where brackets about as narrow as the cover are: the
        # uncertainty grows with the ticks from there.
        sharp = [hi for lo, hi in cadence.brackets if hi - lo <= 2.0 * max(width, 1.0)]
        anchor = max(sharp) if sharp else (cadence.brackets[0][1] + newest) / 2
    k = math.floor((anchor - start) / period)  # count ticks from where the phase is known
    span = min(_RECENT, (anchor - min(b[0] for b in used)) / period) / 2
    return replace(cadence, period=period, start=start + k * period, width=width, drift=drift, span=span,
                   since_fit=0 if fit[3] != cadence.drift or cadence.period != period else cadence.since_fit)


def _add(brackets: Tuple[Bracket, ...], new: Bracket) -> Tuple[Bracket, ...]:
    """Keep the sharpest evidence: a bracket holding another says nothing more."""
    kept = []
    for old in brackets:
        if new[0] <= old[0] and old[1] <= new[1]:
            return brackets  # the new one contains an old one: no news
        if not (old[0] <= new[0] and new[1] <= old[1]):
            kept.append(old)  # (an old one containing the new one is replaced by it)
    kept.append(new)
    kept.sort(key=lambda b: b[1])
    while len(kept) > _KEEP:
        # Drop the widest of the older ones: sharp brackets far apart pin the period.
        older = kept[:-_KEEP // 4]
        kept.remove(max(older, key=lambda b: b[1] - b[0]))
    return tuple(kept)


def fit_period(brackets: Tuple[Bracket, ...], upper: float = math.inf,
               prior: float = 0.0) -> Optional[Tuple[float, float, float, float]]:
    """The period that pins the phase best, as ``(period, start, width, drift)``, or None.

    Every bracket must fit; among the periods that do, the one whose phase cover is the
    smallest share of the period wins (brackets that fall on one narrow phase by chance
    get unlikely fast), if brackets at :data:`_SUPPORT` distinct ticks back it (the
    ``prior`` period: two).  Submultiples of the true period fit as well but pin the
    phase to a larger share of their period; multiples stop fitting once changes at
    neighbouring ticks are seen.
    """
    if len(brackets) < 3:
        return None
    top = min(upper, MAX_PERIOD)
    ref = brackets[-1][1]
    # A candidate is off the true period by at most half a grid step: widen each bracket
    # by the phase error that builds up between it and the newest one.
    tol = (_GRID - 1.0) / 2.0
    widened = tuple((lo - abs(ref - lo) * tol, hi + abs(ref - hi) * tol) for lo, hi in brackets)
    n = int(math.log(top / MIN_PERIOD) / math.log(_GRID)) if top > MIN_PERIOD else -1
    coarse = []
    for i in range(n, -1, -1):
        period = MIN_PERIOD * _GRID ** i
        cover = phase_cover(widened, period)
        if cover is not None and cover[1] <= _LOCK * period:
            coarse.append((-_evidence(widened, period, cover[0], cover[1]), period))
    best: Optional[Tuple[float, float, float, float]] = None
    tried = math.log(max(1, len(coarse)) * _FINE)  # the more periods tried, the likelier a chance fit
    score = math.log(_ODDS)
    rival = -math.inf  # the best evidence of a period away from the prior, backed or not
    for _share, period in sorted(coarse)[:3]:
        fine = _refine(brackets, period)
        if fine is None:
            continue
        evidence = _evidence(brackets, *fine)
        if _supported(brackets, fine) and evidence - tried > score:
            best, score = fine, evidence - tried
        if prior <= 0 or abs(fine[0] / prior - 1.0) > _NEAR_PRIOR:
            rival = max(rival, evidence)
    if best is None and prior >= MIN_PERIOD and prior <= top:
        fine = _refine(brackets, prior)
        # The prior is believed on two ticks only when nothing else fits them better: wide
        # brackets at two ticks 20 s apart also fit a 15 s prior, which then held a crowd
        # of 200 watches on the wrong ticks for three minutes (p50 lag 5 s instead of 0.6).
        if (fine is not None and _ticks(brackets, *fine) >= 2 and _evidence(brackets, *fine) >= rival
                and _evidence(brackets, *fine) - math.log(_FINE) > score):
            best = fine
    return best


def _evidence(brackets: Tuple[Bracket, ...], period: float, start: float, width: float, drift: float = 0.0) -> float:
    """Log-odds that the brackets fall on one phase because the gateway ticks, not by chance.

    A bracket w wide lands within a cover c wide by chance with probability about
    (w + c) / period; the first one sets the phase and is free.
    """
    odds = sum(math.log(period / (hi - lo + width)) for lo, hi in brackets if hi - lo + width < period)
    return odds - math.log(period / max(width, 1e-3)) if odds > 0 else 0.0


def _refine(brackets: Tuple[Bracket, ...], period: float) -> Optional[Tuple[float, float, float, float]]:
    """The middle of the periods near ``period`` that every bracket fits, as
    ``(period, start, width, drift)``; ``drift`` is half their range: how far off the
    period may be.  (The narrowest cover would overfit few brackets.)  Two passes: the
    second zooms in on the range the first found, so a long run of evidence pins the
    period as finely as it allows.
    """
    lo, hi = period * (2.0 - _GRID), period * _GRID
    best: Optional[Tuple[float, float, float, float]] = None
    for _ in range(2):
        step = (hi - lo) / (_FINE - 1)
        fits = []
        for j in range(_FINE):
            p = lo + j * step
            cover = phase_cover(brackets, p)
            if cover is not None and cover[1] <= _LOCK * p:
                fits.append((p, cover))
        if not fits:
            return best
        p, cover = fits[len(fits) // 2]
        best = (p, cover[0], cover[1], max(step, (fits[-1][0] - fits[0][0]) / 2))
        lo, hi = fits[0][0] - step, fits[-1][0] + step
    return best


def _supported(brackets: Tuple[Bracket, ...], fit: Tuple[float, float, float, float]) -> bool:
    """Do brackets at :data:`_SUPPORT` distinct ticks back the fit, or at two *busy* ones?

    Two ticks a period apart also fit half that period (a tick between them that nobody
    saw change), which a third tick rules out.  But where many tasks changed at each of
    the two (:data:`_BUSY`), the crowd polls often enough that a tick between them would
    have shown changes too: behind a 60 s loop, 200 watches lock a tick sooner (a minute).
    """
    counts = _tick_counts(brackets, *fit)
    return len(counts) >= _SUPPORT or sum(1 for n in counts.values() if n >= _BUSY) >= 2


def _tick_counts(brackets: Tuple[Bracket, ...], period: float, start: float, width: float,
                 drift: float = 0.0) -> Dict[int, int]:
    """How many brackets point at each tick under this fit (tick index -> brackets)."""
    counts: Dict[int, int] = {}
    for lo, hi in brackets:
        if hi - lo < period:
            k = round(((lo + hi) / 2 - start - width / 2) / period)
            counts[k] = counts.get(k, 0) + 1
    return counts


def _ticks(brackets: Tuple[Bracket, ...], period: float, start: float, width: float, drift: float = 0.0) -> int:
    """How many distinct ticks the brackets point at under this fit."""
    return len(_tick_counts(brackets, period, start, width))


def _arcs(bracket: Bracket, period: float) -> list:
    """A time bracket as one or two intervals of phase in [0, period)."""
    lo = bracket[0] % period
    hi = lo + (bracket[1] - bracket[0])
    return [(lo, period), (0.0, hi - period)] if hi > period else [(lo, hi)]


def phase_cover(brackets: Tuple[Bracket, ...], period: float) -> Optional[Tuple[float, float]]:
    """The smallest arc ``(start, width)`` of tick phases consistent with every bracket.

    Returns None when no single phase fits them all (the server does not tick with this
    period), and ``(0, period)`` when there is nothing to go on.  Brackets a period wide
    or wider hold a tick whatever the phase: they are skipped.
    """
    feasible = [(0.0, period)]
    for bracket in brackets:
        if bracket[1] - bracket[0] >= period:
            continue
        out = []
        for lo2, hi2 in _arcs(bracket, period):
            for lo1, hi1 in feasible:
                lo, hi = max(lo1, lo2), min(hi1, hi2)
                if lo < hi:  # strict: brackets that only touch share no tick
                    out.append((lo, hi))
        if not out:
            return None
        feasible = sorted(out)
    # The cover is the circle minus its largest gap between feasible pieces.
    best_gap, best_end = -1.0, feasible[0][0]
    for i, (lo, _hi) in enumerate(feasible):
        prev_hi = feasible[i - 1][1] - (period if i == 0 else 0.0)
        if lo - prev_hi > best_gap:
            best_gap, best_end = lo - prev_hi, lo
    return best_end, min(max(0.0, period - best_gap), period)

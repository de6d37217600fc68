"""One verdict rule for `ab`, `compare` and `changes`: which score decides, and what a row may say.

The score. A round's time over the calibration round beside it cancels the machine's speed of that
moment, but also anything that slows the calibration itself: a torch or BLAS upgrade, a thread or
library variable, a candidate that changes process-wide state. So the calibrated score decides only
where the sides run the same software and the calibration did not move between them (its own
change is not significant at CALIBRATION_ALPHA and its estimate is within +-CALIBRATION_TOLERANCE);
anywhere else raw time decides, and the row says why. What this cannot see: a move of the
calibration smaller than its noise, which shifts the calibrated score by at most the slope times
that move (docs/verdicts.md).

What a row says (`classify`, after `family`):
- `regression` / `improvement`: significant in that direction after Holm's correction over the
  session's benchmarks (one-sided at alpha / 2 each way: Holm's two-sided test), at least the
  minimum effect, and its interval clear of no change (so no row says more than the interval
  printed beside it);
- `no change`: the whole interval lies within +-minimum effect (1/(1+m) .. 1+m);
- `inconclusive`: anything else, with what a decision would take (`needed_factor`).
For a score fixed in advance, Holm keeps the chance that a session of unchanged code flags anything
(a regression or an improvement) at most alpha, and a regression at most alpha / 2, however many
benchmarks it judges (at one-sided alpha a direction, as before, the first bound was 2 alpha). The
score is chosen per row from the data, in the same processes as the rounds; the whole rule is
simulated by `python -m bench power --rule` (bench/power/rule.py; the rates in docs/verdicts.md).
No torch import.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from bench.verdicts.notation import percent
from bench.verdicts.stats import Change

REGRESSION, IMPROVEMENT, NO_CHANGE, INCONCLUSIVE = "regression", "improvement", "no change", "inconclusive"
UNTESTABLE = "cannot tell"  # no test at all: too few processes or runs
VERDICTS = (REGRESSION, IMPROVEMENT, NO_CHANGE, INCONCLUSIVE, UNTESTABLE)
RAW, CALIBRATED = "raw", "calibrated"

# The calibration counts as unmoved only when its change is not significant at this lenient level
# and its estimate lies within +-CALIBRATION_TOLERANCE: a yardstick that moved by 1% shifts the
# calibrated score by up to 1%, half the default minimum effect. A false "moved" only costs the
# width of the raw interval; a missed one can turn a slowdown into "no change". (Requiring its whole
# interval within +-1% was tried: on a same-code session of the fast profile every calibration
# interval was +-1.5% to +-35% wide, so raw would decide everywhere.)
CALIBRATION_ALPHA = 0.05
CALIBRATION_TOLERANCE = 0.01


def calibration_moved(calibration: Change | None) -> str:
    """Why the calibration cannot serve as a yardstick between these sides ('' where it can)."""
    if calibration is None:
        return "no calibration rounds to compare"
    if calibration.p_value < CALIBRATION_ALPHA:
        return f"the calibration itself changed {percent(calibration.ratio)} (p = {calibration.p_value:.2g})"
    if not 1 / (1 + CALIBRATION_TOLERANCE) <= calibration.ratio <= 1 + CALIBRATION_TOLERANCE:
        return (
            f"the calibration itself changed {percent(calibration.ratio)} "
            f"(p = {calibration.p_value:.2g}, over {CALIBRATION_TOLERANCE:.0%})"
        )
    return ""


def choose_score(calibration: Change | None, software_differs: Sequence[str]) -> tuple[str, str]:
    """(RAW or CALIBRATED, why): raw wherever the calibrated score could cancel the change."""
    if software_differs:
        return RAW, f"the sides' software differs ({', '.join(software_differs)})"
    moved = calibration_moved(calibration)
    return (RAW, moved) if moved else (CALIBRATED, "the calibration did not move")


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: the k-th smallest times (n - k + 1),
    made non-decreasing, at most 1. Written out rather than statsmodels' multipletests because that
    takes 50 ms a call here and the power tables call it for every trial; tests/test_verdict.py
    checks it equals multipletests(method="holm") on seeded p-values."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


@dataclasses.dataclass(frozen=True)
class Row:
    """One benchmark compared: the seconds, the change of every score, which score decides and why,
    and (after `finish`) the verdict, its family-adjusted one-sided p-value in the direction of the
    change, and where inconclusive how many times the data would decide it."""

    benchmark: str
    baseline_seconds: float | None
    latest_seconds: float | None
    raw: Change | None
    calibrated: Change | None
    calibration: Change | None
    decided_by: str  # RAW, CALIBRATED, or "-" where no score could be tested
    reason: str = ""  # why that score decides
    verdict: str = UNTESTABLE
    p_adjusted: float | None = None
    needed_factor: float | None = None
    slope: float | None = None  # ab's calibrated score: how much a round moves with its calibration
    look: int | None = None  # ab with --looks over 1: the look that decided (sequential.py)

    @property
    def decided(self) -> Change | None:
        """The change of the score that decided the verdict (None where none could)."""
        return {RAW: self.raw, CALIBRATED: self.calibrated}.get(self.decided_by)


def finish(rows: Sequence[Row], alpha: float, min_effect: float) -> list[Row]:
    """The verdicts of one session's rows, judged together (`family`)."""
    judged = family([row.decided for row in rows], alpha, min_effect)
    out = []
    for row, j in zip(rows, judged, strict=True):
        change = row.decided
        p = None if change is None else (j.p_slower if change.ratio >= 1 else j.p_faster)
        out.append(dataclasses.replace(row, verdict=j.verdict, p_adjusted=p, needed_factor=j.needed_factor))
    return out


def any_regression(rows: Sequence[Row]) -> bool:
    """What `--fail-on-regression` fails on (the rows' verdicts are family-wise: `finish`)."""
    return any(row.verdict == REGRESSION for row in rows)


@dataclasses.dataclass(frozen=True)
class Judged:
    """One row's verdict: the adjusted one-sided p-values and, where inconclusive, how many times
    the data it had would decide it (None where a decision is not in reach)."""

    verdict: str
    p_slower: float | None
    p_faster: float | None
    needed_factor: float | None = None


def needed_factor(change: Change, min_effect: float) -> float | None:
    """How many times the data (rounds, processes) would narrow the interval enough to decide:
    the interval's half-width shrinks as one over the square root of the data, and a decision needs
    it inside +-min_effect (no change) or past it (a change). None where the estimate sits on the
    edge (within 0.1% of the minimum effect): then no amount decides it."""
    half = (math.log(change.high) - math.log(change.low)) / 2
    gap = abs(abs(math.log(change.ratio)) - math.log1p(min_effect))
    if gap < 1e-3:
        return None
    return max(1.0, (half / gap) ** 2)


def classify(change: Change | None, p_slower: float, p_faster: float, alpha: float, min_effect: float) -> str:
    """The verdict of one row from its change and its family-adjusted one-sided p-values."""
    if change is None:
        return UNTESTABLE
    # each direction at alpha / 2, as the printed two-sided interval is: so that a session of
    # unchanged code says either (not only "regression") at most alpha of the time, whichever score
    # decides (docs/verdicts.md, `power --rule`); and that interval clear of no change
    if p_slower < alpha / 2 and change.ratio >= 1 + min_effect and change.low > 1:
        return REGRESSION
    if p_faster < alpha / 2 and change.ratio <= 1 / (1 + min_effect) and change.high < 1:
        return IMPROVEMENT
    if change.low >= 1 / (1 + min_effect) and change.high <= 1 + min_effect:
        return NO_CHANGE
    return INCONCLUSIVE


def family(changes: Sequence[Change | None], alpha: float, min_effect: float) -> list[Judged]:
    """Every row of one session judged together: Holm over the rows that have a test, each
    direction on its own at alpha / 2, so that all-unchanged code flags anything with probability
    <= alpha (for a score fixed in advance)."""
    tested = [i for i, c in enumerate(changes) if c is not None]
    slower = holm([changes[i].one_sided(slower=True) for i in tested])
    faster = holm([changes[i].one_sided(slower=False) for i in tested])
    adjusted = {i: (s, f) for i, s, f in zip(tested, slower, faster, strict=True)}
    out = []
    for i, change in enumerate(changes):
        if change is None:
            out.append(Judged(UNTESTABLE, None, None))
            continue
        p_slower, p_faster = adjusted[i]
        outcome = classify(change, p_slower, p_faster, alpha, min_effect)
        factor = needed_factor(change, min_effect) if outcome == INCONCLUSIVE else None
        out.append(Judged(outcome, p_slower, p_faster, factor))
    return out


def counts(verdicts: Sequence[str]) -> str:
    """The summary line: how many rows said each verdict, in a fixed order."""
    seen = [f"{sum(v == name for v in verdicts)} {name}" for name in VERDICTS if name in verdicts]
    return ", ".join(seen) or "nothing judged"

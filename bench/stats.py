"""The statistics behind a verdict: scipy.stats for the t distribution and Welch's test (no torch:
compare and the A/B verdicts must answer in about a second).

A run's sample for one benchmark is its per-process medians (bench/sampling.py): rounds within a
process are not independent, processes are more nearly so. But runs differ by more than their
processes do when the machine's speed drifts between runs (on a shared 2-core VM it does, by up to
1.5x in episodes of seconds), so once the history holds a few runs the change is tested against the
run-to-run spread measured there (`run_change`); before that, Welch's t-test on the logs of the
per-process values (`log_ratio_change`), which knows only the process-to-process spread. Either way
the change is a ratio with a confidence interval, and a verdict also needs it to be at least a
minimum effect.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass

from scipy import stats

REGRESSION, IMPROVEMENT, NO_CHANGE, UNTESTABLE = "regression", "improvement", "no change", "cannot tell"


@dataclass(frozen=True)
class Change:
    """candidate / baseline as a ratio (1.05 = 5% more time), its interval and two-sided p-value."""

    ratio: float
    low: float
    high: float
    p_value: float
    n_baseline: int
    n_candidate: int

    se: float = 0.0  # standard error of the log ratio: the spread the change was tested against

    def significant(self, alpha: float) -> bool:
        return self.p_value < alpha


def log_ratio_change(baseline: list[float], candidate: list[float], confidence: float) -> Change | None:
    """Welch's t-test on log values; None when a side has fewer than two values (no spread to test)."""
    if len(baseline) < 2 or len(candidate) < 2:
        return None
    logs_b, logs_c = [math.log(v) for v in baseline], [math.log(v) for v in candidate]
    diff = statistics.fmean(logs_c) - statistics.fmean(logs_b)
    se = math.sqrt(statistics.variance(logs_b) / len(logs_b) + statistics.variance(logs_c) / len(logs_c))
    if se == 0.0:  # identical values on both sides: the change is exact
        p_value = 1.0 if diff == 0.0 else 0.0
        return Change(
            math.exp(diff), math.exp(diff), math.exp(diff), p_value, len(baseline), len(candidate), 0.0
        )
    test = stats.ttest_ind(logs_c, logs_b, equal_var=False)
    interval = test.confidence_interval(confidence)
    return Change(
        math.exp(diff),
        math.exp(interval.low),
        math.exp(interval.high),
        float(test.pvalue),
        len(baseline),
        len(candidate),
        se,
    )


def run_level(values: list[float]) -> float:
    """One run's level for a benchmark: the mean log of its per-process values."""
    return statistics.fmean(math.log(v) for v in values)


def run_to_run_sd(levels: list[float]) -> float | None:
    """Spread of run levels from successive differences (von Neumann), so that a step change in
    the history (a real regression long ago) inflates it once, not for every run; None below 3 runs."""
    if len(levels) < 3:
        return None
    steps = [(b - a) ** 2 for a, b in itertools.pairwise(levels)]
    return math.sqrt(statistics.fmean(steps) / 2.0)


def run_change(
    baseline_runs: list[list[float]], candidate: list[float], sd: float, history: int, confidence: float
) -> Change:
    """The candidate run's level against the mean of the baseline runs' levels, when runs vary by
    `sd` (estimated from `history` earlier runs): a prediction interval for one more run."""
    levels = [run_level(run) for run in baseline_runs]
    diff = run_level(candidate) - statistics.fmean(levels)
    se = sd * math.sqrt(1.0 + 1.0 / len(levels))
    df = max(history - 1, 1)
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    p_value = float(2.0 * stats.t.sf(abs(diff) / se, df)) if se > 0 else float(diff == 0.0)
    n_base = sum(len(run) for run in baseline_runs)
    return Change(
        math.exp(diff), math.exp(diff - half), math.exp(diff + half), p_value, n_base, len(candidate), se
    )


def verdict(change: Change | None, alpha: float, min_effect: float) -> str:
    """Regression (more time) or improvement only when significant at `alpha` AND at least
    `min_effect` in size (0.02: 2% more time, or 1/1.02 of it); otherwise no change."""
    if change is None:
        return UNTESTABLE
    if not change.significant(alpha):
        return NO_CHANGE
    if change.ratio >= 1.0 + min_effect:
        return REGRESSION
    if change.ratio <= 1.0 / (1.0 + min_effect):
        return IMPROVEMENT
    return NO_CHANGE


@dataclass(frozen=True)
class Row:
    benchmark: str
    baseline_seconds: float | None
    latest_seconds: float | None
    raw: Change | None
    normalized: Change | None
    calibration: Change | None
    decided_by: str
    verdict: str
    note: str = ""

    @property
    def decided(self) -> Change | None:
        """The change of the score that decided the verdict (None where none could)."""
        return {"raw": self.raw, "normalized": self.normalized}.get(self.decided_by)


@dataclass(frozen=True)
class Values:
    """One side of a comparison: per-process medians, their calibration times, and the ratios."""

    process: list[float]
    calibration: list[float]
    normalized: list[float]

    @classmethod
    def from_extra_info(cls, extra: dict) -> Values:
        """The per-process values a saved benchmark keeps (empty lists where none were saved)."""
        return cls(
            *(
                list(extra.get(key, []))
                for key in ("process_medians", "calibration_medians", "normalized_medians")
            )
        )

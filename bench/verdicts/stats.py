"""The statistics behind a verdict: scipy.stats for the t distribution and Welch's test (no torch:
compare and the A/B verdicts must answer in about a second).

A run's sample for one benchmark is its per-process medians (bench/measure/sampling.py): rounds within a
process are not independent, processes are more nearly so. But runs differ by more than their
processes do when the machine's speed drifts between runs (on a shared 2-core VM it does, by up to
1.5x in episodes of seconds), so once the history holds a few runs the change is tested against the
run-to-run spread measured there (`run_change`); before that, Welch's t-test on the logs of the
per-process values (`log_ratio_change`), which knows only the process-to-process spread. Either way
the change is a ratio with a confidence interval; bench/verdicts/verdict.py turns changes into verdicts.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass, field

from scipy import special


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
    df: float = math.inf  # degrees of freedom of the t distribution the change was tested on

    def one_sided(self, slower: bool) -> float:
        """The p-value of "more time" (`slower`) or of "less time" alone: the family-wise gate tests
        each direction on its own (bench/verdicts/verdict.py)."""
        diff = math.log(self.ratio)
        if self.se == 0.0:
            return 0.0 if (diff > 0 if slower else diff < 0) else 1.0
        t = diff / self.se
        return float(special.stdtr(self.df, -t if slower else t))  # the t distribution's tail


def log_ratio_change(baseline: list[float], candidate: list[float], confidence: float) -> Change | None:
    """Welch's t-test on log values; None when a side has fewer than two values (no spread to test).

    The Welch-Satterthwaite formulas with scipy.special's t distribution, as scipy.stats.ttest_ind
    (equal_var=False) computes them (tests/test_stats.py checks they agree) at a hundredth of its
    cost: the seeded tests and power tables run it hundreds of thousands of times."""
    if len(baseline) < 2 or len(candidate) < 2:
        return None
    logs_b, logs_c = [math.log(v) for v in baseline], [math.log(v) for v in candidate]
    diff = statistics.fmean(logs_c) - statistics.fmean(logs_b)
    vb, vc = statistics.variance(logs_b) / len(logs_b), statistics.variance(logs_c) / len(logs_c)
    se = math.sqrt(vb + vc)
    if se == 0.0:  # identical values on both sides: the change is exact
        p_value = 1.0 if diff == 0.0 else 0.0
        return Change(
            math.exp(diff), math.exp(diff), math.exp(diff), p_value, len(baseline), len(candidate), 0.0
        )
    df = (vb + vc) ** 2 / (vb**2 / (len(logs_b) - 1) + vc**2 / (len(logs_c) - 1))
    half = float(special.stdtrit(df, 0.5 + confidence / 2)) * se
    return Change(
        math.exp(diff),
        math.exp(diff - half),
        math.exp(diff + half),
        float(2 * special.stdtr(df, -abs(diff) / se)),
        len(baseline),
        len(candidate),
        se,
        df,
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


def successive_difference_df(runs: int) -> float:
    """The degrees of freedom of run_to_run_sd's variance over `runs` levels, as a chi-square's:
    for iid normal levels the sum of the n - 1 squared successive differences has variance
    sigma^4 (12n - 16) (each 8 sigma^4, adjacent ones covarying by 2 sigma^4), so the estimate's
    variance is 2 sigma^4 / nu with nu = 2 (n - 1)^2 / (3n - 4): 2.9 at 5 runs, 12.9 at 20, not
    n - 1 (tests/test_stats.py simulates it; docs/verdicts.md has what it does to the test)."""
    return 2.0 * (runs - 1) ** 2 / (3.0 * runs - 4.0)


def run_change(
    baseline_runs: list[list[float]], candidate: list[float], sd: float, history: int, confidence: float
) -> Change:
    """The candidate run's level against the mean of the baseline runs' levels, when runs vary by
    `sd` (estimated by run_to_run_sd from `history` earlier runs): a prediction interval for one
    more run, on the t distribution with that estimate's degrees of freedom."""
    levels = [run_level(run) for run in baseline_runs]
    diff = run_level(candidate) - statistics.fmean(levels)
    se = sd * math.sqrt(1.0 + 1.0 / len(levels))
    df = successive_difference_df(history)
    half = float(special.stdtrit(df, 0.5 + confidence / 2)) * se
    p_value = float(2.0 * special.stdtr(df, -abs(diff) / se)) if se > 0 else float(diff == 0.0)
    n_base = sum(len(run) for run in baseline_runs)
    return Change(
        math.exp(diff), math.exp(diff - half), math.exp(diff + half), p_value, n_base, len(candidate), se, df
    )


@dataclass(frozen=True)
class Values:
    """One side of a comparison: per-process medians, their calibration times, their ratios, and
    (where saved) every round and calibration round by process."""

    process: list[float]
    calibration: list[float]
    normalized: list[float]
    rounds: list[list[float]] = field(default_factory=list)
    calibration_rounds: list[list[float]] = field(default_factory=list)

    @classmethod
    def from_extra_info(cls, extra: dict) -> Values:
        """The per-process values a saved benchmark keeps (empty lists where none were saved)."""
        return cls(
            *(
                list(extra.get(key, []))
                for key in (
                    "process_medians",
                    "calibration_medians",
                    "normalized_medians",
                    "process_rounds",
                    "calibration_rounds",
                )
            )
        )


def within_process_slope(sides: list[Values]) -> float | None:
    """How much a round's log time moves with the log time of the calibration round beside it,
    within processes (every process of every side, each about its own means), held to [0, 1]:
    0 where the calibration does not track the rounds, 1 where it tracks them fully. None without
    rounds to estimate it from."""
    sxy = sxx = 0.0
    for side in sides:
        if not side.rounds or len(side.rounds) != len(side.calibration_rounds):
            return None
        for rounds, calibration in zip(side.rounds, side.calibration_rounds, strict=True):
            if len(rounds) != len(calibration) or len(rounds) < 2:
                return None
            y, x = [math.log(v) for v in rounds], [math.log(v) for v in calibration]
            my, mx = statistics.fmean(y), statistics.fmean(x)
            sxy += sum((a - my) * (b - mx) for a, b in zip(y, x, strict=True))
            sxx += sum((b - mx) ** 2 for b in x)
    if sxx == 0.0:
        return 0.0
    return min(1.0, max(0.0, sxy / sxx))


def controlled(side: Values, slope: float) -> list[float]:
    """Per process, the median round over its calibration round to the power `slope`: raw time at
    0, the normalized score at 1 (a control variate: the part of a round's time that moved with the
    calibration beside it is taken out, as much as it moved with it)."""
    return [
        statistics.median(t / c**slope for t, c in zip(rounds, calibration, strict=True))
        for rounds, calibration in zip(side.rounds, side.calibration_rounds, strict=True)
    ]


def controlled_change(baseline: Values, candidate: Values, confidence: float) -> tuple[Change | None, float]:
    """The change on the control-variate score (Welch on its per-process values) and its slope;
    None where rounds were not saved."""
    slope = within_process_slope([baseline, candidate])
    if slope is None:
        return None, math.nan
    return log_ratio_change(controlled(baseline, slope), controlled(candidate, slope), confidence), slope


# A process's median of R normal rounds varies about pi/2 times as much as their mean.
MEDIAN_EFFICIENCY = math.pi / 2


def rounds_factor(sides: list[list[list[float]]], data_factor: float) -> float | None:
    """How many times the rounds would shrink the variance of a side's mean process value by
    `data_factor` (verdict.needed_factor), given each side's rounds by process (log scale). A
    process value varies with its process (between processes, which more rounds do not touch) and
    with its rounds (within, as their variance over R): more rounds cut only the second. None where
    the first alone is over the target: then only more processes decide it."""
    within, between, n_within, n_between = 0.0, 0.0, 0, 0
    rounds = min(len(process) for side in sides for process in side)
    for side in sides:
        medians = [statistics.median(process) for process in side]
        between += statistics.variance(medians) * (len(medians) - 1)
        n_between += len(medians) - 1
        for process in side:
            within += statistics.variance(process) * (len(process) - 1)
            n_within += len(process) - 1
    total = between / n_between
    from_rounds = min(total, MEDIAN_EFFICIENCY * within / n_within / rounds)
    from_processes = total - from_rounds
    target = total / data_factor
    if from_processes >= target:
        return None
    return max(1.0, from_rounds / (target - from_processes))

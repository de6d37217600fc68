"""`python -m bench changes`: where a series' level stepped and stayed, and what changed there.

A pairwise compare sees a change only when it is larger than one run's noise; a 5% step on a machine
whose runs wander by 4-14% is not, but it shifts every run after it. So each benchmark's series (one
hardware and run configuration, bench/base/history.py) is searched for change points: ruptures' PELT with
a mean-shift (l2) cost proposes where the level moved, with a BIC-like penalty scaled by the noise
of successive runs; then every proposed step is tested, the level of the runs after it against the
runs before it (back to the previous step) with Student's t on the run-to-run spread pooled over the
whole series, and the weakest is dropped until every step left is significant at `alpha` and at
least `min_effect` in size, and stays significant (at 0.01) without the one run that most supports
it. A step must hold for `min_runs` runs on each side: one slow run is an outlier, not a change.
Noise alone makes no steps, at a rate measured in the README.

Each series is read on raw per-process medians, or on the calibrated (normalized) ones where the
calibration itself never stepped and the software never changed in the series and they wander less
from run to run (bench/verdicts/verdict.py's rule), and each step names the last run before it, the first
run after it and what differed between those two (commit, python, torch, transformers, CUDA, cuDNN, driver).
No torch import: it reads results/ alone.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from bench.base.errors import BenchInputError
from bench.base.history import Run, by_series, by_work, label_changes, load_runs, software_differences
from bench.verdicts.exact import CountStep, count_steps
from bench.verdicts.notation import describe_series, percent, plural, run_name, short_name
from bench.verdicts.stats import run_level
from bench.verdicts.verdict import CALIBRATED, CALIBRATION_ALPHA, CALIBRATION_TOLERANCE, RAW

ALPHA, MIN_EFFECT, MIN_RUNS = 0.001, 0.02, 3
# A step must also stay significant at this level without the run that most supports it: in
# heavy-tailed noise (Student-t, 3 df) two odd runs close together make steps of their own
# (tests/test_changes.py: 18 false steps in 2,000 runs without this check, 6 with it).
ROBUST_ALPHA = 0.01
# PELT's price of one more change point, in units of the run-to-run variance times log(runs): a
# BIC-like proposal that the tests below then prune (2 is BIC's own value).
PENALTY = 2.0


@dataclass(frozen=True)
class Step:
    """A lasting change of level at run `index` of a series (the first run after it).

    `ratio` is the level after over the level before (1.05: 5% more time), with its interval at
    1 - alpha, and the two-sided p-values; `before` and `after` count the runs each level rests on.
    """

    index: int
    ratio: float
    low: float
    high: float
    p_value: float
    robust_p: float  # the p-value without the one run that most supports the step
    before: int
    after: int


def noise_sd(levels: Sequence[float]) -> float:
    """The run-to-run spread of log levels from successive differences, made robust with their
    median: one step or one odd run moves it little (MAD of differences / (0.6745 * sqrt 2))."""
    if len(levels) < 3:
        return 0.0
    diffs = np.abs(np.diff(np.asarray(levels, dtype=float)))
    return float(np.median(diffs)) / (0.6745 * math.sqrt(2.0))


def t_test(left: np.ndarray, right: np.ndarray, sd: float, df: int) -> tuple[float, float]:
    """(p-value, standard error) of the difference of two segments' means, spread `sd` with `df`."""
    diff = float(right.mean() - left.mean())
    se = sd * math.sqrt(1 / len(left) + 1 / len(right))
    if se == 0:  # identical runs within every segment: a step is exact
        return (0.0 if diff else 1.0), 0.0
    return float(2 * stats.t.sf(abs(diff) / se, df)), se


def tested_steps(levels: np.ndarray, breaks: list[int], alpha: float) -> list[Step]:
    """Each break tested: the mean of its right segment against its left one, on the spread of the
    runs about their own segment's mean pooled over the whole series (Student's t, n - k df); and
    again without the one run, on either side, that most supports the step (`robust_p`, the larger
    of the two), so that a single odd run cannot make a step of a short level."""
    edges = [0, *breaks, len(levels)]
    segments = [levels[a:b] for a, b in itertools.pairwise(edges)]
    residuals = np.concatenate([seg - seg.mean() for seg in segments])
    df = len(levels) - len(segments)
    sd = math.sqrt(float(residuals @ residuals) / df) if df > 0 else 0.0
    quantile = stats.t.ppf(1 - alpha / 2, df) if df > 0 else math.inf
    steps = []
    for i, index in enumerate(breaks):
        left, right = segments[i], segments[i + 1]
        diff = float(right.mean() - left.mean())
        p_value, se = t_test(left, right, sd, df)
        up = 1.0 if diff >= 0 else -1.0
        robust_p = max(
            t_test(left, np.delete(right, np.argmax(up * right)), sd, df)[0],
            t_test(np.delete(left, np.argmin(up * left)), right, sd, df)[0],
        )
        half = quantile * se
        steps.append(
            Step(
                index,
                math.exp(diff),
                math.exp(diff - half),
                math.exp(diff + half),
                p_value,
                robust_p,
                len(left),
                len(right),
            )
        )
    return steps


def lasting(step: Step, alpha: float, min_effect: float) -> bool:
    """Significant, also without its most supporting run (at ROBUST_ALPHA), and at least
    `min_effect` either way (more time or less)."""
    big = step.ratio >= 1 + min_effect or step.ratio <= 1 / (1 + min_effect)
    return step.p_value < alpha and step.robust_p < ROBUST_ALPHA and big


def find_steps(
    levels: Sequence[float], alpha: float = ALPHA, min_effect: float = MIN_EFFECT, min_runs: int = MIN_RUNS
) -> list[Step]:
    """The lasting steps in a series of log levels, oldest first (see the module's docstring)."""
    import ruptures

    x = np.asarray(levels, dtype=float)
    if len(x) < 2 * min_runs:
        return []
    # the floor keeps the penalty positive on a series of identical values (no noise at all)
    variance = max(noise_sd(x) ** 2, 1e-12)
    search = ruptures.Pelt(model="l2", min_size=min_runs, jump=1).fit(x)
    breaks = search.predict(pen=PENALTY * variance * math.log(len(x)))[:-1]
    while breaks:
        steps = tested_steps(x, breaks, alpha)
        weakest = max(steps, key=lambda s: (lasting(s, alpha, min_effect) is False, s.p_value))
        if lasting(weakest, alpha, min_effect):
            return steps
        breaks.remove(weakest.index)
    return []


@dataclass(frozen=True)
class Point:
    """One run of one benchmark: its raw, normalized and calibration log levels (None where not saved)."""

    run: Run
    raw: float
    normalized: float | None
    calibration: float | None = None


def points_of(runs: list[Run], fullname: str) -> list[Point]:
    """The runs that measured `fullname`, with its levels: the mean log of the per-process medians
    (bench/verdicts/stats.py), or log of pytest-benchmark's median for a run saved without them."""
    points = []
    for run in runs:
        bench = run.benchmarks().get(fullname)
        if bench is None:
            continue
        extra = bench.get("extra_info") or {}
        if extra.get("process_medians"):
            normalized, calibration = extra.get("normalized_medians"), extra.get("calibration_medians")
            points.append(
                Point(
                    run,
                    run_level(extra["process_medians"]),
                    run_level(normalized) if normalized else None,
                    run_level(calibration) if calibration else None,
                )
            )
        elif (bench.get("stats") or {}).get("median"):
            points.append(Point(run, math.log(bench["stats"]["median"]), None))
    return points


def injected_slowdown(run: Run, fullname: str) -> float:
    """The slowdown a self-test injected into this benchmark's run (0 for a real run)."""
    return (run.benchmarks()[fullname].get("extra_info") or {}).get("injected_slowdown") or 0.0


def what_differs(before: Run, after: Run, fullname: str) -> list[str]:
    """The labels that changed between two runs, and the injected slowdown where a self-test's did."""
    differs = label_changes(before, after)
    a, b = injected_slowdown(before, fullname), injected_slowdown(after, fullname)
    return differs + ([f"injected slowdown {a:.0%} -> {b:.0%}"] if a != b else [])


@dataclass(frozen=True)
class Found:
    """A step with the runs on either side of it, what differed between them, and how many of the
    series' benchmarks stepped at about the same runs (within NEAR): a step in most of them at
    once, with nothing differing, is the machine, not the code."""

    step: Step
    last_before: str  # the runs' names (folder/file), as --json gives them
    first_after: str
    differs: list[str]
    shared: int = 1
    benchmarks: int = 1
    before_label: str = ""  # the same runs as the text names them (number, commit, time)
    after_label: str = ""


@dataclass(frozen=True)
class SeriesChanges:
    series: str
    benchmark: str
    runs: int
    score: str
    noise: float  # the chosen score's run-to-run spread (noise_sd of its log levels)
    why: str = ""  # why that score was read
    found: list[Found] = field(default_factory=list)
    work: str = ""  # what sets these runs' work apart from the benchmark's other runs ('' where all alike)
    described: str = ""  # the series' configuration in words (notation.describe_series)
    exact: list[CountStep] = field(default_factory=list)  # where its exact counts changed, as they are
    counted: int = 0  # how many of its runs saved exact counts (the others are judged on nothing exact)


def series_score(points: list[Point], min_runs: int) -> tuple[str, str, list[float]]:
    """(score, why, its levels): the rule `ab` and `compare` share (bench/verdicts/verdict.py). The
    calibrated (normalized) score is read only where the series' software never changes and the
    calibration's own level has no step (searched as a benchmark's, at CALIBRATION_ALPHA and
    CALIBRATION_TOLERANCE), and then only if it wanders less from run to run than raw."""
    raw = [p.raw for p in points]
    if any(p.normalized is None or p.calibration is None for p in points):
        return RAW, "no calibration saved", raw
    software = [
        change for a, b in itertools.pairwise(points) for change in software_differences(a.run, b.run)
    ]
    if software:
        return RAW, f"the software changed in the series ({', '.join(dict.fromkeys(software))})", raw
    moved = find_steps([p.calibration for p in points], CALIBRATION_ALPHA, CALIBRATION_TOLERANCE, min_runs)
    if moved:
        return RAW, f"the calibration itself stepped {format_step(moved[0])}", raw
    normalized = [p.normalized for p in points]
    if noise_sd(raw) <= noise_sd(normalized):
        return RAW, "raw is the steadier score here", raw
    return CALIBRATED, "the calibration did not move and is the steadier", normalized


# Steps of one machine-wide shift land a run or two apart in different benchmarks (each placed by
# its own noise); within this many runs they count as the same place.
NEAR = 2


def stepped_near(at: dict, where: int) -> int:
    """How many benchmarks have a step within NEAR runs of position `where` in the series."""
    return sum(any(abs(where - p) <= NEAR for p in places) for places in at.values())


def series_changes(
    runs: list[Run],
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
    min_runs: int = MIN_RUNS,
    only: str | None = None,
) -> list[SeriesChanges]:
    """Per series and benchmark (optionally those whose name contains `only`), its lasting steps;
    a benchmark whose runs measured different work (a fast plan that changed) is searched once per
    work (`work`: `max_samples 16`), so that a change of plan is never a step."""
    found = []
    for series_runs in by_series(runs).values():
        names = dict.fromkeys(name for run in series_runs for name in run.benchmarks())
        position = {run.name: i for i, run in enumerate(series_runs)}
        searched = []
        for name in (n for n in names if not only or only in n):
            for work, work_runs in by_work(series_runs, name).items():
                points = points_of(work_runs, name)
                score, why, levels = series_score(points, min_runs)
                steps = find_steps(levels, alpha, min_effect, min_runs)
                searched.append(
                    (name, work, points, (score, why), levels, steps, count_steps(work_runs, name))
                )
        at = {
            (name, work): [position[points[step.index].run.name] for step in steps]
            for name, work, points, _, _, steps, _ in searched
        }
        for name, work, points, (score, why), levels, steps, (exact, counted) in searched:
            pairs = [(step, points[step.index - 1].run, points[step.index].run) for step in steps]
            found.append(
                SeriesChanges(
                    series_runs[0].series_name,
                    name,
                    len(points),
                    score,
                    noise_sd(levels),
                    why,
                    [
                        Found(
                            step,
                            before.name,
                            after.name,
                            what_differs(before, after, name),
                            stepped_near(at, position[after.name]),
                            len(searched),
                            run_name(before),
                            run_name(after),
                        )
                        for step, before, after in pairs
                    ],
                    work,
                    describe_series(series_runs[0].fingerprint) or series_runs[0].series_name,
                    exact,
                    counted,
                )
            )
    return found


def check_settings(alpha: float, min_effect: float, min_runs: int) -> None:
    if not 0 < alpha < 1:
        raise BenchInputError(f"--alpha {alpha}: must be between 0 and 1")
    if min_effect < 0:
        raise BenchInputError(f"--min-effect {min_effect}: must be >= 0")
    if min_runs < 2:  # a step is also tested without one of its runs
        raise BenchInputError(f"--min-runs {min_runs}: must be at least 2")


def changes(
    results: Path,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
    min_runs: int = MIN_RUNS,
    only: str | None = None,
    warn: Callable[[str], None] = print,
) -> list[SeriesChanges]:
    check_settings(alpha, min_effect, min_runs)
    runs = load_runs(results, warn)
    if only and not any(only in name for run in runs for name in run.benchmarks()):
        saved = sorted({short_name(name) for run in runs for name in run.benchmarks()})
        raise BenchInputError(
            f"--benchmark {only}: no saved benchmark's name contains it ({plural(len(saved), 'name')} "
            f"saved, e.g. {', '.join(saved[:3])})"
        )
    return series_changes(runs, alpha, min_effect, min_runs, only)


def format_step(step: Step) -> str:
    """A step in the one notation of a change (bench/verdicts/verdict.py): + is slower."""
    return f"{percent(step.ratio)} [{percent(step.low)}, {percent(step.high)}]"


def as_json(found: list[SeriesChanges]) -> str:
    return json.dumps([asdict(s) for s in found], indent=2)

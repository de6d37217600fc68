"""How soon `bench changes` finds a lasting step, and how often noise alone makes one.

Measured on saved runs, not on a model of the noise: each benchmark's series of same-code runs (no
injected slowdown) keeps its own run-to-run noise, drift and outliers. False change points are the
steps found in those series, counted the way the command is used: run after every new run, so each
prefix of the series is searched and a step counts once wherever it first appears. Detection: the
runs from k on are made slower by a level (their per-process medians multiplied by 1 + level, as
the injected slowdown stretches the timed rounds and not the calibration beside them), and the delay
is how many runs after the step the first prefix holds a step within one run of k. Every k from
`history` runs in to `window` runs before the end is tried. Series whose runs carry a real injected
slowdown from some run on are judged as saved, as a check on the semi-synthetic ones.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace

from bench.base.history import Run, by_series
from bench.verdicts.changes import (
    MIN_RUNS,
    Point,
    find_steps,
    injected_slowdown,
    noise_sd,
    points_of,
    series_score,
)

LEVELS = (0.05, 0.10, 0.25)
HISTORY, WINDOW = 10, 10  # same-code runs before a step; runs after it within which it must be found


@dataclass(frozen=True)
class Series:
    benchmark: str
    clean: list[Point]  # the same-code runs, oldest first
    tail: list[Point]  # runs with a real injected slowdown after them (empty if none)
    tail_level: float


def series_of(runs: list[Run], min_runs: int) -> list[Series]:
    """Every benchmark series with `min_runs` or more same-code runs, split at its first injected run."""
    found = []
    for series_runs in by_series(runs).values():
        names = dict.fromkeys(name for run in series_runs for name in run.benchmarks())
        for name in names:
            points = points_of(series_runs, name)
            levels = [injected_slowdown(p.run, name) for p in points]
            first = next((i for i, level in enumerate(levels) if level), len(points))
            if first >= min_runs:
                found.append(
                    Series(name, points[:first], points[first:], levels[first] if first < len(points) else 0)
                )
    return found


def slower(point: Point, level: float) -> Point:
    shift = math.log1p(level)
    return replace(
        point,
        raw=point.raw + shift,
        normalized=None if point.normalized is None else point.normalized + shift,
    )


def steps_in(points: list[Point], alpha: float, min_effect: float, min_runs: int) -> list[int]:
    """The first runs after each step the detector finds, on the score `changes` reads."""
    _, _, levels = series_score(points, min_runs)
    return [step.index for step in find_steps(levels, alpha, min_effect, min_runs)]


def false_steps(points: list[Point], alpha: float, min_effect: float, min_runs: int) -> int:
    """Distinct steps found over every prefix of a same-code series (each counted where it first
    appears; a step found again one run later is the same step)."""
    seen: set[int] = set()
    for end in range(2 * min_runs, len(points) + 1):
        for index in steps_in(points[:end], alpha, min_effect, min_runs):
            if not seen & {index - 1, index, index + 1}:
                seen.add(index)
    return len(seen)


def delay(
    points: list[Point], k: int, window: int, alpha: float, min_effect: float, min_runs: int
) -> int | None:
    """Runs after the step at k until a prefix holds a step within one run of k (None: not in `window`)."""
    for after in range(1, window + 1):
        if any(abs(i - k) <= 1 for i in steps_in(points[: k + after], alpha, min_effect, min_runs)):
            return after
    return None


def measure(
    runs: list[Run],
    levels: tuple[float, ...] = LEVELS,
    history: int = HISTORY,
    window: int = WINDOW,
    alpha: float = 0.001,
    min_effect: float = 0.02,
    min_runs: int = MIN_RUNS,
    progress: Callable[[str], None] = lambda name: None,
) -> dict:
    """Per benchmark and overall: false steps per 30 and per 100 same-code runs; per level, the
    share of step positions found within 5 and within 10 runs, and the median delay."""
    benchmarks = []
    for series in series_of(runs, history + window):
        progress(series.benchmark)
        clean = series.clean
        score, _, run_levels = series_score(clean, min_runs)
        delays = {}
        for level in levels:
            delays[level] = [
                delay(
                    clean[:k] + [slower(p, level) for p in clean[k:]], k, window, alpha, min_effect, min_runs
                )
                for k in range(history, len(clean) - window + 1)
            ]
        real = None
        if series.tail:
            k = len(clean)
            real = {
                "level": series.tail_level,
                "runs_after": len(series.tail),
                "delay": delay(clean + series.tail, k, len(series.tail), alpha, min_effect, min_runs),
                "observed": observed_step(clean + series.tail, k, len(series.tail)),
            }
        benchmarks.append(
            {
                "benchmark": series.benchmark,
                "runs": len(clean),
                "score": score,
                "noise": noise_sd(run_levels),
                "false_steps": false_steps(clean, alpha, min_effect, min_runs),
                "delays": {str(level): d for level, d in delays.items()},
                "real_injected": real,
            }
        )
    return {
        "settings": {
            "alpha": alpha,
            "min_effect": min_effect,
            "min_runs": min_runs,
            "history": history,
            "window": window,
        },
        "benchmarks": benchmarks,
        "overall": overall(benchmarks, levels),
    }


def observed_step(points: list[Point], k: int, runs: int) -> float:
    """The level of the `runs` runs from k over that of as many runs before k (a ratio), on the
    score `changes` reads: how large an injected step came out on the machine."""
    _, _, levels = series_score(points, MIN_RUNS)
    return math.exp(statistics.fmean(levels[k : k + runs]) - statistics.fmean(levels[max(0, k - runs) : k]))


def found_within(delays: list[int | None], runs: int) -> float:
    return sum(d is not None and d <= runs for d in delays) / len(delays) if delays else math.nan


def quantile_delay(delays: list[int | None], q: float) -> int | None:
    """The delay that a share `q` of the step positions were found within (None: not within the
    window that often)."""
    ordered = sorted(math.inf if d is None else d for d in delays)
    if not ordered:
        return None
    value = ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]
    return None if value == math.inf else int(value)


def overall(benchmarks: list[dict], levels: tuple[float, ...]) -> dict:
    runs = sum(b["runs"] for b in benchmarks)
    false = sum(b["false_steps"] for b in benchmarks)
    table = {"runs": runs, "false_steps": false, "per_30_runs": 30 * false / runs if runs else math.nan}
    for level in levels:
        delays = [d for b in benchmarks for d in b["delays"][str(level)]]
        found = [d for d in delays if d is not None]
        table[str(level)] = {
            "trials": len(delays),
            "within_5": found_within(delays, 5),
            "within_10": found_within(delays, 10),
            "median_delay": statistics.median(found) if found else None,
            "p90_delay": quantile_delay(delays, 0.9),
        }
    return table


def format_power(result: dict, levels: tuple[float, ...] = LEVELS) -> str:
    """Per benchmark one line (runs, score, false steps, found within 5 / 10 runs per level), then
    the totals."""
    lines = []
    for b in result["benchmarks"]:
        delays = {level: b["delays"][str(level)] for level in levels}
        cells = [
            f"{level:.0%}: {found_within(d, 5):.0%}/{found_within(d, 10):.0%}" for level, d in delays.items()
        ]
        real = b["real_injected"]
        check = ""
        if real:
            when = (
                f"found {real['delay']} runs after"
                if real["delay"]
                else f"not found in {real['runs_after']} runs"
            )
            check = (
                f"; real +{real['level']:.0%} from run {b['runs'] + 1} (measured "
                f"{real['observed'] - 1:+.1%} against the runs before): {when}"
            )
        lines.append(
            f"{b['benchmark'].split('::')[-1]}: {b['runs']} runs, {b['score']} (run-to-run "
            f"{b['noise']:.1%}), {b['false_steps']} false; "
            f"found within 5/10 runs: {', '.join(cells)}{check}"
        )
    total = result["overall"]
    lines += [
        "",
        f"false change points: {total['false_steps']} in {total['runs']} same-code runs "
        f"({total['per_30_runs']:.2f} per 30 runs, {total['per_30_runs'] * 100 / 30:.2f} per 100)",
    ]
    for level in levels:
        row = total[str(level)]
        lines.append(
            f"step {level:.0%}: found within 5 runs in {row['within_5']:.0%}, "
            f"within 10 in {row['within_10']:.0%} of {row['trials']} step positions; "
            f"median delay {row['median_delay']} runs, 90% found within {row['p90_delay'] or '> window'}"
        )
    return "\n".join(lines)

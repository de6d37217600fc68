"""`python -m bench power --scores PAIR...`: the candidate scores and tests, measured on saved A/B pairs.

Every saved pair keeps each process's rounds and calibration rounds, so the ways of turning them
into a verdict can be compared on the same data: how wide their intervals are (the power they
give) and, on same-code pairs, how far their estimates stray in units of their own standard error
(a calibrated test keeps that spread near 1; wider means false alarms above alpha). The verdict
rule (bench/verdicts/verdict.py) adopts what measured best here; docs/verdicts.md has the table.
No torch import.
"""

from __future__ import annotations

import collections
import math
import statistics
from collections.abc import Callable
from pathlib import Path

from scipy import stats as scipy_stats

from bench.base.errors import BenchInputError
from bench.verdicts.notation import short_name
from bench.verdicts.pairs import judge_saved, load_pair
from bench.verdicts.stats import Change, Values, controlled_change, log_ratio_change
from bench.verdicts.verdict import REGRESSION


def paired_change(baseline: Values, candidate: Values, confidence: float) -> Change | None:
    """Process pairs as the unit: the t-test on each pair's log ratio of raw medians (the pair's
    rounds were interleaved, so whatever the pair's time window shared cancels within it)."""
    if len(baseline.process) != len(candidate.process) or len(baseline.process) < 2:
        return None
    diffs = [math.log(c) - math.log(b) for b, c in zip(baseline.process, candidate.process, strict=True)]
    mean, n = statistics.fmean(diffs), len(diffs)
    se = statistics.stdev(diffs) / math.sqrt(n)
    if se == 0.0:
        return Change(math.exp(mean), math.exp(mean), math.exp(mean), float(mean == 0.0), n, n)
    half = scipy_stats.t.ppf(0.5 + confidence / 2, n - 1) * se
    p_value = float(2 * scipy_stats.t.sf(abs(mean) / se, n - 1))
    return Change(math.exp(mean), math.exp(mean - half), math.exp(mean + half), p_value, n, n, se, n - 1)


SCORES: dict[str, Callable[[Values, Values, float], Change | None]] = {
    "raw (Welch)": lambda b, c, conf: log_ratio_change(b.process, c.process, conf),
    "normalized (Welch)": lambda b, c, conf: log_ratio_change(b.normalized, c.normalized, conf),
    "controlled (Welch)": lambda b, c, conf: controlled_change(b, c, conf)[0],
    "raw (paired)": paired_change,
}


def pair_values(folder: Path) -> dict[str, tuple[Values, Values, float]]:
    """By benchmark: (baseline, candidate, the candidate's injected slowdown) of one saved pair."""
    pair = load_pair(folder)
    base = {b["fullname"]: b for b in pair["baseline"]["benchmarks"] if "fullname" in b}
    out = {}
    for entry in pair["candidate"]["benchmarks"]:
        name = entry.get("fullname")
        if name in base:
            extra = entry.get("extra_info", {})
            out[name] = (
                Values.from_extra_info(base[name].get("extra_info", {})),
                Values.from_extra_info(extra),
                float(extra.get("injected_slowdown") or 0.0),
            )
    return out


def measure(folders: list[Path], confidence: float = 0.99) -> dict:
    """Per benchmark and score: the median half-width of the log interval, and over same-code pairs
    the log ratios over their standard errors."""
    if not folders:
        raise BenchInputError("power --scores: name at least one saved A/B pair folder")
    table: dict[str, dict[str, dict[str, list[float]]]] = {}
    for folder in folders:
        for name, (base, cand, injected) in pair_values(folder).items():
            for score, test in SCORES.items():
                change = test(base, cand, confidence)
                if change is None:
                    continue
                cell = table.setdefault(name, {}).setdefault(score, {"half": [], "z": [], "ratio": []})
                cell["half"].append((math.log(change.high) - math.log(change.low)) / 2)
                cell["ratio"].append(change.ratio)
                if injected == 0.0 and change.se > 0:
                    cell["z"].append(math.log(change.ratio) / change.se)
    return table


def computed_power(
    se: float, df: float, slowdown: float, rows: int, alpha: float, min_effect: float
) -> float:
    """The chance that a true `slowdown` is judged a regression by the verdict rule, from a row's
    standard error: its estimate must pass both Holm's first, strictest threshold (alpha / rows,
    one-sided; a conservative bound, later rows get a looser one) and the minimum effect."""
    threshold = max(float(scipy_stats.t.isf(alpha / rows, df)) * se, math.log1p(min_effect))
    return float(scipy_stats.t.sf((threshold - math.log1p(slowdown)) / se, df))


def power_table(folders: list[Path], levels: tuple[float, ...], alpha: float, min_effect: float) -> str:
    """Per benchmark, the verdict rule's power at each slowdown, computed from the decided score's
    standard error in each same-code session (the median over sessions), as `ab` would judge it."""
    powers: dict[str, list[list[float]]] = {}
    decided: dict[str, list[str]] = {}
    for folder in folders:
        rows = judge_saved(load_pair(folder), alpha, min_effect)
        for row in rows:
            change = row.decided
            if change is None or change.se == 0:
                continue
            powers.setdefault(row.benchmark, []).append(
                [
                    computed_power(change.se, change.df, level, len(rows), alpha, min_effect)
                    for level in levels
                ]
            )
            decided.setdefault(row.benchmark, []).append(row.decided_by)
    header = ["benchmark".ljust(54), "decided by".ljust(16), *(f"{level:.0%}".rjust(6) for level in levels)]
    lines = [
        f"power of `ab`'s verdict (Holm over the session's rows, alpha {alpha:g}, minimum effect "
        f"{min_effect:.0%}), computed from each row's standard error; median over {len(folders)} sessions",
        "",
        "  ".join(header),
    ]
    for name, values in powers.items():
        median = [statistics.median(v[i] for v in values) for i in range(len(levels))]
        scores = ", ".join(f"{n} {s}" for s, n in collections.Counter(decided[name]).items())
        lines.append(
            "  ".join([short_name(name).ljust(54), scores.ljust(16), *(f"{100 * p:5.0f}%" for p in median)])
        )
    return "\n".join(lines)


def null_summary(folders: list[Path], alpha: float, min_effect: float) -> str:
    """Over the same-code pairs (nothing injected): the decided rows' two-sided p-values against the
    uniform distribution a calibrated test gives them, each session's smallest Holm-adjusted p,
    and how many sessions would have failed `--fail-on-regression`."""

    p_values, smallest, failed, sessions = [], [], 0, 0
    for folder in folders:
        if any(injected for _, _, injected in pair_values(folder).values()):
            continue
        rows = judge_saved(load_pair(folder), alpha, min_effect)
        sessions += 1
        p_values += [row.decided.p_value for row in rows if row.decided]
        smallest.append(min((row.p_adjusted for row in rows if row.p_adjusted is not None), default=1.0))
        failed += any(row.verdict == REGRESSION for row in rows)
    if not p_values:
        return "no same-code pairs among those given"
    uniform = scipy_stats.kstest(p_values, "uniform")
    return (
        "(every pair given without an injected slowdown counts as same code)\n"
        f"same-code sessions: {sessions}, {failed} would fail --fail-on-regression; smallest Holm p per "
        f"session: {', '.join(f'{p:.2g}' for p in smallest)}; {len(p_values)} decided rows' p-values "
        f"against uniform: Kolmogorov-Smirnov D = {uniform.statistic:.3f}, p = {uniform.pvalue:.2g}"
    )


def format_scores(table: dict, pairs: int, confidence: float = 0.99) -> str:
    """A table: per benchmark, each score's median interval half-width; and per score, over every
    same-code row, the spread of log ratio / SE (calibrated near 1)."""
    scores = list(SCORES)
    lines = [
        f"{pairs} saved pairs; median half-width of the {100 * confidence:g}% interval, in % of time",
        "",
        "  ".join(["benchmark".ljust(54), *(s.ljust(19) for s in scores)]),
    ]
    for name, cells in table.items():
        widths = [
            f"+-{100 * math.expm1(statistics.median(cells[s]['half'])):.2f}%" if s in cells else "-"
            for s in scores
        ]
        lines.append("  ".join([short_name(name).ljust(54), *(w.ljust(19) for w in widths)]))
    lines += ["", "same-code rows: spread (SD) of log ratio / SE, and how many rows"]
    for score in scores:
        z = [v for cells in table.values() for v in cells.get(score, {}).get("z", [])]
        spread = f"{statistics.stdev(z):.2f}" if len(z) > 1 else "-"
        lines.append(f"  {score.ljust(19)} {spread} ({len(z)} rows)")
    return "\n".join(lines)

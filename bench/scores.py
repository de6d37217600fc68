"""`python -m bench power --scores PAIR...`: the candidate scores and tests, measured on saved A/B pairs.

Every saved pair keeps each process's rounds and calibration rounds, so the ways of turning them
into a verdict can be compared on the same data: how wide their intervals are (the power they
give) and, on same-code pairs, how far their estimates stray in units of their own standard error
(a calibrated test keeps that spread near 1; wider means false alarms above alpha). The verdict
rule (bench/verdict.py) adopts what measured best here; docs/verdicts.md has the table.
No torch import.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from pathlib import Path

from scipy import stats as scipy_stats

from bench.errors import BenchInputError
from bench.stats import Change, Values, controlled_change, log_ratio_change


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
    from bench.pairs import load_pair

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


def format_scores(table: dict, pairs: int, confidence: float = 0.99) -> str:
    """A table: per benchmark, each score's median interval half-width; and per score, over every
    same-code row, the spread of log ratio / SE (calibrated near 1)."""
    scores = list(SCORES)
    lines = [
        f"{pairs} saved pairs; median half-width of the {100 * confidence:g}% interval, in % of time",
        "",
        "  ".join(["benchmark".ljust(34), *(s.ljust(19) for s in scores)]),
    ]
    for name, cells in table.items():
        widths = [
            f"+-{100 * math.expm1(statistics.median(cells[s]['half'])):.2f}%" if s in cells else "-"
            for s in scores
        ]
        lines.append("  ".join([name.split("::")[-1][-34:].ljust(34), *(w.ljust(19) for w in widths)]))
    lines += ["", "same-code rows: spread (SD) of log ratio / SE, and how many rows"]
    for score in scores:
        z = [v for cells in table.values() for v in cells.get(score, {}).get("z", [])]
        spread = f"{statistics.stdev(z):.2f}" if len(z) > 1 else "-"
        lines.append(f"  {score.ljust(19)} {spread} ({len(z)} rows)")
    return "\n".join(lines)

"""`python -m bench power --scores SAVED...`: the candidate scores and tests, measured on saved A/B data.

Every saved A/B pair (`results/ab/NNNN_*`) and every trial of a `power --ab --save` file keeps each
process's rounds and calibration rounds, so the ways of turning them into a verdict can be compared
on the same data: how wide their intervals are (the power they give), how often each finds the
slowdowns injected into a trial's candidate, and, on same-code rows, how far their estimates stray
in units of their own standard error (a calibrated test keeps that spread near 1; wider means false
alarms above alpha). The verdict rule (bench/verdicts/verdict.py) adopts what measured best here;
docs/verdicts.md has the tables. No torch import.
"""

from __future__ import annotations

import collections
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scipy import stats as scipy_stats

from bench.base.errors import BenchInputError
from bench.verdicts.notation import short_name, wrap
from bench.verdicts.pairs import find_pair, judge_pair, load_pair, pair_stack_differences, paired_extra_info
from bench.verdicts.stats import Change, Values, controlled_change, log_ratio_change
from bench.verdicts.verdict import REGRESSION, Row, family, finish


def t_change(diffs: list[float], confidence: float) -> Change | None:
    """The one-sample t-test on per-pair log ratios: process pairs are the unit (n - 1 degrees of
    freedom, where Welch on the two sides' values has up to 2n - 2)."""
    n = len(diffs)
    if n < 2:
        return None
    mean, se = statistics.fmean(diffs), statistics.stdev(diffs) / math.sqrt(n)
    if se == 0.0:
        return Change(math.exp(mean), math.exp(mean), math.exp(mean), float(mean == 0.0), n, n)
    half = scipy_stats.t.ppf(0.5 + confidence / 2, n - 1) * se
    p_value = float(2 * scipy_stats.t.sf(abs(mean) / se, n - 1))
    return Change(math.exp(mean), math.exp(mean - half), math.exp(mean + half), p_value, n, n, se, n - 1)


def paired_change(baseline: Values, candidate: Values, confidence: float) -> Change | None:
    """Each process pair's log ratio of raw medians (the pair's rounds were interleaved, so whatever
    the pair's time window shared cancels within it)."""
    if len(baseline.process) != len(candidate.process):
        return None
    return t_change(
        [math.log(c / b) for b, c in zip(baseline.process, candidate.process, strict=True)], confidence
    )


def round_pair_change(baseline: Values, candidate: Values, confidence: float) -> Change | None:
    """Each process pair's median log ratio of its rounds taken side by side (round k of the
    candidate against round k of its baseline partner, run one right after the other), so that a
    slow moment of the machine falls on both rounds of a pair."""
    if not baseline.rounds or len(baseline.rounds) != len(candidate.rounds):
        return None
    pairs = zip(baseline.rounds, candidate.rounds, strict=True)
    return t_change(
        [statistics.median(math.log(c / b) for b, c in zip(rb, rc, strict=True)) for rb, rc in pairs],
        confidence,
    )


SCORES: dict[str, Callable[[Values, Values, float], Change | None]] = {
    "raw": lambda b, c, conf: log_ratio_change(b.process, c.process, conf),
    "normalized": lambda b, c, conf: log_ratio_change(b.normalized, c.normalized, conf),
    "controlled": lambda b, c, conf: controlled_change(b, c, conf)[0],
    "paired": paired_change,
    "round pairs": round_pair_change,
}
SCORE_LEGEND = (
    "raw: Welch on per-process median rounds; normalized: Welch on per-process medians of round / "
    "calibration round; controlled: Welch on the control variate ab decides on; paired: t on each "
    "process pair's log ratio of raw medians; round pairs: t on each process pair's median log "
    "ratio of rounds taken side by side"
)


@dataclass(frozen=True)
class Session:
    """One A/B session's rows, each (baseline, candidate, the candidate's injected slowdown), and
    what differs between the sides' software (where anything does, raw time decides)."""

    rows: dict[str, tuple[Values, Values, float]]
    differs: list[str]

    def judged(self, alpha: float, min_effect: float) -> list[Row]:
        """Every row judged as `ab` judges it (Holm over the session's rows)."""
        rows = [
            judge_pair(name, base, cand, 1.0 - alpha, self.differs)
            for name, (base, cand, _) in self.rows.items()
        ]
        return finish(rows, alpha, min_effect)

    @property
    def same_code(self) -> bool:
        return not any(injected for _, _, injected in self.rows.values())


def pair_session(folder: Path) -> Session:
    """A saved pair: one session, a row per benchmark that both sides ran."""
    pair = load_pair(folder)
    rows = {
        name: (
            Values.from_extra_info(base),
            Values.from_extra_info(cand),
            float(cand.get("injected_slowdown") or 0.0),
        )
        for name, base, cand in paired_extra_info(pair)
    }
    return Session(rows, pair_stack_differences(pair))


def trial_sessions(path: Path) -> list[Session]:
    """A `power --ab --save` file: a session of one row (its job) per trial, the same checkout on
    both sides."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        job = saved["job"]
        return [
            Session({job: (Values(**t["baseline"]), Values(**t["candidate"]), float(t["level"]))}, [])
            for t in saved["trials"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BenchInputError(f"{path}: not a `power --ab` result ({err!r})") from None


def load_sessions(paths: list[Path]) -> list[Session]:
    """The sessions of saved pair folders and `power --ab --save` files, in the order given."""
    if not paths:
        raise BenchInputError("power --scores: name at least one saved A/B pair folder or power --ab file")
    out = []
    for path in paths:
        folder = find_pair(path)
        if folder is not None:
            out.append(pair_session(folder))
        elif path.is_file():
            out += trial_sessions(path)
        else:
            raise BenchInputError(f"{path}: not a saved A/B pair folder or `power --ab` result")
    return out


def measure(sessions: list[Session], confidence: float = 0.99, min_effect: float = 0.02) -> dict:
    """Per benchmark and score: the log interval's half-widths, the ratios, the log ratios over
    their standard errors on same-code rows, and per injected level how many rows the verdict rule
    judged a regression on that score (Holm over the session's rows, as `ab` judges)."""
    table: dict[str, dict[str, dict]] = {}
    alpha = 1.0 - confidence
    for session in sessions:
        for score, test in SCORES.items():
            changes = [test(base, cand, confidence) for base, cand, _ in session.rows.values()]
            judged = family(changes, alpha, min_effect)
            for (name, row), change, j in zip(session.rows.items(), changes, judged, strict=True):
                injected = row[2]
                if change is None:
                    continue
                cell = table.setdefault(name, {}).setdefault(
                    score, {"half": [], "z": [], "ratio": [], "found": collections.defaultdict(list)}
                )
                cell["half"].append((math.log(change.high) - math.log(change.low)) / 2)
                cell["ratio"].append(change.ratio)
                cell["found"][injected].append(j.verdict == REGRESSION)
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


def power_table(sessions: list[Session], levels: tuple[float, ...], alpha: float, min_effect: float) -> str:
    """Per benchmark, the verdict rule's power at each slowdown, computed from the decided score's
    standard error in each same-code session (the median over sessions), as `ab` would judge it."""
    powers: dict[str, list[list[float]]] = {}
    decided: dict[str, list[str]] = {}
    null = [session for session in sessions if session.same_code]
    for session in null:
        rows = session.judged(alpha, min_effect)
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
    lines = [
        *wrap(
            f"power of `ab`'s verdict (Holm over the session's rows, alpha {alpha:g}, minimum effect "
            f"{min_effect:.0%}), computed from each row's standard error; median over {len(null)} "
            "same-code sessions",
            "",
        ),
        "",
        "  ".join(["benchmark / decided by".ljust(30), *(f"{level:.0%}".rjust(6) for level in levels)]),
    ]
    for name, values in powers.items():
        median = [statistics.median(v[i] for v in values) for i in range(len(levels))]
        scores = ", ".join(f"{n} {s}" for s, n in collections.Counter(decided[name]).items())
        lines += [
            short_name(name),
            "  ".join([f"  {scores}".ljust(30), *(f"{100 * p:5.0f}%" for p in median)]),
        ]
    return "\n".join(lines)


def null_summary(sessions: list[Session], alpha: float, min_effect: float) -> str:
    """Over the same-code sessions (nothing injected): the decided rows' two-sided p-values against
    the uniform distribution a calibrated test gives them, the smallest Holm-adjusted p of each
    session, and how many sessions would have failed `--fail-on-regression`."""
    p_values, smallest, failed = [], [], 0
    null = [session for session in sessions if session.same_code]
    for session in null:
        rows = session.judged(alpha, min_effect)
        p_values += [row.decided.p_value for row in rows if row.decided]
        smallest.append(min((row.p_adjusted for row in rows if row.p_adjusted is not None), default=1.0))
        failed += any(row.verdict == REGRESSION for row in rows)
    if not p_values:
        return "no same-code sessions among those given"
    uniform = scipy_stats.kstest(p_values, "uniform")
    text = (
        f"same-code sessions: {len(null)}, {failed} would fail --fail-on-regression; smallest Holm p per "
        f"session: {', '.join(f'{p:.2g}' for p in smallest)}; {len(p_values)} decided rows' p-values "
        f"against uniform: Kolmogorov-Smirnov D = {uniform.statistic:.3f}, p = {uniform.pvalue:.2g}"
    )
    return "\n".join(["(every session without an injected slowdown counts as same code)", *wrap(text, "")])


def format_scores(table: dict, sessions: int, confidence: float = 0.99) -> str:
    """Per benchmark, each score's median interval half-width and, where slowdowns were injected,
    how many rows each score alone judged a regression at each level; per score, over every
    same-code row, the spread of log ratio / SE (calibrated near 1)."""
    scores = list(SCORES)
    head = "  ".join(f"{name:>12}" for name in scores)
    lines = [
        *wrap(
            f"{sessions} saved sessions; per benchmark the median half-width of each score's "
            f"{100 * confidence:g}% interval, in % of time, then where slowdowns were injected how "
            "many rows each score alone judged a regression at each level",
            "",
        ),
        *wrap(SCORE_LEGEND, ""),
        "",
        f"{'benchmark':<14}{head}",
    ]
    for name, cells in table.items():
        widths = [
            f"+-{100 * math.expm1(statistics.median(cells[s]['half'])):.2f}%" if s in cells else "-"
            for s in scores
        ]
        lines += [short_name(name), f"{'  half-width':<14}" + "  ".join(f"{w:>12}" for w in widths)]
        levels = sorted({level for cell in cells.values() for level in cell["found"]})
        if not any(levels):
            continue
        for level in levels:
            found = [
                f"{sum(cells[s]['found'][level])}/{len(cells[s]['found'][level])}" if s in cells else "-"
                for s in scores
            ]
            label = "  none" if level == 0 else f"  {100 * level:g}% slower"
            lines.append(f"{label:<14}" + "  ".join(f"{f:>12}" for f in found))
    lines += ["", "same-code rows: spread (SD) of log ratio / SE, and how many rows"]
    for score in scores:
        z = [v for cells in table.values() for v in cells.get(score, {}).get("z", [])]
        spread = f"{statistics.stdev(z):.2f}" if len(z) > 1 else "-"
        lines.append(f"  {score.ljust(12)} {spread} ({len(z)} rows)")
    return "\n".join(lines)

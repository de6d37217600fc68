"""Where the time went: a row's change split over the aten operators of its profiled rounds.

`ab --explain` profiles one more round in the worker processes of each side after their timed
rounds (bench/measure/profile.py; saved in each side's extra_info as `profile`). Per operator,
each process gives its self time in that round (on CUDA its kernels' device time, else its self
CPU time) and its calls. Here, with processes as the independent unit, as the verdict has them:

- the change per operator: the candidate's mean self time a round minus the baseline's (ms), its
  interval over processes (Welch, at 1 - alpha), its change relative to the baseline's time, and
  its share of the row's whole profiled change (the sum over every operator);
- which changes are significant: Welch's two-sided p of each operator, Holm-adjusted over the
  row's operators, below alpha (so that, on the same code, a row calls an operator significant
  with probability at most alpha);
- the few operators that account for most of it: the significant ones first, then by the size
  of their change;
- every operator added (no call in any baseline process) or gone (none in any candidate one), and
  every operator whose calls a round changed (exact: the processes' most common count a side).

The profiler's self time is of a profiled round, slower than a timed one (its own overhead per
call), so the millisecond figures say where, not exactly how much; the verdict's interval says how
much. No torch here.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from scipy import special

from bench.verdicts.verdict import Row, holm

IMPROVEMENT, REGRESSION = "improvement", "regression"
TOP = 3  # operators named under a row in the tables (the JSON keeps TOP_JSON)
TOP_JSON = 5
AUTO, ALL, NONE = "auto", "all", "none"  # ab --explain (bench/measure/ab.py EXPLAIN)


@dataclass(frozen=True)
class OpChange:
    """One operator's self time a round on each side (ms, the processes' mean), the change with its
    interval, relative to the baseline's time (None where it had none) and as a share of the row's
    whole change (None where that is zero), Welch's p, Holm's p over the row, and its calls a round."""

    op: str
    baseline_ms: float
    candidate_ms: float
    change_ms: float
    low_ms: float
    high_ms: float
    relative: float | None
    share: float | None
    p_value: float
    p_adjusted: float
    significant: bool
    calls: tuple[int, int]


@dataclass(frozen=True)
class Attribution:
    """A row's profiled change: which time was compared (`timing`: "device" or "cpu"), the
    processes profiled a side, both sides' whole profiled round (ms), every operator ranked
    (`ops`), and the operators added or gone and those whose calls changed (op, baseline, candidate)."""

    timing: str
    processes: tuple[int, int]
    baseline_ms: float
    candidate_ms: float
    ops: list[OpChange]
    added: list[tuple[str, int, int]]
    gone: list[tuple[str, int, int]]
    calls_changed: list[tuple[str, int, int]]

    @property
    def change_ms(self) -> float:
        return self.candidate_ms - self.baseline_ms

    def top(self, n: int = TOP) -> list[OpChange]:
        return self.ops[:n]

    def as_json(self) -> dict:
        return {
            "timing": self.timing,
            "processes": list(self.processes),
            "baseline_ms": self.baseline_ms,
            "candidate_ms": self.candidate_ms,
            "change_ms": self.change_ms,
            "top": [{**asdict(op), "calls": list(op.calls)} for op in self.top(TOP_JSON)],
            "significant": [op.op for op in self.ops if op.significant],
            "added": [list(entry) for entry in self.added],
            "gone": [list(entry) for entry in self.gone],
            "calls_changed": [list(entry) for entry in self.calls_changed],
        }


def welch(
    baseline: Sequence[float], candidate: Sequence[float], confidence: float
) -> tuple[float, float, float, float]:
    """(difference of means, its interval's low and high, two-sided p) by Welch's t-test. Both
    sides without spread: the difference is exact (p 0, or 1 where it is zero)."""
    diff = statistics.fmean(candidate) - statistics.fmean(baseline)
    vb = statistics.variance(baseline) / len(baseline)
    vc = statistics.variance(candidate) / len(candidate)
    se = math.sqrt(vb + vc)
    if se == 0.0:
        return diff, diff, diff, 1.0 if diff == 0.0 else 0.0
    df = (vb + vc) ** 2 / (vb**2 / (len(baseline) - 1) + vc**2 / (len(candidate) - 1))
    half = float(special.stdtrit(df, 0.5 + confidence / 2)) * se
    return diff, diff - half, diff + half, float(2 * special.stdtr(df, -abs(diff) / se))


def usual(values: Sequence[int]) -> int:
    """The processes' most common count (the smallest of the most common, where several tie)."""
    ranked = Counter(values).most_common()
    return min(value for value, n in ranked if n == ranked[0][1])


def per_op(profile: dict, key: str) -> dict[str, list[float]]:
    """A side's saved profile (sampling.py `profile_summary`) as {op: [value per process]}."""
    table = profile[key]
    return {op: [row[i] for row in table] for i, op in enumerate(profile["ops"])}


def attribute(baseline: dict | None, candidate: dict | None, alpha: float) -> Attribution | str:
    """The attribution of one row from each side's saved profile; where there is none, a short
    reason (a side not profiled, or fewer than two processes a side)."""
    if not baseline or not candidate:
        return "not profiled (ab --explain all profiles every row)"
    n = (len(baseline["calls"]), len(candidate["calls"]))
    if min(n) < 2:
        return f"profiled in {n[0]} and {n[1]} processes: too few for an interval (2 a side)"
    timing = "device" if "device_us" in baseline and "device_us" in candidate else "cpu"
    key = "device_us" if timing == "device" else "self_us"
    times = [per_op(side, key) for side in (baseline, candidate)]
    calls = [per_op(side, "calls") for side in (baseline, candidate)]
    zeros = [[0.0] * n[0], [0.0] * n[1]]
    measured = []
    for op in sorted(times[0].keys() | times[1].keys()):
        b, c = ([us / 1000 for us in times[i].get(op, zeros[i])] for i in (0, 1))
        diff, low, high, p = welch(b, c, 1 - alpha)
        base = statistics.fmean(b)
        op_calls = tuple(usual([int(v) for v in calls[i].get(op, zeros[i])]) for i in (0, 1))
        relative = diff / base if base else None
        measured.append(
            OpChange(op, base, statistics.fmean(c), diff, low, high, relative, None, p, p, False, op_calls)
        )
    total = sum(o.change_ms for o in measured)
    adjusted = holm([o.p_value for o in measured])
    ranked = [
        dataclasses.replace(
            o, share=o.change_ms / total if total else None, p_adjusted=q, significant=q < alpha
        )
        for o, q in zip(measured, adjusted, strict=True)
    ]
    ranked.sort(key=lambda o: (not o.significant, -abs(o.change_ms), o.op))
    by_calls = [(o.op, *o.calls) for o in ranked if o.calls[0] != o.calls[1]]
    return Attribution(
        timing,
        n,
        sum(o.baseline_ms for o in ranked),
        sum(o.candidate_ms for o in ranked),
        ranked,
        sorted(entry for entry in by_calls if entry[1] == 0),
        sorted(entry for entry in by_calls if entry[2] == 0),
        sorted(by_calls),
    )


def shown(row: Row, mode: str) -> bool:
    """Whether `ab --explain MODE` shows a row's attribution: auto, the rows judged a change; all,
    every row; none, no row."""
    return mode == ALL or (mode == AUTO and row.verdict in (REGRESSION, IMPROVEMENT))


def attributions(
    profiles: dict[str, tuple[dict | None, dict | None]], rows: Sequence[Row], alpha: float, mode: str
) -> dict[str, Attribution | str]:
    """The attribution (or why there is none) of every row `mode` shows, by benchmark, from each
    benchmark's (baseline, candidate) saved profile."""
    return {
        row.benchmark: attribute(*profiles.get(row.benchmark, (None, None)), alpha)
        for row in rows
        if shown(row, mode)
    }


def signed(ms: float) -> str:
    return f"{ms:+.2f}"


def op_text(op: OpChange) -> str:
    """`aten::gelu +1.52 ms [+1.31, +1.73] 82%*`: the change, its interval, its share, * where significant."""
    share = f" {op.share:.0%}" if op.share is not None else ""
    mark = "*" if op.significant else ""
    return f"{op.op} {signed(op.change_ms)} ms [{signed(op.low_ms)}, {signed(op.high_ms)}]{share}{mark}"


def calls_text(entries: list[tuple[str, int, int]]) -> str:
    return ", ".join(f"{op} ({b} -> {c} calls)" for op, b, c in entries)


def summary_text(attribution: Attribution | str) -> str:
    """One paragraph: the row's profiled change, its top operators, then operators added and gone."""
    if isinstance(attribution, str):
        return f"where: {attribution}"
    whole = (
        f"where ({attribution.timing} time of a profiled round, {attribution.processes[0]}+"
        f"{attribution.processes[1]} processes): {signed(attribution.change_ms)} ms in all; "
    )
    parts = [whole + ", ".join(op_text(op) for op in attribution.top())]
    if attribution.added:
        parts.append(f"added {calls_text(attribution.added)}")
    if attribution.gone:
        parts.append(f"gone {calls_text(attribution.gone)}")
    return "; ".join(parts)


LEGEND = (
    "where: the operators whose self time changed most in one profiled round (ms a round, candidate "
    "- baseline, the interval over processes, the share of the round's whole change; * significant "
    "after Holm over the row's operators), then operators added and gone with their calls a round"
)


def as_json(attribution: Attribution | str | None) -> dict | None:
    """A row's `attribution` in ab's JSON: the figures, or {"none": why}, or None where not asked."""
    if attribution is None:
        return None
    return {"none": attribution} if isinstance(attribution, str) else attribution.as_json()

"""Sampling until decided: a planned number of looks with the family's alpha spent across them.

`ab` judges every row after its first pass (look 1). A row still `inconclusive` is sampled again
(bench/cli/looks.py) and judged again at look 2, 3, ... up to the K planned looks. The error:
look k judges the rows still undecided together, with Holm at alpha_k (verdict.py `finish`, its
intervals at 1 - alpha_k), on every process sampled so far; a row decided at a look (regression,
improvement, no change) keeps that verdict, and after the last look the rest stay inconclusive.
The alphas sum to the session's alpha (`spend`), so by the union bound over the looks a session
of unchanged code flags anything with probability at most sum(alpha_k) = alpha, and a regression
at most alpha / 2, as one look does, where each look's Holm keeps its own alpha_k. That last step
is exact for Holm over a fixed family; here the family of look k is the rows left undecided by
looks 1..k-1, chosen by the data, so the whole plan is simulated on seeded sessions
(`python -m bench power --rule --looks K`, bench/power/rule.py; tests/test_sequential.py).

Spending: look 1 weighs FIRST_LOOK_WEIGHT times each later look, so that it stays close to one
look's rule (K = 2: 2/3 of alpha, then 1/3); K = 1 is one look at alpha, as before. A union-bound
split rather than O'Brien-Fleming or Pocock boundaries: those assume the looks' statistics are
jointly normal with known information fractions, which the chosen score and the Welch degrees of
freedom of a few processes are not. No torch import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.base.errors import BenchInputError
from bench.verdicts.verdict import INCONCLUSIVE, Row, finish

FIRST_LOOK_WEIGHT = 2.0
MAX_LOOKS = 10  # beyond it each look's alpha is too small to decide anything a look could add
# the per-process lists of a saved benchmark's extra_info, in process order (sampling.py `summary`)
PER_PROCESS = (
    "process_medians",
    "calibration_medians",
    "normalized_medians",
    "process_rounds",
    "calibration_rounds",
)


def spend(alpha: float, looks: int) -> tuple[float, ...]:
    """Each look's alpha: they sum to `alpha`, look 1 FIRST_LOOK_WEIGHT times each later one."""
    if not 1 <= looks <= MAX_LOOKS:
        raise BenchInputError(f"--looks {looks}: must be between 1 and {MAX_LOOKS}")
    weights = [FIRST_LOOK_WEIGHT] + [1.0] * (looks - 1)
    return tuple(alpha * w / sum(weights) for w in weights)


@dataclass(frozen=True)
class Plan:
    """The planned looks of a session: each look's alpha (their sum is the session's)."""

    alphas: tuple[float, ...]

    @property
    def looks(self) -> int:
        return len(self.alphas)

    def as_json(self) -> dict:
        """What a saved pair keeps (its `ab` block, key "looks") to replay the plan."""
        return {"planned": self.looks, "alpha": list(self.alphas)}

    @classmethod
    def of(cls, alpha: float, looks: int) -> Plan:
        return cls(spend(alpha, looks))

    @classmethod
    def saved(cls, block: dict | None, alpha: float) -> Plan:
        """The plan a pair was judged with, at the `alpha` asked for now: its saved alphas scaled
        to sum to it (the same alphas at the same alpha); one look where none was saved."""
        if not block or not block.get("alpha"):
            return cls((alpha,))
        stored = [float(a) for a in block["alpha"]]
        return cls(tuple(a * alpha / sum(stored) for a in stored))


def judge_looks(
    plan: Plan, taken: int, rows_at: Callable[[int, float], Sequence[Row]], min_effect: float
) -> list[Row]:
    """Every row's verdict after `taken` looks (1 .. plan.looks): `rows_at(k, alpha_k)` gives every
    row as it stood at look k (0-based; on the processes it had then, its interval at 1 - alpha_k);
    the rows still undecided are judged together at alpha_k; a decided row keeps its look's row.
    With more than one look planned, each row says the look that decided it (`Row.look`; for an
    inconclusive row, its last)."""
    taken = max(1, min(taken, plan.looks))
    final: dict[int, Row] = {}
    for k in range(taken):
        rows = rows_at(k, plan.alphas[k])
        undecided = [i for i in range(len(rows)) if i not in final]
        judged = finish([rows[i] for i in undecided], plan.alphas[k], min_effect)
        for i, row in zip(undecided, judged, strict=True):
            if row.verdict != INCONCLUSIVE or k == taken - 1:
                final[i] = dataclasses.replace(row, look=k + 1) if plan.looks > 1 else row
    return [final[i] for i in range(len(final))]


def extra_until(extra: dict, processes: int | None) -> dict:
    """A saved benchmark's extra_info as it stood with its first `processes` processes a side
    (all of them where None): the looks append processes, never change earlier ones."""
    if processes is None:
        return extra
    return {**extra, **{key: extra[key][:processes] for key in PER_PROCESS if key in extra}}


def boundary(looks: Sequence[int] | None, k: int) -> int | None:
    """Processes a side after look k (0-based) of a benchmark's saved boundaries: its last where it
    stopped earlier (decided, or no budget left), None where it kept none (one look, every process)."""
    if not looks:
        return None
    return looks[min(k, len(looks) - 1)]


def looks_taken(boundaries: Sequence[Sequence[int] | None]) -> int:
    """How many looks a session took: the most boundaries any benchmark kept (1 where none)."""
    return max((len(b) for b in boundaries if b), default=1)

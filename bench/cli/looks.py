"""`ab --looks K`: the rows still inconclusive after a look sampled again, until decided or out of
budget (the plan and why its error holds: bench/verdicts/sequential.py).

After pytest's session the A/B pool stays open (fixtures/ab.py `keep_pool`). At each later look
every row still inconclusive is judged as the saved pair will be (`judge_saved` on the pair so far),
and sampled again in fresh worker pairs appended to its recorded Pair, in the unit that narrows its
interval: where the spread between processes dominates (more rounds would not decide it, pairs.py
`rounds_multiple`), as many pairs as the first look had; where it does not, half as many, each with
about twice the rounds for the same timed seconds (fewer workers to build and warm up). The budget
left is shared equally by the looks and rows still to come.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from bench.measure.ab import BASELINE, ABPool, Progress
from bench.verdicts.notation import short_name, wrap
from bench.verdicts.pairs import judge_saved, rounds_multiple, shared_extra
from bench.verdicts.sequential import Plan
from bench.verdicts.stats import Values
from bench.verdicts.verdict import INCONCLUSIVE, Row

# A row's share of the budget goes to its timed rounds but for this fraction, left for starting,
# building and warming up its fresh workers (5-10 s for 20 workers of a `pr` row on 2 cores).
TIMED_SHARE = 0.7
# A share under this many seconds would time too few rounds after building to be worth a look.
MIN_SHARE = 10.0


def more_processes(saved: dict[str, dict], row: Row) -> bool:
    """Whether only more processes would narrow the row's interval enough (or it sits on the edge)."""
    sides = [Values.from_extra_info(extra) for extra in shared_extra(saved, row.benchmark)]
    return rounds_multiple(sides, row) is None


def sample_until_decided(
    pool: ABPool,
    plan: Plan,
    budget: float,
    saved_now: Callable[[], dict[str, dict]],
    alpha: float,
    min_effect: float,
    out: TextIO | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> int:
    """Looks 2..K of the plan, each undecided row sampled again while the budget lasts; the looks
    taken (1 where none was needed or none fit). `saved_now()` is the pair as it would be saved
    now; every row's boundaries are kept in its recorded Pair's `looks`."""
    out = out or sys.stderr  # as it is now: pytest's session swapped it while it ran
    began = clock()
    pool.progress = Progress()  # the session's bars drew on a terminal that pytest's session closed
    taken = 1
    for look in range(2, plan.looks + 1):
        saved = saved_now()
        undecided = [row for row in judge_saved(saved, alpha, min_effect) if row.verdict == INCONCLUSIVE]
        sampled = 0
        for i, row in enumerate(undecided):
            left = budget - (clock() - began)
            share = left / ((plan.looks - look + 1) * (len(undecided) - i))
            if share < MIN_SHARE:
                break
            wide = more_processes(saved, row)
            pairs = pool.processes if wide else max(2, pool.processes // 2)
            unit = "more processes" if wide else "more rounds"
            line = (
                f"look {look}/{plan.looks} [{i + 1}/{len(undecided)}] {short_name(row.benchmark)}: "
                f"{unit}, +{pairs} pairs, {TIMED_SHARE * share:.0f} s ({left:.0f} s of --budget left)"
            )
            print("\n".join(wrap(line, "")), file=out, flush=True)
            pool.resample(row.benchmark, pairs, TIMED_SHARE * share)
            sampled += 1
        if not sampled:
            if undecided:
                print(f"look {look}/{plan.looks}: --budget {budget:g} s spent", file=out, flush=True)
            break
        for row in undecided:  # a row left out of this look keeps its processes as its boundary
            pair = pool.recorded[row.benchmark]
            pair.looks += [len(pair.samples[BASELINE])] * (look - len(pair.looks))
        taken = look
    if taken > 1:
        print(f"ab: {taken - 1} more look(s) took {clock() - began:.0f} s", file=out, flush=True)
    return taken

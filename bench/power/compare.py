"""How often `compare` finds a known slowdown between saved runs, and how often it cries wolf.

Each run starts fresh worker processes (as a real run does) and times one benchmark at every
injected slowdown level (the test-only `Job.slowdown`: extra work inside the timed region), the levels in a
seeded random order per process. A trial compares run k at no slowdown (the baseline) with run k+1
at one level (the candidate), as `compare --baseline previous` would; different runs never share a
process; the level-0 runs before it are the history from which the run-to-run spread is measured.
The share of trials judged a regression is the detection rate; at level 0 it is the false alarm rate.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

from bench.measure.sampling import Job, Server, WorkerPool
from bench.power.detection import values
from bench.verdicts.compare import HISTORY_RUNS, MIN_HISTORY_RUNS, judge
from bench.verdicts.stats import Values
from bench.verdicts.verdict import CALIBRATED, REGRESSION, finish

LEVELS = (0.0, 0.02, 0.05, 0.10, 0.25)


def collect(
    options: dict,
    job: Job,
    runs: int,
    workers: int,
    threads: int,
    levels: tuple[float, ...] = LEVELS,
    progress: Callable[[int], None] = lambda done: None,
    server: Server | None = None,
) -> list[dict[float, Values]]:
    """`runs` runs, each a fresh pool of `workers` processes timing `job` at every level; each
    pool from a server of its own, as a run's, unless `server` is given (a check of this code)."""
    order = random.Random(0)
    collected = []
    for run in range(runs):
        measured = {}
        with WorkerPool(options, workers, threads, server=server) as pool:
            for level in order.sample(levels, len(levels)):
                job_at = dataclasses.replace(job, slowdown=level)
                measured[level] = values(pool.sample(job_at), job_at, threads)
        collected.append({level: measured[level] for level in levels})
        progress(run + 1)
    return collected


def detection_table(
    runs: list[dict[float, Values]],
    alpha: float,
    min_effect: float,
    baseline_runs: int = 1,
    with_history: bool = True,
) -> dict[float, dict]:
    """Per level: trials, regressions found, their share, and how often the normalized score decided.

    Trial k judges run k at the level against the `baseline_runs` runs before it at no slowdown
    (`compare --baseline last:N`), with the level-0 runs before it as the history whose run-to-run
    spread the test uses; without history, the test knows only the spread between processes.
    """
    first = max(baseline_runs, MIN_HISTORY_RUNS if with_history else 1)
    table = {}
    for level in runs[0]:
        rows = [
            finish(
                [
                    judge(
                        f"{level}",
                        [runs[j][0.0] for j in range(k - baseline_runs, k)],
                        runs[k][level],
                        [runs[j][0.0] for j in range(max(0, k - HISTORY_RUNS), k)] if with_history else [],
                        1.0 - alpha,
                        process_spread=not with_history,
                    )
                ],
                alpha,
                min_effect,
            )[0]
            for k in range(first, len(runs))
        ]
        found = sum(row.verdict == REGRESSION for row in rows)
        table[level] = {
            "trials": len(rows),
            "flagged": found,
            "rate": found / len(rows) if rows else None,
            "decided_by_calibrated": sum(row.decided_by == CALIBRATED for row in rows),
        }
    return table


def tables(runs: list[dict[float, Values]], alpha: float, min_effect: float) -> dict[str, dict]:
    """The detection tables a report shows: baseline = previous run and = last 5, with history;
    and the previous run without history, judged on the process spread alone (`compare
    --process-spread`), to show why that is not the default."""
    return {
        "previous": detection_table(runs, alpha, min_effect, 1),
        "last:5": detection_table(runs, alpha, min_effect, 5),
        "previous, no history": detection_table(runs, alpha, min_effect, 1, with_history=False),
    }

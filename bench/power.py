"""How often the detector finds a known slowdown, and how often it cries wolf.

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

from bench.compare import HISTORY_RUNS, MIN_HISTORY_RUNS, Values, judge
from bench.sampling import Job, WorkerPool, summary
from bench.stats import REGRESSION

LEVELS = (0.0, 0.02, 0.05, 0.10, 0.25)


def values(samples, job: Job, threads: int) -> Values:
    info = summary(samples, job, threads)
    return Values(info["process_medians"], info["calibration_medians"], info["normalized_medians"])


def collect(
    options: dict,
    job: Job,
    runs: int,
    workers: int,
    threads: int,
    levels: tuple[float, ...] = LEVELS,
    progress: Callable[[int], None] = lambda done: None,
) -> list[dict[float, Values]]:
    """`runs` runs, each a fresh pool of `workers` processes timing `job` at every level."""
    order = random.Random(0)
    collected = []
    for run in range(runs):
        measured = {}
        with WorkerPool(options, workers, threads) as pool:
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
            judge(
                f"{level}",
                [runs[j][0.0] for j in range(k - baseline_runs, k)],
                runs[k][level],
                [runs[j][0.0] for j in range(max(0, k - HISTORY_RUNS), k)] if with_history else [],
                alpha,
                min_effect,
                process_spread=not with_history,
            )
            for k in range(first, len(runs))
        ]
        found = sum(row.verdict == REGRESSION for row in rows)
        table[level] = {
            "trials": len(rows),
            "flagged": found,
            "rate": found / len(rows) if rows else None,
            "decided_by_normalized": sum(row.decided_by == "normalized" for row in rows),
        }
    return table


def format_detection(table: dict[float, dict]) -> str:
    lines = ["injected slowdown  trials  flagged as regression  rate     normalized decided"]
    for level, row in table.items():
        label = "none (false alarm)" if level == 0 else f"{level:.0%}"
        lines.append(
            f"{label:<18}  {row['trials']:>6}  {row['flagged']:>21}  {row['rate']:>6.1%}  "
            f"{row['decided_by_normalized']:>18}"
        )
    return "\n".join(lines)


FAST_CASE = {"implementation": "hf", "window": 32, "seq_len": 512, "batch": 2, "passes": "forward_backward"}


def fast_profile_job() -> Job:
    """A fast-profile benchmark sampled as the fast profile samples it (test_attention_step.py)."""
    from bench.benchmarks.test_attention_step import ROUNDS, WARMUP_ROUNDS

    return Job("attention_step", FAST_CASE, ROUNDS, WARMUP_ROUNDS)


def tables(runs: list[dict[float, Values]], alpha: float, min_effect: float) -> dict[str, dict]:
    """The detection tables a report shows: baseline = previous run and = last 5, with history;
    and the previous run without history, judged on the process spread alone (`compare
    --process-spread`), to show why that is not the default."""
    return {
        "previous": detection_table(runs, alpha, min_effect, 1),
        "last:5": detection_table(runs, alpha, min_effect, 5),
        "previous, no history": detection_table(runs, alpha, min_effect, 1, with_history=False),
    }

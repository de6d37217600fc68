"""How often the detector finds a known slowdown, and how often it cries wolf.

Each run starts fresh worker processes (as a real run does) and times one benchmark at every
injected slowdown level (the test-only `Job.slowdown`: extra work inside the timed region), the levels in a
seeded random order per process. A trial compares run k at no slowdown (the baseline) with run k+1
at one level (the candidate), as `compare --baseline previous` would; different runs never share a
process; the level-0 runs before it are the history from which the run-to-run spread is measured.
The share of trials judged a regression is the detection rate; at level 0 it is the false alarm rate.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from scipy import stats

from bench.compare import HISTORY_RUNS, MIN_HISTORY_RUNS, judge
from bench.jobs import (
    ATTENTION_ROUNDS,
    ATTENTION_WARMUP,
    FAST_BATCHES,
    TRAIN_STEP_ROUNDS,
    TRAIN_STEP_WARMUP,
    slice_plans,
    train_step_params,
)
from bench.sampling import Job, Server, WorkerPool, summary
from bench.stats import Values
from bench.verdict import CALIBRATED, IMPROVEMENT, REGRESSION, finish

LEVELS = (0.0, 0.02, 0.05, 0.10, 0.25)


def values(samples, job: Job, threads: int) -> Values:
    return Values.from_extra_info(summary(samples, job, threads))


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


Column = tuple[str, str, str]  # (header, key in a table row, format spec)


def format_detection(
    table: dict[float, dict],
    columns: tuple[Column, ...] = (("calibrated decided", "decided_by_calibrated", "d"),),
) -> str:
    """A detection table as text: per injected level, trials, regressions found, rate, and `columns`."""
    lines = [
        "injected slowdown   trials  flagged as regression  rate     " + "  ".join(c[0] for c in columns)
    ]
    for level, row in table.items():
        label = "none (false alarm)" if level == 0 else f"{level:.0%}"
        cells = "  ".join(f"{row[key]:>{len(header)}{spec}}" for header, key, spec in columns)
        lines.append(f"{label:<18}  {row['trials']:>6}  {row['flagged']:>21}  {row['rate']:>6.1%}  {cells}")
    return "\n".join(lines)


FAST_CASE = {"implementation": "hf", "window": 32, "seq_len": 512, "batch": 2, "passes": "forward_backward"}


def fast_profile_job() -> Job:
    """A fast-profile benchmark sampled as the fast profile samples it (test_attention_step.py)."""
    return Job("attention_step", FAST_CASE, ATTENTION_ROUNDS, ATTENTION_WARMUP)


def tables(runs: list[dict[float, Values]], alpha: float, min_effect: float) -> dict[str, dict]:
    """The detection tables a report shows: baseline = previous run and = last 5, with history;
    and the previous run without history, judged on the process spread alone (`compare
    --process-spread`), to show why that is not the default."""
    return {
        "previous": detection_table(runs, alpha, min_effect, 1),
        "last:5": detection_table(runs, alpha, min_effect, 5),
        "previous, no history": detection_table(runs, alpha, min_effect, 1, with_history=False),
    }


# ---- A/B: how often `python -m bench ab` finds an injected slowdown, and how often it cries wolf ----

AB_LEVELS = (0.0, 0.02, 0.05, 0.10)
ATTENTION_CASES = {
    "hf-w32-L512": FAST_CASE,
    "blocked-w128-L2048": {**FAST_CASE, "implementation": "blocked", "window": 128, "seq_len": 2048},
}
AB_CASES = (*ATTENTION_CASES, "epoch-slice", "train-step")
# The A/B self-tests' case (tests/test_ab.py): the calibration workload on both sides, whose time
# over the calibration round beside it is steady, so a verdict on it sees the A/B machinery and the
# test, not the code. `power --ab --case self-test` measures how often those tests could fail.
SELF_TEST = "self-test"
SELF_TEST_JOB = Job("calibration", {}, rounds=40, warmup=1)


def ab_trial_levels(counts: dict[float, int], seed: int = 0) -> list[float]:
    """Every trial's injected slowdown, `counts[level]` trials at each level, shuffled (seeded), so
    that a slow spell of the machine does not fall on one level alone."""
    order = [level for level, n in counts.items() for _ in range(n)]
    random.Random(seed).shuffle(order)
    return order


def ab_job(case: str, options: dict) -> Job:
    """A fast-profile benchmark as its test samples it, with its own rounds (ab adds rounds to fit
    its budget): an attention case, or the epoch slice at the run's batch size; or the self-tests'."""
    if case == SELF_TEST:
        return SELF_TEST_JOB
    if case == "train-step":  # the fast profile's step at its CPU batch
        batch = next(b for b in FAST_BATCHES if b <= int(options["batch_size"]))
        params = train_step_params(options["attention"], batch)
        return Job("training_step", params, TRAIN_STEP_ROUNDS, TRAIN_STEP_WARMUP)
    if case == "epoch-slice":
        plan = slice_plans(int(options["batch_size"]))[0]
        return Job("epoch", plan.params("device"), plan.rounds, plan.warmup_rounds)
    return dataclasses.replace(fast_profile_job(), params=ATTENTION_CASES[case])


def collect_ab(
    options: dict,
    job: Job,
    levels: list[float],
    processes: int,
    seconds: float,
    done: Callable[[dict], None] = lambda trial: None,
    first_seed: int = 0,
    servers_per_side: int = 0,
) -> None:
    """One A/B session per trial, as `python -m bench ab` runs one: fresh servers and workers for
    both sides (the same checkout), the candidate's rounds stretched by the trial's level, the
    pair order seeded by first_seed + the trial's index. `done` gets each trial as it ends."""
    from bench.ab import BASELINE, CANDIDATE, ABPool
    from bench.sampling import Side

    for index, level in enumerate(levels):
        started = time.perf_counter()
        with ABPool(
            Side(BASELINE),
            Side(CANDIDATE),
            options,
            processes,
            1,
            seconds=seconds,
            candidate_slowdown=level,
            seed=first_seed + index,
            servers_per_side=servers_per_side,
        ) as pool:
            pool.sample(job)
            sides = pool.last.samples
        done(
            {
                "level": level,
                "seconds": time.perf_counter() - started,
                "rounds_per_process": len(sides[CANDIDATE][0].seconds),
                **{side: values(sides[side], job, 1).__dict__ for side in (BASELINE, CANDIDATE)},
                # every round and its calibration round, per process: for studies of other estimators
                "rounds": {
                    side: [{"seconds": s.seconds, "calibration": s.calibration} for s in sides[side]]
                    for side in (BASELINE, CANDIDATE)
                },
            }
        )


@dataclasses.dataclass
class ABPower:
    """One `power --ab` measurement: its settings, and `run`, which saves the result after every
    trial (atomically) when given a file, and with `resume` goes on from the trials saved there."""

    case: str
    null_trials: int
    trials: int
    processes: int
    seconds: float
    alpha: float = 0.01
    min_effect: float = 0.02
    injected: tuple[float, ...] = AB_LEVELS

    servers: int = 0  # per side; 0: one a process, as `ab` runs (bench/ab.py); fewer: checks of this code

    @property
    def servers_per_side(self) -> int:
        return self.servers or self.processes

    def wanted(self) -> dict[float, int]:
        return {level: self.null_trials if level == 0 else self.trials for level in self.injected}

    def result(self, job: Job, measured: list[dict], elapsed: float) -> dict:
        table = ab_detection_table(measured, self.alpha, self.min_effect)
        return {
            "job": job.describe(),
            "processes": self.processes,
            "servers_per_side": self.servers_per_side,
            "seconds_per_benchmark": self.seconds,
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "planned_trials": sum(self.wanted().values()),  # by this run's counts
            "elapsed_seconds": elapsed,
            "table": {str(level): row for level, row in table.items()},
            "trials": measured,
        }

    def saved_trials(self, save: Path, job: Job) -> tuple[list[dict], float]:
        """The trials already in `save` and the seconds they took, refused when measured otherwise."""
        from bench.errors import BenchInputError

        try:
            # files from before servers_per_side was recorded were measured with two servers a side
            saved = {"servers_per_side": 2, **json.loads(save.read_text())}
            same = {
                "job": job.describe(),
                "processes": self.processes,
                "servers_per_side": self.servers_per_side,
                "seconds_per_benchmark": self.seconds,
            }
            differs = [
                f"{key} {saved[key]!r} (now {value!r})" for key, value in same.items() if saved[key] != value
            ]
            trials, elapsed = saved["trials"], float(saved["elapsed_seconds"])
        except FileNotFoundError:
            return [], 0.0
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise BenchInputError(f"--save {save}: not a `power --ab` result to resume ({err!r})") from None
        if differs:
            raise BenchInputError(f"--save {save}: measured with other settings: {'; '.join(differs)}")
        return trials, elapsed

    def run(
        self,
        options: dict,
        save: Path | None = None,
        progress: Callable[[int, int], None] = lambda done, planned: None,
        resume: bool = False,
    ) -> dict:
        from bench.history import replace_atomically

        job = ab_job(self.case, options)
        measured, before = self.saved_trials(save, job) if resume and save else ([], 0.0)
        have = collections.Counter(t["level"] for t in measured)
        missing = {level: max(0, n - have[level]) for level, n in self.wanted().items()}
        levels = ab_trial_levels(missing, seed=len(measured))
        planned = len(measured) + len(levels)
        started = time.perf_counter()
        result = self.result(job, measured, before)

        def done(trial: dict) -> None:
            nonlocal result
            measured.append(trial)
            progress(len(measured), planned)
            result = self.result(job, measured, before + time.perf_counter() - started)
            if save:
                replace_atomically(save, json.dumps(result, indent=1).encode())

        collect_ab(
            options, job, levels, self.processes, self.seconds, done, len(measured), self.servers_per_side
        )
        return result  # as saved after the last trial


def ab_detection_table(trials: list[dict], alpha: float, min_effect: float) -> dict[float, dict]:
    """Per level: trials, judged regression / improvement / no change, rate, seconds per trial."""
    from bench.pairs import judge_pair

    table: dict[float, dict] = {}
    for level in sorted({t["level"] for t in trials}):
        rows = [
            finish(
                [judge_pair("trial", Values(**t["baseline"]), Values(**t["candidate"]), 1.0 - alpha, [])],
                alpha,
                min_effect,
            )[0]
            for t in trials
            if t["level"] == level
        ]
        found = sum(row.verdict == REGRESSION for row in rows)
        ratios = [row.decided.ratio for row in rows if row.decided]
        interval = stats.binomtest(found, len(rows)).proportion_ci(0.95, method="exact")
        table[level] = {
            "trials": len(rows),
            "flagged": found,
            "rate": found / len(rows),
            "rate_95": f"{interval.low:.1%}-{interval.high:.1%}",
            "improvement": sum(row.verdict == IMPROVEMENT for row in rows),
            "median_ratio": statistics.median(ratios),
            "ratio_range": f"{min(ratios):.4f}-{max(ratios):.4f}",
            "median_seconds": statistics.median(t["seconds"] for t in trials if t["level"] == level),
        }
    return table


AB_COLUMNS: tuple[Column, ...] = (
    ("rate, 95% interval", "rate_95", ""),
    ("median ratio", "median_ratio", ".4f"),
    ("ratio range", "ratio_range", ""),
    ("'improvement'", "improvement", "d"),
    ("s per trial", "median_seconds", ".1f"),
)

"""How often `python -m bench ab` finds an injected slowdown, and how often it cries wolf.

A trial is exactly what `ab` runs for one benchmark: fresh servers and paired workers for both
sides (the same checkout), the candidate's rounds stretched by the trial's level, judged by the
rule `ab` uses. Levels are shuffled (seeded) over the trials; every round is kept for studies of
other estimators (`power --scores`).
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

from bench.measure.jobs import (
    FAST_BATCHES,
    TRAIN_STEP_ROUNDS,
    TRAIN_STEP_WARMUP,
    slice_plans,
    train_step_params,
)
from bench.measure.sampling import Job
from bench.power.detection import FAST_CASE, Column, fast_profile_job, values
from bench.verdicts.stats import Values
from bench.verdicts.verdict import IMPROVEMENT, REGRESSION, finish

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
    from bench.measure.ab import BASELINE, CANDIDATE, ABPool
    from bench.measure.sampling import Side

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

    servers: int = 0  # per side; 0: one a process, as `ab` runs; fewer: checks of this code

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
        from bench.base.errors import BenchInputError

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
        from bench.base.history import replace_atomically

        job = ab_job(self.case, options)
        measured, before = self.saved_trials(save, job) if resume and save else ([], 0.0)
        have = collections.Counter(t["level"] for t in measured)
        missing = {level: max(0, n - have[level]) for level, n in self.wanted().items()}
        levels = ab_trial_levels(missing, seed=len(measured))
        planned = len(measured) + len(levels)
        started = time.perf_counter()
        result = self.result(job, measured, before)
        progress(len(measured), planned)  # what there is to do, before the first trial's minutes

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
    from bench.verdicts.pairs import judge_pair

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

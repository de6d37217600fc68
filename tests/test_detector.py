"""The detector checked on itself, end to end through real worker processes.

The injected slowdown (Job.slowdown, or $LFBENCH_TEST_INJECT_SLOWDOWN for a pytest run) adds that
fraction of each round's time as extra work inside the timed region. The measured work here is the
calibration workload itself, whose machine-normalized time is steady even on a shared CPU whose
speed changes by 1.3x within seconds, so these tests check the detector rather than the machine;
`python -m bench power` measures how it does on a fast-profile benchmark.
"""

from __future__ import annotations

import dataclasses

import pytest

from bench.compare import judge
from bench.options import option_defaults
from bench.power import values
from bench.sampling import Job, WorkerPool
from bench.stats import NO_CHANGE, REGRESSION

JOB = Job("calibration", {}, rounds=7, warmup=1)
WORKERS, HISTORY, BASELINE = 4, 10, 5  # baseline = the last 5 runs (compare --baseline last:5)


def one_run(slowdown: float = 0.0):
    """A run as a pytest session makes one: fresh worker processes, every round interleaved."""
    job = dataclasses.replace(JOB, slowdown=slowdown)
    with WorkerPool(option_defaults(), WORKERS, threads=1) as pool:
        return values(pool.sample(job), job, 1)


@pytest.fixture(scope="module")
def history():
    return [one_run() for _ in range(HISTORY)]


def test_two_runs_of_the_same_code_are_not_a_regression(history):
    latest = one_run()
    row = judge("matmul", history[-BASELINE:], latest, history, alpha=0.01, min_effect=0.02)
    assert row.verdict == NO_CHANGE, row


def test_an_injected_25_percent_slowdown_is_a_regression(history):
    latest = one_run(slowdown=0.25)
    row = judge("matmul", history[-BASELINE:], latest, history, alpha=0.01, min_effect=0.02)
    assert row.verdict == REGRESSION, row
    chosen = row.raw if row.decided_by == "raw" else row.normalized
    assert chosen.ratio > 1.15, row  # about the injected 25% (the machine adds or takes a few %)


def test_without_history_the_process_spread_finds_25_percent_when_asked():
    baseline, latest = one_run(), one_run(slowdown=0.25)
    row = judge("matmul", [baseline], latest, [], alpha=0.01, min_effect=0.02, process_spread=True)
    assert row.decided_by == "normalized" and "process spread only" in row.note
    assert row.verdict == REGRESSION, row

"""The detector checked on itself, end to end through real worker processes.

The injected slowdown (a worker's `slowdown`, or $LFBENCH_TEST_INJECT_SLOWDOWN for a pytest run)
adds that fraction of each round's time as extra work inside the timed region. The measured work
here is the calibration workload itself, whose machine-normalized time is steady, so these tests
check the detector rather than the machine; `python -m bench power` measures how it does on a
fast-profile benchmark.

Every run here is sampled at once, its rounds interleaved with every other run's (round 1 of each
process of each run, then round 2, ...): a busy neighbour or a machine that changes speed for a
few seconds slows every run alike, so a test asserts a gross effect that no neighbour can fake or
hide. Run one after another (as this module once did), a CPU-bound process beside `make test` sent
two same-code runs' calibrated ratio to 1.199.
"""

from __future__ import annotations

import random

import pytest

from bench.harness.options import option_defaults
from bench.measure.sampling import Job, Server, Side, schedule
from bench.power.detection import values
from bench.verdicts.compare import judge
from bench.verdicts.verdict import REGRESSION, finish

JOB = Job("calibration", {}, rounds=15, warmup=1)  # medians of 15: a preempted round or two moves none
# baseline = the last 5 runs (compare --baseline last:5); 10 runs of history give the run-to-run
# spread 6.2 degrees of freedom (bench/verdicts/stats.py successive_difference_df), 6 only 3.6
WORKERS, HISTORY, BASELINE = 3, 10, 5
SLOWED = 4.0  # the injected slowdown: each round takes 5x its time


@pytest.fixture(scope="module")
def runs():
    """HISTORY same-code runs, one more same-code run and one slowed 5x: fresh worker processes for
    each run (forked from one server: each interpreter's imports would cost seconds), all rounds
    interleaved, in a random order within each sweep."""
    server = Server(Side(), option_defaults(), threads=1)
    workers = []
    try:
        for slowdown in [None] * (HISTORY + 1) + [SLOWED]:
            run = [server.spawn(want_facts=False) for _ in range(WORKERS)]
            for worker in run:
                worker.slowdown = slowdown
            workers.append(run)
        slots = [[run[i] for run in workers] for i in range(WORKERS)]
        by_pid = schedule(slots, JOB, interleave=True, order=random.Random(0))
        return [values([by_pid[w.pid] for w in run], JOB, 1) for run in workers]
    finally:
        for worker in (w for run in workers for w in run):
            worker.close()
        server.close()


def judged(*args, **kwargs):
    return finish([judge("matmul", *args, **kwargs)], 0.01, 0.02)[0]


def test_two_runs_of_the_same_code_come_out_within_a_wide_band(runs):
    """Never the gate's verdict at its alpha (CI must not fail by design): the change only, within
    +-15%, where the calibration workload's normalized runs wander by about 1% here."""
    history, latest = runs[:HISTORY], runs[HISTORY]
    row = judged(history[-BASELINE:], latest, history, confidence=0.99)
    assert 0.87 < row.calibrated.ratio < 1.15, row


def test_a_run_five_times_as_slow_is_a_regression(runs):
    """Against the run-to-run spread of the history, whichever score decides: where the calibration
    moved raw time decides, whose runs wander most on a loaded machine."""
    history, slowed = runs[:HISTORY], runs[-1]
    row = judged(history[-BASELINE:], slowed, history, confidence=0.99)
    assert row.verdict == REGRESSION, row
    assert 3.5 < row.decided.ratio < 6.5, row  # about the injected 5x


def test_without_history_the_process_spread_finds_5x(runs):
    """Two same-code runs (6 processes) against the slowed one, on the spread between processes
    alone: the raw change is about the injected 5x and its 99% interval is clear of no change.
    (Whether a verdict may rest on it depends on the calibration, which the seeded tests of compare
    check: tests/test_compare.py.)"""
    row = judged(runs[HISTORY - 1 : HISTORY + 1], runs[-1], [], confidence=0.99, process_spread=True)
    assert 3.5 < row.raw.ratio < 6.5, row
    assert row.raw.low > 1.0, row

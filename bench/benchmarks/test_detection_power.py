"""How often `compare` and `ab` find a known slowdown, and how often they flag unchanged code
(bench/power/ab.py).

Measurements of the detectors, not CI tests: minutes (history) to hours (A/B: 200 same-code
sessions and 40 per injected level, each with fresh servers and workers) of worker processes. The
table (per injected slowdown: trials, flagged, rate, ...) goes to extra_info; pytest-benchmark's
time is the whole experiment's. With --benchmark-disable both run at the least size that makes a
table, as a check of their code; tests/test_ab.py and tests/test_detector.py test the detectors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

import pytest

from bench.measure.sampling import Server, Side
from bench.power.ab import AB_CASES, ABPower
from bench.power.compare import LEVELS, collect, tables
from bench.power.detection import fast_profile_job
from bench.verdicts.compare import MIN_HISTORY_RUNS
from fixtures.options import option_values

RUNS = 40
AB_POWER_ENV = "LFBENCH_AB_POWER"
AB_NULL_TRIALS, AB_TRIALS, AB_PROCESSES, AB_SECONDS = 200, 40, 10, 20.0  # `python -m bench ab`'s defaults
# --benchmark-disable (CI): the same code at the least size that yields a trial, as a check
CHECK_RUNS = MIN_HISTORY_RUNS + 1
CHECK_AB = {"null_trials": 1, "trials": 0, "processes": 2, "seconds": 0.0, "injected": (0.0,), "servers": 1}


def skip_unless_cpu(run_spec) -> None:
    if run_spec.device.type != "cpu":
        pytest.skip("the detection table is defined for the CPU fast profile; run with --device cpu")


@pytest.mark.slow
def test_detection_power(benchmark, run_spec, pytestconfig):
    skip_unless_cpu(run_spec)
    job, runs, options = fast_profile_job(), RUNS, option_values(pytestconfig)
    with contextlib.ExitStack() as stack:
        server = None  # the measurement: a server a run, as pytest runs have
        if benchmark.disabled:  # the check: every run's workers forked from one server
            job, runs = dataclasses.replace(job, rounds=1, warmup=0), CHECK_RUNS
            server = stack.enter_context(contextlib.closing(Server(Side(), options, 1)))
        workers = run_spec.workers if benchmark.enabled else 1
        measured = benchmark.pedantic(
            collect,
            args=(options, job, runs, workers, run_spec.worker_threads, LEVELS),
            kwargs={"server": server},
            rounds=1,
        )
    judged = tables(measured, 0.01, 0.02)
    benchmark.extra_info.update(
        job=job.describe(),
        runs=runs,
        workers=workers,
        rounds_per_worker=job.rounds,
        tables={name: {str(k): v for k, v in table.items()} for name, table in judged.items()},
    )
    # every level of every table judged as many trials as its baseline leaves runs for, each counted
    first = {"previous": MIN_HISTORY_RUNS, "last:5": MIN_HISTORY_RUNS, "previous, no history": 1}
    assert len(measured) == runs and all(list(run) == list(LEVELS) for run in measured)
    for name, table in judged.items():
        assert list(table) == list(LEVELS), name
        for row in table.values():
            assert row["trials"] == runs - first[name], (name, row)
            assert 0 <= row["decided_by_calibrated"] <= row["trials"], (name, row)
            assert row["rate"] == row["flagged"] / row["trials"], (name, row)


@pytest.mark.slow
@pytest.mark.parametrize("case", AB_CASES)
def test_ab_detection_power(benchmark, run_spec, pytestconfig, case):
    """`python -m bench power --ab --case CASE`, as a benchmark: the A/B detection table. It takes
    hours (320 A/B sessions of about 45 s), so even a full `pytest` run skips it unless asked;
    with --benchmark-disable it runs one same-code session of two processes a side, at batch 1
    (the epoch slice's and the training step's job at the least size)."""
    skip_unless_cpu(run_spec)
    options = option_values(pytestconfig)
    if benchmark.disabled:
        measurement, options = ABPower(case, **CHECK_AB), {**options, "batch_size": "1"}
    elif os.environ.get(AB_POWER_ENV) == "1":
        measurement = ABPower(case, AB_NULL_TRIALS, AB_TRIALS, AB_PROCESSES, AB_SECONDS)
    else:
        pytest.skip(
            f"takes hours; run it with: {AB_POWER_ENV}=1 pytest -m slow -k 'ab_detection_power and {case}'"
        )
    result = benchmark.pedantic(measurement.run, args=(options,), rounds=1)
    benchmark.extra_info.update({k: v for k, v in result.items() if k != "trials"})
    # every planned trial ran, was saved with both sides' values, and was judged exactly once
    wanted = measurement.wanted()
    assert len(result["trials"]) == sum(wanted.values()) == result["planned_trials"]
    assert {float(level): row["trials"] for level, row in result["table"].items()} == {
        level: n for level, n in wanted.items() if n
    }
    for row in result["table"].values():
        assert row["flagged"] + row["improvement"] <= row["trials"], row

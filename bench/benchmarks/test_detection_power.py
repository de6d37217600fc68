"""How often `compare` and `ab` find a known slowdown, and how often they flag unchanged code
(bench/power.py).

Measurements of the detectors, not CI tests: minutes (history) to hours (A/B: 200 same-code
sessions and 40 per injected level, each with fresh servers and workers) of worker processes. The
table (per injected slowdown: trials, flagged, rate, ...) goes to extra_info; pytest-benchmark's
time is the whole experiment's. tests/test_ab.py runs the same A/B measurement code at a tiny size.
"""

from __future__ import annotations

import os

import pytest

from bench.power import AB_CASES, LEVELS, ABPower, collect, fast_profile_job, tables
from fixtures.options import option_values

RUNS = 40
AB_POWER_ENV = "LFBENCH_AB_POWER"
AB_NULL_TRIALS, AB_TRIALS, AB_PROCESSES, AB_SECONDS = 200, 40, 10, 20.0  # `python -m bench ab`'s defaults


def skip_unless_measuring(benchmark, run_spec, command: str) -> None:
    if benchmark.disabled:
        pytest.skip(f"measures the detector for minutes to hours; run it with benchmarks on: {command}")
    if run_spec.device.type != "cpu":
        pytest.skip("the detection table is defined for the CPU fast profile; run with --device cpu")


@pytest.mark.slow
def test_detection_power(benchmark, run_spec, pytestconfig):
    skip_unless_measuring(benchmark, run_spec, "pytest -m slow -k 'detection_power and not ab'")
    job = fast_profile_job()
    measured = benchmark.pedantic(
        collect,
        args=(option_values(pytestconfig), job, RUNS, run_spec.workers, run_spec.worker_threads, LEVELS),
        rounds=1,
    )
    benchmark.extra_info.update(
        job=job.describe(),
        runs=RUNS,
        workers=run_spec.workers,
        rounds_per_worker=job.rounds,
        tables={
            name: {str(k): v for k, v in table.items()}
            for name, table in tables(measured, 0.01, 0.02).items()
        },
    )


@pytest.mark.slow
@pytest.mark.parametrize("case", list(AB_CASES))
def test_ab_detection_power(benchmark, run_spec, pytestconfig, case):
    """`python -m bench power --ab --case CASE`, as a benchmark: the A/B detection table. It takes
    hours (320 A/B sessions of about 30 s), so even a full `pytest` run skips it unless asked."""
    command = f"{AB_POWER_ENV}=1 pytest -m slow -k 'ab_detection_power and {case}'"
    skip_unless_measuring(benchmark, run_spec, command)
    if os.environ.get(AB_POWER_ENV) != "1":
        pytest.skip(f"takes hours; run it with: {command}")
    measurement = ABPower(case, AB_NULL_TRIALS, AB_TRIALS, AB_PROCESSES, AB_SECONDS)
    result = benchmark.pedantic(measurement.run, args=(option_values(pytestconfig),), rounds=1)
    benchmark.extra_info.update({k: v for k, v in result.items() if k != "trials"})

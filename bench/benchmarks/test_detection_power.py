"""How often `compare` finds a known slowdown, and how often it flags unchanged code (bench/power.py).

A measurement of the detector, not a CI test: minutes of fresh worker processes. The table (per
injected slowdown: trials, flagged, rate, which score decided) goes to extra_info; pytest-benchmark's
time is the whole experiment's.
"""

from __future__ import annotations

import pytest

from bench.power import LEVELS, collect, fast_profile_job, tables
from fixtures.options import option_values

RUNS = 40


@pytest.mark.slow
def test_detection_power(benchmark, run_spec, pytestconfig):
    if benchmark.disabled:
        pytest.skip(
            "measures the detector for minutes; run it with benchmarks on: pytest -m slow -k detection_power"
        )
    if run_spec.device.type != "cpu":
        pytest.skip("the detection table is defined for the CPU fast profile; run with --device cpu")
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

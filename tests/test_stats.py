"""The statistics behind verdicts: interval and p-value, run-to-run spread (verdicts: test_verdict.py)."""

from __future__ import annotations

import math
import random

import pytest
from scipy import stats

from bench.verdicts.stats import log_ratio_change, run_change, run_to_run_sd


def test_log_ratio_change_recovers_a_known_ratio():
    baseline = [1.00, 1.02, 0.99, 1.01]
    change = log_ratio_change(baseline, [1.25 * v for v in baseline], confidence=0.99)
    assert change.ratio == pytest.approx(1.25)
    assert change.low < 1.25 < change.high and change.low > 1.0
    assert change.p_value < 1e-4


def test_log_ratio_change_is_scipys_welch_test_on_logs():
    rng = random.Random(4)
    for n_b, n_c in ((2, 2), (3, 7), (10, 10)):
        base = [math.exp(rng.gauss(0, 0.05)) for _ in range(n_b)]
        cand = [math.exp(rng.gauss(0.03, 0.02)) for _ in range(n_c)]
        test = stats.ttest_ind([math.log(v) for v in cand], [math.log(v) for v in base], equal_var=False)
        interval = test.confidence_interval(0.99)
        change = log_ratio_change(base, cand, 0.99)
        assert change.p_value == pytest.approx(test.pvalue, rel=1e-9)
        assert change.df == pytest.approx(test.df, rel=1e-9)
        assert (change.low, change.high) == pytest.approx((math.exp(interval.low), math.exp(interval.high)))


def test_log_ratio_change_needs_two_values_per_side():
    assert log_ratio_change([1.0], [1.0, 1.1], 0.99) is None
    assert log_ratio_change([1.0, 1.1], [1.2], 0.99) is None


def test_identical_samples_show_no_change_and_exact_ones_a_sure_change():
    same = log_ratio_change([2.0, 2.0], [2.0, 2.0], 0.99)
    assert same.ratio == 1.0 and same.p_value == 1.0
    doubled = log_ratio_change([2.0, 2.0], [4.0, 4.0], 0.99)
    assert doubled.ratio == 2.0 and doubled.p_value == 0.0


def test_false_alarm_rate_of_the_test_is_its_alpha():
    """Under the null (same distribution), p < 0.01 about 1% of the time: the test is calibrated."""
    rng = random.Random(1)
    trials = 4000
    alarms = sum(
        log_ratio_change(
            [math.exp(rng.gauss(0, 0.03)) for _ in range(3)],
            [math.exp(rng.gauss(0, 0.03)) for _ in range(3)],
            0.99,
        ).p_value
        < 0.01
        for _ in range(trials)
    )
    assert alarms / trials == pytest.approx(0.01, abs=0.006)


def test_run_to_run_spread_needs_three_runs_and_counts_a_step_once():
    assert run_to_run_sd([0.0, 0.1]) is None
    steady = run_to_run_sd([0.0, 0.02, 0.0, 0.02, 0.0, 0.02])
    assert steady == pytest.approx(0.02 / math.sqrt(2))
    step = run_to_run_sd([0.0, 0.0, 0.0, 0.3, 0.3, 0.3])  # one regression long ago
    assert step == pytest.approx(math.sqrt(0.09 / 5 / 2))


def test_run_change_tests_against_the_run_to_run_spread():
    base = [[1.0, 1.01, 0.99]]
    near = run_change(base, [1.03, 1.04, 1.02], sd=0.05, history=10, confidence=0.99)
    assert near.ratio == pytest.approx(1.03, abs=1e-3) and near.p_value > 0.01
    far = run_change(base, [1.5, 1.51, 1.49], sd=0.05, history=10, confidence=0.99)
    assert far.p_value < 0.01 and far.low > 1.0

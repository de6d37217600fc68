"""The verdict rule on seeded synthetic values, with exact expectations (bench/verdicts/verdict.py).

Nothing here is timed: every value is drawn from a seeded generator, so each assertion holds or
fails the same way on every machine.
"""

from __future__ import annotations

import math
import random
import statistics

import pytest

from bench.verdicts.pairs import judge_pair, stack_differences
from bench.verdicts.stats import Change, Values, controlled, log_ratio_change, within_process_slope
from bench.verdicts.verdict import (
    CALIBRATED,
    IMPROVEMENT,
    INCONCLUSIVE,
    NO_CHANGE,
    RAW,
    REGRESSION,
    UNTESTABLE,
    choose_score,
    classify,
    counts,
    family,
    finish,
    holm,
    needed_factor,
)


def change(ratio: float, low: float, high: float, p: float = 0.5, se: float = 0.01) -> Change:
    return Change(ratio, low, high, p, 10, 10, se, 18.0)


@pytest.mark.parametrize(
    ("ratio", "low", "high", "p_slower", "p_faster", "expected"),
    [
        (1.10, 1.05, 1.15, 0.001, 0.999, REGRESSION),
        (1.10, 1.05, 1.15, 0.02, 0.98, INCONCLUSIVE),  # large, but not significant after Holm
        (1.015, 1.010, 1.020, 0.001, 0.999, NO_CHANGE),  # significant, but the whole interval is small
        (1.015, 1.005, 1.025, 0.001, 0.999, INCONCLUSIVE),  # significant, under 2%, could be over
        (0.90, 0.85, 0.95, 0.999, 0.001, IMPROVEMENT),
        # significant after Holm (one-sided at 0.01 on a session's last row), but the printed 99%
        # interval reaches no change: a same-code trial of the training step said "improvement"
        (0.957, 0.912, 1.004, 0.992, 0.008, INCONCLUSIVE),
        (1.045, 0.996, 1.096, 0.008, 0.992, INCONCLUSIVE),
        (1.00, 0.99, 1.01, 0.5, 0.5, NO_CHANGE),
        (1.00, 0.90, 1.37, 0.5, 0.5, INCONCLUSIVE),  # the epoch slice's "no change" of +-37%
    ],
)
def test_a_verdict_says_only_what_its_interval_supports(ratio, low, high, p_slower, p_faster, expected):
    assert classify(change(ratio, low, high), p_slower, p_faster, alpha=0.01, min_effect=0.02) == expected


def test_without_a_test_the_verdict_says_so():
    assert classify(None, 1.0, 1.0, 0.01, 0.02) == UNTESTABLE
    assert family([None], 0.01, 0.02)[0].verdict == UNTESTABLE


def test_holm_matches_the_step_down_by_hand_and_statsmodels():
    # sorted 0.001, 0.01, 0.02, 0.04 times 4, 3, 2, 1 -> 0.004, 0.03, 0.04, 0.04 (monotone)
    assert holm([0.02, 0.001, 0.04, 0.01]) == pytest.approx([0.04, 0.004, 0.04, 0.03])
    multitest = pytest.importorskip("statsmodels.stats.multitest", reason="statsmodels is in the lock")
    rng = random.Random(11)
    for size in (1, 2, 13, 40):
        p_values = [rng.random() ** 3 for _ in range(size)]
        assert holm(p_values) == pytest.approx(list(multitest.multipletests(p_values, method="holm")[1]))
    assert holm([]) == []


def test_one_sided_p_values_split_the_two_sided_one():
    slower = log_ratio_change([1.0, 1.02, 0.99, 1.01], [1.05, 1.06, 1.04, 1.07], 0.99)
    assert slower.one_sided(slower=True) == pytest.approx(slower.p_value / 2)
    assert slower.one_sided(slower=False) == pytest.approx(1 - slower.p_value / 2)


def synthetic_session(rng: random.Random, benchmarks: int, processes: int, sd: float) -> list[Change]:
    """One same-code session: every benchmark's per-process values from one distribution."""
    return [
        log_ratio_change(
            [math.exp(rng.gauss(0, sd)) for _ in range(processes)],
            [math.exp(rng.gauss(0, sd)) for _ in range(processes)],
            0.99,
        )
        for _ in range(benchmarks)
    ]


def test_holm_keeps_same_code_sessions_of_13_benchmarks_under_one_percent():
    """1,000 seeded same-code sessions of 13 benchmarks, 10 processes a side, min effect 0 (the worst
    case): with Holm at alpha / 2 a direction a session flags anything about 1% of the time (the
    bound), a regression about 0.5%; without Holm a regression at one-sided 0.01 about 12%."""
    rng = random.Random(20)
    regression = either = without = 0
    for _ in range(1000):
        changes = synthetic_session(rng, 13, 10, 0.02)
        judged = family(changes, 0.01, 0.0)
        regression += any(j.verdict == REGRESSION for j in judged)
        either += any(j.verdict in (REGRESSION, IMPROVEMENT) for j in judged)
        without += any(c.one_sided(slower=True) < 0.01 and c.ratio > 1 for c in changes)
    assert (regression, either, without) == (5, 13, 109)  # 1% of 1,000 is 10 +- 3


def test_a_five_percent_slowdown_is_found_through_the_correction():
    """The price of Holm on one real change among 13: a 5% slowdown at a 1% process spread is
    still found in every one of 200 seeded sessions."""
    rng = random.Random(5)
    found = 0
    for _ in range(200):
        changes = synthetic_session(rng, 12, 10, 0.01)
        changes.append(
            log_ratio_change(
                [math.exp(rng.gauss(0, 0.01)) for _ in range(10)],
                [1.05 * math.exp(rng.gauss(0, 0.01)) for _ in range(10)],
                0.99,
            )
        )
        found += family(changes, 0.01, 0.02)[-1].verdict == REGRESSION
    assert found == 200


def test_needed_factor_is_the_square_of_half_width_over_the_distance_to_a_decision():
    # log interval half-width 0.04, estimate 0 (0.0198 from the 2% edge): (0.04 / 0.0198)^2
    wide = change(1.0, math.exp(-0.04), math.exp(0.04))
    assert needed_factor(wide, 0.02) == pytest.approx((0.04 / math.log1p(0.02)) ** 2)
    assert needed_factor(change(1.02, 1.0, 1.04), 0.02) is None  # on the edge: no amount decides
    assert needed_factor(change(1.0, 0.999, 1.001), 0.02) == 1.0


def test_the_calibration_decides_only_where_it_did_not_move_and_the_software_is_the_same():
    steady = change(1.001, 0.996, 1.006, p=0.7)
    assert choose_score(steady, [])[0] == CALIBRATED
    assert choose_score(steady, ["torch 2.12.0 vs 2.13.0"]) == (
        RAW,
        "the sides' software differs (torch 2.12.0 vs 2.13.0)",
    )
    moved = change(1.20, 1.18, 1.22, p=1e-9)
    score, why = choose_score(moved, [])
    assert score == RAW and "+20.0%" in why
    assert choose_score(change(1.004, 0.990, 1.018, p=0.6), [])[0] == CALIBRATED  # within noise and 1%
    drifted = change(1.015, 0.99, 1.04, p=0.2)  # not significant, but its estimate is over 1%
    assert choose_score(drifted, [])[0] == RAW
    assert choose_score(None, [])[0] == RAW


def test_the_sides_software_differs_in_interpreter_versions_and_variables():
    same = {"executable": "/v/bin/python", "python": "3.11.7", "torch": "2.13.0", "transformers": "5.24.0"}
    sides = {"baseline": {**same, "env": {}}, "candidate": {**same, "env": {}}}
    assert stack_differences(sides) == []
    sides["baseline"] = {**same, "torch": "2.12.0", "env": {"OMP_NUM_THREADS": "2"}}
    assert stack_differences(sides) == ["torch 2.12.0 vs 2.13.0", "$OMP_NUM_THREADS"]
    sides["baseline"] = {**same, "threads": 2, "env": {}}  # --baseline-option threads=2
    sides["candidate"] = {**same, "threads": 1, "env": {}}
    assert stack_differences(sides) == ["threads 2 vs 1"]


def rounds_side(
    rng: random.Random, processes: int, rounds: int, round_scale: float, cal_scale: float
) -> Values:
    """Synthetic rounds: a machine-speed factor shared by each round and its calibration round (SD
    5%), a process factor (SD 1%), and noise of their own (SD 1%)."""
    times, calibrations = [], []
    for _ in range(processes):
        process = rng.gauss(0, 0.01)
        t, c = [], []
        for _ in range(rounds):
            speed = rng.gauss(0, 0.05)
            t.append(round_scale * math.exp(speed + process + rng.gauss(0, 0.01)))
            c.append(cal_scale * math.exp(speed + rng.gauss(0, 0.01)))
        times.append(t)
        calibrations.append(c)
    normalized = [
        statistics.median(a / b for a, b in zip(t, c, strict=True))
        for t, c in zip(times, calibrations, strict=True)
    ]
    medians = [statistics.median(t) for t in times]
    return Values(medians, [statistics.median(c) for c in calibrations], normalized, times, calibrations)


def test_the_within_process_slope_and_its_end_points():
    rng = random.Random(3)
    side = rounds_side(rng, 10, 31, 1.0, 1.0)
    slope = within_process_slope([side, rounds_side(rng, 10, 31, 1.0, 1.0)])
    assert 0.9 < slope <= 1.0  # rounds and calibration share a 5% speed factor, 1% noise each
    assert controlled(side, 0.0) == side.process  # slope 0: raw medians
    assert controlled(side, 1.0) == pytest.approx(side.normalized)  # slope 1: normalized medians
    lone = Values(side.process, side.calibration, side.normalized, side.rounds, [[1.0] * 31] * 10)
    assert within_process_slope([lone]) == 0.0  # a calibration that never moves tracks nothing
    assert within_process_slope([Values([1.0], [1.0], [1.0])]) is None  # no rounds saved


def test_a_stack_slowdown_that_reaches_the_calibration_is_judged_on_raw_time():
    """The case that was judged `no change` and `improvement`: the candidate's rounds 15% slower
    and its calibration 20% slower. The calibrated score reads it as a 4% improvement; the
    calibration's own change sends the row to raw time, which finds the regression."""
    rng = random.Random(7)
    baseline = rounds_side(rng, 10, 30, 1.0, 1.0)
    candidate = rounds_side(rng, 10, 30, 1.15, 1.20)
    (row,) = finish([judge_pair("epoch", baseline, candidate, 0.99, [])], 0.01, 0.02)
    assert row.calibrated.ratio < 0.98  # what the calibrated score alone would have said
    assert row.decided_by == RAW and "calibration itself changed" in row.reason
    assert row.verdict == REGRESSION and row.decided.ratio == pytest.approx(1.15, rel=0.02)


def test_a_code_slowdown_is_judged_on_the_calibrated_score():
    rng = random.Random(8)
    baseline = rounds_side(rng, 10, 30, 1.0, 1.0)
    candidate = rounds_side(rng, 10, 30, 1.05, 1.0)
    (row,) = finish([judge_pair("step", baseline, candidate, 0.99, [])], 0.01, 0.02)
    assert row.decided_by == CALIBRATED, row.reason
    assert row.verdict == REGRESSION and row.decided.ratio == pytest.approx(1.05, rel=0.01)
    # the calibrated interval is narrower than raw's: the shared 5% speed factor is taken out
    assert row.calibrated.high / row.calibrated.low < row.raw.high / row.raw.low


def test_the_summary_counts_each_verdict_apart():
    assert (
        counts([NO_CHANGE, INCONCLUSIVE, NO_CHANGE, REGRESSION])
        == "1 regression, 2 no change, 1 inconclusive"
    )
    assert counts([]) == "nothing judged"


@pytest.mark.parametrize(
    ("design", "expected"),
    [
        ("compare, 5 earlier runs", (1, 3, 254, 6)),
        ("compare, 20 earlier runs", (2, 4, 247, 13)),
        ("ab, 10 processes x 20 rounds", (0, 0, 44, 216)),
        ("ab, no side offset", (0, 0, 16, 244)),
    ],
)
def test_the_whole_rule_on_seeded_same_code_sessions(design, expected):
    """`power --rule`'s simulation (bench/power/rule.py), 20 sessions of 13 rows on a fixed seed, at
    alpha 0.2 so that a few say something: the sessions that said a regression, either, and how
    many rows raw and the calibrated score decided (raw in compare: the machine's level moves the
    calibration between runs; calibrated in ab, where the sides share it). The rates at 0.01 over
    1,000 sessions are in docs/verdicts.md."""
    from bench.power.rule import DESIGNS, simulate

    (chosen,) = [d for d in DESIGNS if d.name == design]
    result = simulate(chosen, 20, seed=3, alpha=0.2)
    assert (
        result["regression"],
        result["either"],
        result["decided_raw"],
        result["decided_calibrated"],
    ) == expected


def test_power_rule_prints_a_line_a_design_and_refuses_bad_counts(capsys):
    from bench.__main__ import main

    assert main(["power", "--rule", "--sessions", "2", "--seed", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        len(lines) == 6 and lines[2].startswith("compare, 5 earlier runs") and lines[5].startswith("ab, no")
    )
    assert max(len(line) for line in lines) <= 100
    assert main(["power", "--rule", "--sessions", "0"]) == 2
    assert "--sessions" in capsys.readouterr().err

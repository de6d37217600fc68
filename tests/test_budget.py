"""The fast form of the epoch benchmark is sized to its budget before anything runs."""

from __future__ import annotations

import pytest

from bench.measure.budget import (
    DoesNotFit,
    EpochPlan,
    candidate_plans,
    plan_cost,
    plan_epoch,
    reused_batch,
    reused_plan,
)

PLANS = candidate_plans(16, slice_steps=2, slice_rounds=3, slice_warmup=1)


def test_the_candidates_shrink_from_two_batches_to_one_sample():
    assert [(p.max_samples, p.rounds, p.warmup_rounds, p.warmup_steps, p.batch_size) for p in PLANS] == [
        (32, 3, 1, 2, 0),
        (16, 1, 0, 1, 0),
        *((size, 1, 0, 1, size) for size in (8, 4, 2, 1)),
    ]


def test_the_cost_counts_warm_up_train_steps_and_evaluation():
    # per worker: 2 warm-up steps + 4 rounds x (2 train steps + 2 eval batches at a third of a step)
    assert plan_cost(PLANS[0], 1 / 16, 16, 256, 50, 3) == pytest.approx(3 * (2 + 4 * (2 + 2 / 3)))
    # the whole epoch: every train step and eval batch (a partial batch counts as a step)
    assert plan_cost(EpochPlan(0, 1, 0), 1 / 16, 16, 100, 20, 1) == pytest.approx(2 + 7 + 2 / 3)
    # at batch 4, a step costs a quarter of one at 16
    assert plan_cost(PLANS[3], 1 / 16, 16, 100, 20, 1) == pytest.approx(0.25 * (1 + 1 + 1 / 3))


def test_the_largest_plan_that_fits_is_chosen():
    fast = plan_epoch(PLANS, 0.02, 16, 256, 50, 3, 60.0)  # the embedded default: 0.32 s a step
    assert fast.max_samples == 32 and fast.estimated_seconds == pytest.approx(
        plan_cost(PLANS[0], 0.02, 16, 256, 50, 3)
    )
    slow = plan_epoch(PLANS, 25 / 16, 16, 108, 21, 3, 60.0)  # a 50k-vocabulary model: 25 s a step
    assert (slow.max_samples, slow.batch_size) == (4, 4)
    assert "the first 4 of 108 samples a round, at batch 4 (the run's is 16)" in slow.describe(108, 16)


def test_a_step_that_cannot_fit_skips_with_its_estimate():
    """longformer-base at 1024 tokens on a CPU: about 20 s a sample."""
    with pytest.raises(
        DoesNotFit, match=r"about 20.0 s per sample here \(measured at batch 1\), 320 s at batch 16"
    ) as err:
        plan_epoch(PLANS, 20.0, 16, 256, 32, 3, 60.0)
    assert (
        "the first 1 of 256 samples a round, at batch 1 (the run's is 16) in 3 workers needs about 140 s"
        in str(err.value)
    )


def saved_slice(max_samples: int | None, batch: int, rounds: int, warmup: int) -> dict:
    """What a saved row of the epoch slice records of its work (bench/benchmarks/test_epoch_throughput.py)."""
    return {
        "max_samples": max_samples,
        "batch_size": batch,
        "rounds_per_worker": rounds,
        "warmup_rounds_per_worker": warmup,
        "p_whole": 40.0,
    }


def test_a_saved_plan_is_reused_whatever_the_machine_s_speed_today():
    """The plan is the series' (chosen on its first run); one the candidates no longer hold, or no
    saved row, is chosen afresh."""
    assert reused_plan(PLANS, saved_slice(32, 16, 3, 1), 16) == PLANS[0]
    assert reused_plan(PLANS, saved_slice(16, 16, 1, 0), 16) == PLANS[1]
    assert reused_plan(PLANS, saved_slice(4, 4, 1, 0), 16) == PLANS[3]
    assert reused_plan(PLANS, saved_slice(32, 16, 5, 1), 16) is None  # rounds the code no longer plans
    assert reused_plan(PLANS, {}, 16) is None
    whole = [EpochPlan(0, 2, 0), *PLANS]  # CUDA: whole epochs first
    assert reused_plan(whole, saved_slice(None, 16, 2, 0), 16) == whole[0]


def test_a_saved_training_step_batch_is_reused_while_the_profile_may_choose_it():
    assert reused_batch({"batch_size": 2}, (2, 1), 16) == 2
    assert reused_batch({"batch_size": 1}, (2, 1), 16) == 1
    assert reused_batch({"batch_size": 4}, (2, 1), 16) is None  # no longer a fast batch
    assert reused_batch({"batch_size": 2}, (2, 1), 1) is None  # over the run's batch
    assert reused_batch({}, (2, 1), 16) is None

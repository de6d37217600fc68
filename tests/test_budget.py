"""The fast form of the epoch benchmark is sized to its budget before anything runs."""

from __future__ import annotations

import pytest

from bench.measure.budget import DoesNotFit, EpochPlan, candidate_plans, plan_cost, plan_epoch

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

"""How the benchmarks sample their work: rounds and warm-up per worker process, the fast
profile's training-step batches and epoch slices.

The benchmark modules (bench/benchmarks/) arrange their tests around these, and `python -m bench
power` samples the same jobs; both read them here, since a library module never imports a
benchmark module (pyproject.toml's import contracts).
"""

from __future__ import annotations

from bench.measure.budget import EpochPlan, candidate_plans

ATTENTION_ROUNDS, ATTENTION_WARMUP = 3, 2  # per worker process
TRAIN_STEP_ROUNDS, TRAIN_STEP_WARMUP = 5, 2
FAST_BATCHES = (2, 1)  # on the CPU, the largest of these whose rounds fit TRAIN_STEP_SHARE
TRAIN_STEP_SHARE = 0.15  # of the fast profile's budget
EPOCH_ROUNDS = 1  # whole epochs per worker process
SLICE_STEPS, SLICE_ROUNDS, SLICE_WARMUP = 2, 3, 1  # batches a slice, slices per worker process
# one training step at batch 1 and a one-sample evaluation, after one untimed step: what sizes the slice
EPOCH_PROBE = EpochPlan(max_samples=1, rounds=1, warmup_rounds=0, warmup_steps=1, batch_size=1)


def slice_plans(batch: int) -> list[EpochPlan]:
    """The slices the fast epoch benchmark tries, largest first (the first is the embedded default's)."""
    return candidate_plans(batch, SLICE_STEPS, SLICE_ROUNDS, SLICE_WARMUP)


def train_step_params(attention: str, batch: int) -> dict:
    """The training-step workload's parameters: its warm-up rounds counted in its schedule."""
    return {"attention": attention, "rounds": TRAIN_STEP_ROUNDS + TRAIN_STEP_WARMUP, "batch_size": batch}

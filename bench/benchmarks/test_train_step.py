"""One FlagPerf training step (forward, backward, AdamW, schedule) on real masked batches.

Not in the fast profile: the full epoch (test_epoch_throughput.py) covers the same steps there.
"""

from __future__ import annotations

import math
import statistics

import pytest

ROUNDS, WARMUP_ROUNDS = 5, 2  # per worker process


@pytest.mark.parametrize("attention", ["hf", "blocked"])
def test_train_step(sampled, benchmark, run_spec, attention):
    """Every self-attention layer swapped to `attention` (same weights, same function)."""
    benchmark.group = "train step"
    steps = sampled(
        "training_step", {"attention": attention, "rounds": ROUNDS + WARMUP_ROUNDS}, ROUNDS, WARMUP_ROUNDS
    )
    assert all(math.isfinite(s["loss"]) for s in steps), "a training step produced a non-finite loss"
    size = run_spec.batch_size
    tokens = size * run_spec.seq_len
    step_seconds = statistics.median(benchmark.extra_info["process_medians"])
    benchmark.extra_info.update(
        attention=attention,
        batch_size=size,
        seq_len=run_spec.seq_len,
        dtype=run_spec.precision.name,
        tokens_per_step=tokens,
        tokens_per_s=tokens / step_seconds,
        samples_per_s=size / step_seconds,
    )

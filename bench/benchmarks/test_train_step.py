"""One FlagPerf training step (forward, backward, AdamW, schedule) on real masked batches."""

from __future__ import annotations

import itertools

import pytest
import torch

from bench.attention import use_attention
from bench.timing import synchronized
from bench.train import make_optimizer, make_scheduler, train_step

ROUNDS = 10
WARMUP_ROUNDS = 2


@pytest.mark.fast
@pytest.mark.parametrize("attention", ["hf", "blocked"])
def test_train_step(benchmark, run_spec, model, train_set, masker, attention):
    """Every self-attention layer swapped to `attention` (same weights, same function)."""
    benchmark.group = "train step"
    use_attention(model, attention)
    size = run_spec.batch_size
    n_batches = min(ROUNDS + WARMUP_ROUNDS, train_set.n_samples // size)
    if n_batches == 0:
        pytest.skip(f"the train set has {train_set.n_samples} samples, fewer than one batch of {size}")
    batches = []
    for i in range(n_batches):
        rows = slice(i * size, (i + 1) * size)
        masked, labels = masker(train_set.input_ids[rows], train_set.special_tokens_mask[rows])
        batches.append((masked, train_set.attention_mask[rows], labels))
    cycle = itertools.cycle(batches)
    optimizer = make_optimizer(model)
    scheduler = make_scheduler(optimizer, total_steps=ROUNDS + WARMUP_ROUNDS + 1)
    scaler = torch.amp.GradScaler(run_spec.device.type) if run_spec.precision.needs_grad_scaler else None
    losses: list[torch.Tensor] = []

    def step() -> None:
        ids, mask, labels = next(cycle)
        losses.append(
            train_step(
                model,
                optimizer,
                scheduler,
                run_spec.precision,
                run_spec.device,
                ids,
                mask,
                labels,
                scaler,
            )
        )

    benchmark.pedantic(
        synchronized(step, run_spec.device),
        rounds=ROUNDS,
        warmup_rounds=WARMUP_ROUNDS,
        iterations=1,
    )
    if benchmark.disabled:  # --benchmark-disable: run once as a test, nothing measured
        return
    tokens = size * run_spec.seq_len
    benchmark.extra_info.update(
        attention=attention,
        batch_size=size,
        seq_len=run_spec.seq_len,
        dtype=run_spec.precision.name,
        tokens_per_step=tokens,
        tokens_per_s=tokens / benchmark.stats.stats.median,
        samples_per_s=size / benchmark.stats.stats.median,
    )

"""One FlagPerf training step (forward, backward, AdamW, schedule) on real masked batches."""

from __future__ import annotations

import itertools

import pytest
import torch

from bench.attention import use_attention
from bench.distributed import World
from bench.timing import synchronized
from bench.train import (
    device_batches,
    epoch_order,
    make_grad_scaler,
    make_optimizer,
    make_scheduler,
    train_step,
)

ROUNDS = 10
WARMUP_ROUNDS = 2


@pytest.mark.fast
@pytest.mark.parametrize("attention", ["hf", "blocked"])
def test_train_step(benchmark, run_spec, model, train_set, masker, attention):
    """Every self-attention layer swapped to `attention` (same weights, same function)."""
    benchmark.group = "train step"
    use_attention(model, attention)
    world = World(1, 0, 0)
    order = epoch_order(train_set.n_samples, run_spec.seed, 0, world)
    batches = list(
        itertools.islice(
            device_batches(train_set, order, run_spec.batch_size, masker, world), ROUNDS + WARMUP_ROUNDS
        )
    )
    cycle = itertools.cycle(batches)
    optimizer = make_optimizer(model)
    scheduler = make_scheduler(optimizer, total_steps=ROUNDS + WARMUP_ROUNDS + 1)
    scaler = make_grad_scaler(run_spec.precision, run_spec.device)
    losses: list[torch.Tensor] = []

    def step() -> None:
        loss = train_step(
            model, optimizer, scheduler, run_spec.precision, run_spec.device, next(cycle), scaler
        )
        losses.append(loss)

    benchmark.pedantic(
        synchronized(step, run_spec.device), rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS, iterations=1
    )
    assert all(torch.isfinite(loss) for loss in losses), "a training step produced a non-finite loss"
    if benchmark.disabled:  # --benchmark-disable: run once as a test, nothing measured
        return
    size = batches[0].input_ids.shape[0]
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

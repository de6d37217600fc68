"""Full-epoch training throughput with FlagPerf's semantics: p_whole, p_train, p_core and more.

Each round is one epoch over the train set followed by one evaluation, as FlagPerf runs them; the
rounds are successive epochs of one training run, after a few untimed warm-up steps. Two data paths side
by side: the suite's (rows gathered and masked on the device) and FlagPerf's (DataLoader workers,
HF's collator on the host, `.item()` every step).
"""

from __future__ import annotations

import itertools
import os
import resource
import time

import pytest
import torch

from bench.distributed import World
from bench.flagperf_data import FLAGPERF_WORKERS, flagperf_batches
from bench.masking import MLMMasker
from bench.metrics import model_flops_per_sample, peak_flops, percentiles, throughputs
from bench.train import (
    device_batches,
    epoch_order,
    evaluate,
    make_grad_scaler,
    make_optimizer,
    make_scheduler,
    steps_per_epoch,
    train_epoch,
)

ROUNDS, WARMUP_STEPS = 2, 4


@pytest.mark.fast
@pytest.mark.parametrize("data_path", ["device", "flagperf"])
def test_epoch_throughput(benchmark, run_spec, model, train_set, eval_set, masker, data_path):
    benchmark.group = "epoch"
    device, precision, size = run_spec.device, run_spec.precision, run_spec.batch_size
    world = World(1, 0, 0)
    steps = steps_per_epoch(train_set.n_samples, size, world)
    optimizer = make_optimizer(model)
    scheduler = make_scheduler(optimizer, total_steps=steps * ROUNDS + WARMUP_STEPS)
    scaler = make_grad_scaler(precision, device)
    eval_masker = MLMMasker(run_spec.mask_token_id, run_spec.config.vocab_size, device, run_spec.seed + 1)
    workers = min(FLAGPERF_WORKERS, os.cpu_count() or 1)
    epochs: list[dict] = []

    def one_epoch() -> None:
        epoch = len(epochs)
        order = epoch_order(train_set.n_samples, run_spec.seed, epoch, world)
        if data_path == "device":
            batches = device_batches(train_set, order, size, masker, world)
        else:
            batches = flagperf_batches(run_spec.train, run_spec.model_dir, order, size, world, workers)
        start = time.perf_counter()
        record = train_epoch(
            model,
            optimizer,
            scheduler,
            batches,
            precision,
            device,
            world,
            size,
            epoch,
            scaler,
            read_loss_every_step=data_path == "flagperf",
        )
        accuracy = evaluate(model, eval_set, eval_masker, size, precision, device, world)
        epochs.append({"record": record, "train_seconds": time.perf_counter() - start, "accuracy": accuracy})

    warm_order = epoch_order(train_set.n_samples, run_spec.seed + 1, 0, world)
    warm_up = itertools.islice(device_batches(train_set, warm_order, size, masker, world), WARMUP_STEPS)
    train_epoch(model, optimizer, scheduler, warm_up, precision, device, world, size, -1, scaler)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    benchmark.pedantic(one_epoch, rounds=ROUNDS, iterations=1)
    if benchmark.disabled:
        return
    timed = epochs
    records = [e["record"] for e in timed]
    samples = sum(r.samples for r in records)
    step_seconds = [s for r in records for s in r.step_seconds]
    rates = throughputs(
        samples,
        sum(e["train_seconds"] for e in timed),
        step_seconds,
        [s for r in records for s in r.core_seconds],
    )
    flops = model_flops_per_sample(run_spec.config, run_spec.seq_len)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    peak = peak_flops(gpu, precision.name, run_spec.peak_tflops and run_spec.peak_tflops * 1e12)
    benchmark.extra_info.update(
        data_path=data_path,
        attention=run_spec.attention,
        batch_size=size,
        seq_len=run_spec.seq_len,
        dtype=precision.name,
        world_size=world.size,
        epochs=len(timed),
        samples=samples,
        **rates,
        tokens_per_s=rates["p_train"] * run_spec.seq_len,
        step_seconds=percentiles(step_seconds),
        model_flops_per_sample=flops,
        achieved_flops_per_s=rates["p_core"] * flops,
        mfu=rates["p_core"] * flops / peak if peak else None,
        peak_memory_bytes=(
            torch.cuda.max_memory_allocated(device)
            if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        ),
        peak_memory_kind="cuda max allocated" if device.type == "cuda" else "process max RSS",
        eval_accuracy=[e["accuracy"] for e in epochs],
        final_loss=records[-1].losses[-1],
    )

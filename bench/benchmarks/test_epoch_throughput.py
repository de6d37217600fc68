"""Full-epoch training throughput with FlagPerf's semantics: p_whole, p_train, p_core and more.

Each round is one epoch over the train set followed by one evaluation, as FlagPerf runs them; the
rounds are successive epochs of one training run, after a few untimed warm-up steps. Two data paths side
by side: the suite's (rows gathered and masked on the device) and FlagPerf's (DataLoader workers,
HF's collator on the host, `.item()` every step).
"""

from __future__ import annotations

import resource
import time

import pytest
import torch

from bench.distributed import World
from bench.metrics import efficiency, model_flops_per_sample, peak_flops
from bench.runner import Trainer
from bench.train import (
    steps_per_epoch,
    summarize,
)

ROUNDS, WARMUP_STEPS = 2, 4


@pytest.mark.fast
@pytest.mark.parametrize("data_path", ["device", "flagperf"])
def test_epoch_throughput(benchmark, run_spec, model, train_set, eval_set, data_path):
    benchmark.group = "epoch"
    device, precision, size = run_spec.device, run_spec.precision, run_spec.batch_size
    world = World(1, 0, 0)
    steps = steps_per_epoch(train_set.n_samples, size, world)
    trainer = Trainer(
        run_spec, world, model, train_set, eval_set, steps * ROUNDS + WARMUP_STEPS, data_path=data_path
    )
    epochs: list[dict] = []

    def one_epoch() -> None:
        start = time.perf_counter()
        record = trainer.epoch(len(epochs))
        accuracy = trainer.evaluate().value
        epochs.append({"record": record, "train_seconds": time.perf_counter() - start, "accuracy": accuracy})

    trainer.warm_up(WARMUP_STEPS)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    benchmark.pedantic(one_epoch, rounds=ROUNDS, iterations=1)
    if benchmark.disabled:
        return
    summary = summarize([e["record"] for e in epochs], sum(e["train_seconds"] for e in epochs))
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    peak = peak_flops(gpu, precision.name, run_spec.peak_flops_per_s)
    flops = model_flops_per_sample(run_spec.config, run_spec.seq_len)
    benchmark.extra_info.update(
        data_path=data_path,
        attention=run_spec.attention,
        batch_size=size,
        seq_len=run_spec.seq_len,
        dtype=precision.name,
        world_size=world.size,
        epochs=len(epochs),
        **summary,
        tokens_per_s=summary["p_train"] * run_spec.seq_len,
        **efficiency(summary["p_core"], flops, peak),
        peak_memory_bytes=(
            torch.cuda.max_memory_allocated(device)
            if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        ),
        peak_memory_kind="cuda max allocated" if device.type == "cuda" else "process max RSS",
        eval_accuracy=[e["accuracy"] for e in epochs],
        final_loss=epochs[-1]["record"].losses[-1],
    )

"""Full-epoch training throughput with FlagPerf's semantics: p_whole, p_train, p_core and more.

Each round is one epoch over the train set followed by one evaluation, as FlagPerf runs them, in each
worker process after a few untimed warm-up steps (bench/workloads.py). Two data paths: the suite's
(rows gathered and masked on the device) and FlagPerf's (DataLoader workers, HF's collator on the
host, `.item()` every step), to see what the data path costs.

The fast profile (and so `bench ab -m fast`) runs an epoch slice instead: the same code, each round
capped at the first SLICE_STEPS batches of an epoch and of the eval set, so that a round takes
about a second and repeats often enough to compare.
"""

from __future__ import annotations

import pytest
import torch

from bench.metrics import efficiency, model_flops_per_sample, peak_flops
from bench.train import summarize

ROUNDS = 1  # whole epochs per worker process
SLICE_STEPS, SLICE_ROUNDS, SLICE_WARMUP = 2, 3, 1  # batches a slice, slices per worker process


def epoch_slice_samples(run_spec) -> int:
    return SLICE_STEPS * run_spec.batch_size


def record_epochs(sampled, benchmark, run_spec, data_path: str, max_samples: int = 0) -> None:
    """Sample whole epochs (or slices of `max_samples`) and file FlagPerf's throughputs over them."""
    benchmark.group = "epoch slice" if max_samples else "epoch"
    device, precision = run_spec.device, run_spec.precision
    rounds, warmup = (SLICE_ROUNDS, SLICE_WARMUP) if max_samples else (ROUNDS, 0)
    params = {"data_path": data_path, "rounds": rounds + warmup, "max_samples": max_samples}
    epochs = sampled("epoch", params, rounds, warmup)
    summary = summarize([e["record"] for e in epochs], sum(e["train_seconds"] for e in epochs))
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    peak = peak_flops(gpu, precision.name, run_spec.peak_flops_per_s)
    flops = model_flops_per_sample(run_spec.config, run_spec.seq_len)
    benchmark.extra_info.update(
        data_path=data_path,
        attention=run_spec.attention,
        batch_size=run_spec.batch_size,
        seq_len=run_spec.seq_len,
        dtype=precision.name,
        world_size=1,
        epochs=len(epochs),
        max_samples=max_samples or None,  # the slice's cap; None: whole epochs
        train_set_samples=run_spec.train.n_samples,
        eval_samples=epochs[-1]["eval_samples"],
        **summary,
        tokens_per_s=summary["p_train"] * run_spec.seq_len,
        **efficiency(summary["p_core"], flops, peak),
        peak_memory_bytes=max(e["peak_memory_bytes"] for e in epochs),
        peak_memory_kind="cuda max allocated" if device.type == "cuda" else "worker process max RSS",
        eval_accuracy=[e["accuracy"] for e in epochs],
        final_loss=epochs[-1]["record"].losses[-1],
    )


@pytest.mark.fast
def test_epoch_slice_throughput(sampled, benchmark, run_spec):
    """The suite's data path, each round the first SLICE_STEPS batches of an epoch and of the eval set."""
    record_epochs(sampled, benchmark, run_spec, "device", epoch_slice_samples(run_spec))


def test_epoch_throughput(sampled, benchmark, run_spec):
    """The suite's data path (whole epochs over all worker processes summed into one summary)."""
    record_epochs(sampled, benchmark, run_spec, "device")


def test_epoch_throughput_flagperf_path(sampled, benchmark, run_spec):
    """FlagPerf's data path, beside the suite's in full runs (it costs too much for the fast profile)."""
    record_epochs(sampled, benchmark, run_spec, "flagperf")

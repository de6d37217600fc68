"""Full-epoch training throughput with FlagPerf's semantics: p_whole, p_train, p_core and more.

Each round is one epoch over the train set followed by one evaluation, as FlagPerf runs them, in each
worker process after a few untimed warm-up steps (bench/measure/workloads.py). Two data paths: the suite's
(rows gathered and masked on the device) and FlagPerf's (DataLoader workers, HF's collator on the
host, `.item()` every step), to see what the data path costs.

The fast profile (and so `bench ab -m fast`) runs an epoch slice instead: the same code, each round
capped at the first SLICE_STEPS (bench/measure/jobs.py) batches of an epoch and of the eval set, so
that a round takes about a second and repeats often enough to compare. Its size is planned to fit
the fast profile's budget with any model and data (bench/measure/budget.py): a smaller slice for a
costly step, the whole epoch on CUDA when that fits too, and a skip, with the estimate, when not even
one step fits.
"""

from __future__ import annotations

import pytest
import torch

from bench.harness.compiled import compile_extra_info
from bench.harness.metrics import efficiency, model_flops_per_sample, peak_flops
from bench.harness.train import summarize
from bench.measure.budget import (
    EPOCH_SHARE,
    EVAL_COST,
    FAST_BUDGET_S,
    DoesNotFit,
    EpochPlan,
    plan_epoch,
    reused_plan,
)
from bench.measure.jobs import EPOCH_PROBE, EPOCH_ROUNDS, slice_plans
from bench.measure.sampling import Job


def fast_plan(probe, run_spec, saved) -> tuple[EpochPlan, str]:
    """(plan, where it was chosen): the plan of the series' newest saved run (`saved`,
    fixtures/storage.py: chosen once, so that a slow day does not shrink the slice), else the
    largest fast form whose expected time fits the budget (bench/measure/budget.py), or a skip: on
    CUDA whole epochs first, then slices of SLICE_STEPS batches, then smaller ones."""
    size = run_spec.batch_size
    plans = slice_plans(size)
    if run_spec.device.type == "cuda":
        plans.insert(0, EpochPlan(0, EPOCH_ROUNDS, 0))
    if saved is not None and (plan := reused_plan(plans, saved.extra, size)):
        return plan, f"reused from {saved.run}"
    round_s = probe(
        Job("epoch", EPOCH_PROBE.params("device"), EPOCH_PROBE.rounds, EPOCH_PROBE.warmup_rounds)
    ).median
    try:
        return plan_epoch(
            plans,
            round_s / (1 + EVAL_COST),
            size,
            run_spec.train.n_samples,
            run_spec.eval.n_samples,
            run_spec.workers,
            FAST_BUDGET_S * EPOCH_SHARE,
        ), "probed"
    except DoesNotFit as err:
        pytest.skip(str(err))


def peak_memory(run_spec, epochs: list[dict], exact: dict) -> dict:
    """The training's peak tensor memory, its state included, from the workers' counted round
    (bench/measure/counts.py, never timed): on CUDA the allocator's, on the CPU counted tensor by
    tensor. The same figure whatever ran before it in the worker, unlike the worker's max RSS
    (everything in the process, torch itself), kept beside it."""
    return {
        "peak_tensor_bytes": exact["peak_bytes"],
        "peak_tensor_kind": "cuda allocator" if run_spec.device.type == "cuda" else "tracked",
        "process_max_rss_bytes": max(e["process_max_rss_bytes"] for e in epochs),
    }


def record_epochs(sampled, benchmark, run_spec, data_path: str, plan: EpochPlan, planned: str = "") -> None:
    """Sample whole epochs (or slices of `plan.max_samples`) and file FlagPerf's throughputs over
    them (and, for the fast form, where its plan was chosen: `planned`)."""
    what = plan.describe(run_spec.train.n_samples, run_spec.batch_size)
    benchmark.group = f"epoch slice: {what}" if plan.max_samples else "epoch"
    device, precision = run_spec.device, run_spec.precision
    epochs = sampled("epoch", plan.params(data_path), plan.rounds, plan.warmup_rounds)
    summary = summarize([e["record"] for e in epochs], sum(e["train_seconds"] for e in epochs))
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    peak = peak_flops(gpu, precision.name, run_spec.peak_flops_per_s)
    flops = model_flops_per_sample(run_spec.config, run_spec.seq_len)
    benchmark.extra_info.update(
        data_path=data_path,
        attention=run_spec.attention,
        batch_size=plan.batch_size or run_spec.batch_size,  # what the steps trained at
        seq_len=run_spec.seq_len,
        dtype=precision.name,
        world_size=1,
        epochs=len(epochs),
        max_samples=plan.max_samples or None,  # the slice's cap; None: whole epochs
        estimated_seconds=plan.estimated_seconds or None,  # the plan's expected time, when planned
        train_set_samples=run_spec.train.n_samples,
        eval_samples=epochs[-1]["eval_samples"],
        **summary,
        tokens_per_s=summary["p_train"] * run_spec.seq_len,
        **efficiency(summary["p_core"], flops, peak),
        **peak_memory(run_spec, epochs, benchmark.extra_info["exact"]),
        eval_accuracy=[e["accuracy"] for e in epochs],
        final_loss=epochs[-1]["record"].losses[-1],
        **({"planned": planned} if planned else {}),
        **compile_extra_info(epochs),
    )


@pytest.mark.fast
def test_epoch_slice_throughput(sampled, probe, benchmark, run_spec, saved_row):
    """The suite's data path, each round the first batches of an epoch and of the eval set, as many
    as the fast profile's budget allows (see fast_plan)."""
    plan, planned = fast_plan(probe, run_spec, saved_row)
    record_epochs(sampled, benchmark, run_spec, "device", plan, planned)


def test_epoch_throughput(sampled, benchmark, run_spec):
    """The suite's data path (whole epochs over all worker processes summed into one summary)."""
    record_epochs(sampled, benchmark, run_spec, "device", EpochPlan(0, EPOCH_ROUNDS, 0))


def test_epoch_throughput_flagperf_path(sampled, benchmark, run_spec):
    """FlagPerf's data path, beside the suite's in full runs (it costs too much for the fast profile)."""
    record_epochs(sampled, benchmark, run_spec, "flagperf", EpochPlan(0, EPOCH_ROUNDS, 0))

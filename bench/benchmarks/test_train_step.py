"""One FlagPerf training step (forward, backward, AdamW, schedule) on real masked batches.

`test_train_step_fast` is the fast profile's whole-training benchmark: the step through the whole
model (embeddings, every layer, the MLM head and loss, the optimizer and schedule) at a batch small
enough that a round repeats many times in an A/B budget, so that a change anywhere in training, not
only in attention, is judged. The full runs' `test_train_step` trains at the run's batch.
"""

from __future__ import annotations

import math
import statistics

import pytest

from bench.harness.compiled import compile_extra_info
from bench.measure.budget import FAST_BUDGET_S, reused_batch
from bench.measure.jobs import (
    FAST_BATCHES,
    TRAIN_STEP_ROUNDS,
    TRAIN_STEP_SHARE,
    TRAIN_STEP_WARMUP,
    train_step_params,
)
from bench.measure.sampling import Job


def record_steps(
    sampled, benchmark, run_spec, attention: str, batch: int, planned: str = "", compile_mode: str = ""
) -> None:
    """Sample the step in every worker; file its throughput at the batch it trained at (and, for
    the fast form, where that batch was chosen: `planned`) and, compiled (`compile_mode`, else the
    run's --compile), the compile's facts (bench/harness/compiled.py)."""
    params = train_step_params(attention, batch)
    steps = sampled(
        "training_step",
        {**params, "compile_mode": compile_mode} if compile_mode else params,
        TRAIN_STEP_ROUNDS,
        TRAIN_STEP_WARMUP,
    )
    assert all(math.isfinite(s["loss"]) for s in steps), "a training step produced a non-finite loss"
    tokens = batch * run_spec.seq_len
    step_seconds = statistics.median(benchmark.extra_info["process_medians"])
    benchmark.extra_info.update(
        attention=attention,
        batch_size=batch,
        seq_len=run_spec.seq_len,
        dtype=run_spec.precision.name,
        tokens_per_step=tokens,
        tokens_per_s=tokens / step_seconds,
        samples_per_s=batch / step_seconds,
        **({"planned": planned} if planned else {}),
        **compile_extra_info(steps),
    )


def fast_batch(probe, run_spec, saved) -> tuple[int, str]:
    """(batch, where it was chosen): the run's batch on CUDA; on the CPU the batch of the series'
    newest saved run (`saved`, fixtures/storage.py: chosen once, so that a slow day does not halve
    it), else the largest of FAST_BATCHES whose rounds in every worker fit TRAIN_STEP_SHARE of the
    budget, from a measured step at batch 1 (scaled linearly: an overestimate where a larger batch
    uses the machine better), or a skip that says why."""
    if run_spec.device.type == "cuda":
        return run_spec.batch_size, "the run's batch"
    if saved is not None and (batch := reused_batch(saved.extra, FAST_BATCHES, run_spec.batch_size)):
        return batch, f"reused from {saved.run}"
    job = Job("training_step", {"attention": run_spec.attention, "rounds": 2, "batch_size": 1}, 1, 1)
    per_sample = probe(job).median
    budget, rounds = FAST_BUDGET_S * TRAIN_STEP_SHARE, TRAIN_STEP_ROUNDS + TRAIN_STEP_WARMUP
    for batch in (b for b in FAST_BATCHES if b <= run_spec.batch_size):
        cost = run_spec.workers * rounds * per_sample * batch
        if cost <= budget:
            return batch, "probed"
    pytest.skip(
        f"one training step at batch 1 takes {per_sample:.1f} s here: its {rounds} rounds "
        f"in {run_spec.workers} workers would take {cost:.0f} s, over the {budget:.0f} s it may have"
    )


@pytest.mark.fast
@pytest.mark.pr
def test_train_step_fast(sampled, probe, benchmark, run_spec, saved_row):
    """The run's attention, a small batch (fast_batch): the whole training step, judged by `ab`."""
    benchmark.group = "train step (fast)"
    batch, planned = fast_batch(probe, run_spec, saved_row)
    record_steps(sampled, benchmark, run_spec, run_spec.attention, batch, planned)


@pytest.mark.compiled
def test_train_step_compiled(sampled, probe, benchmark, run_spec, saved_row):
    """The fast step under torch.compile (inductor, mode `default`), whatever --compile says: the
    compiled path's row in CI, with its compile latency, parity check and dynamo's counts."""
    if run_spec.compile != "off":
        pytest.skip(f"--compile {run_spec.compile}: test_train_step_fast itself trains compiled")
    benchmark.group = "train step (fast, compiled)"
    batch, planned = fast_batch(probe, run_spec, saved_row)
    record_steps(sampled, benchmark, run_spec, run_spec.attention, batch, planned, compile_mode="default")


@pytest.mark.parametrize("attention", ["hf", "blocked"])
def test_train_step(sampled, benchmark, run_spec, attention):
    """Every self-attention layer swapped to `attention` (same weights, same function), the run's batch."""
    benchmark.group = "train step"
    record_steps(sampled, benchmark, run_spec, attention, run_spec.batch_size)

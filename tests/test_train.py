"""The training loop keeps FlagPerf's semantics: order, masks, metrics, divergence, FLOPs."""

from __future__ import annotations

import itertools
import re
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DistributedSampler

from bench.base.errors import BenchInputError
from bench.harness.distributed import World
from bench.harness.masking import MLMMasker
from bench.harness.metrics import model_flops_per_sample, percentiles, throughputs
from bench.harness.runner import StopRules, run_training, stop_rules
from bench.harness.train import (
    TrainingDiverged,
    device_batches,
    epoch_order,
    evaluate,
    make_optimizer,
    make_scheduler,
    steps_per_epoch,
    train_epoch,
    train_step,
)
from bench.measure.counts import counted_flops


@pytest.mark.parametrize(("n", "size"), [(10, 1), (10, 2), (11, 3), (5, 8)])
def test_epoch_order_is_distributed_samplers(n, size):
    for epoch in (0, 3):
        order = epoch_order(n, seed=42, epoch=epoch, world=World(size, 0, 0))
        for rank in range(size):
            sampler = DistributedSampler(range(n), num_replicas=size, rank=rank, seed=42)
            sampler.set_epoch(epoch)
            assert order[rank::size] == list(sampler)


def test_flagperf_sampler_repeats_one_order():
    world = World(1, 0, 0)
    assert epoch_order(50, 42, 0, world, reshuffle=False) == epoch_order(50, 42, 7, world, reshuffle=False)
    assert epoch_order(50, 42, 0, world) != epoch_order(50, 42, 1, world)


def test_batches_do_not_depend_on_the_world_size(run_spec, train_set):
    """Two ranks' k-th batches together are one process's k-th batch of twice the size, masks too."""
    order = epoch_order(train_set.n_samples, run_spec.seed, 0, World(2, 0, 0))

    def batches(world: World, size: int):
        masker = MLMMasker(run_spec.mask_token_id, run_spec.config.vocab_size, run_spec.device, 5)
        return list(itertools.islice(device_batches(train_set, order, size, masker, world), 3))

    single = batches(World(1, 0, 0), 8)
    ranks = [batches(World(2, r, 0), 4) for r in range(2)]
    for k, whole in enumerate(single):
        for rank in range(2):
            assert torch.equal(ranks[rank][k].input_ids, whole.input_ids[rank::2])
            assert torch.equal(ranks[rank][k].labels, whole.labels[rank::2])
            assert ranks[rank][k].input_ids.is_contiguous()


def test_steps_per_epoch_counts_the_partial_batch():
    assert steps_per_epoch(255, 16, World(1, 0, 0)) == 16
    assert steps_per_epoch(255, 16, World(2, 0, 0)) == 8
    assert steps_per_epoch(256, 16, World(1, 0, 0)) == 16


class NanAfter(torch.nn.Module):
    """A stand-in model whose loss turns NaN at a given step."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()))
        self.calls, self.step = 0, step

    def forward(self, input_ids, attention_mask, labels):
        loss = self.weight * 1.0 if self.calls != self.step else self.weight * float("nan")
        self.calls += 1
        return SimpleNamespace(loss=loss)


@pytest.mark.parametrize("step", [0, 3, 60])
def test_nan_loss_stops_the_epoch_and_names_the_step(run_spec, train_set, masker, step):
    model = NanAfter(step)
    optimizer = make_optimizer(model)
    world = World(1, 0, 0)
    order = epoch_order(train_set.n_samples, 0, 0, world) * 8  # long enough for step 60
    batches = device_batches(train_set, order, 2, masker, world)
    with pytest.raises(TrainingDiverged, match=f"loss is nan at epoch 2, step {step}:"):
        train_epoch(
            model,
            optimizer,
            make_scheduler(optimizer, 100),
            itertools.islice(batches, 70),
            run_spec.precision,
            run_spec.device,
            world,
            2,
            epoch=2,
        )
    assert model.calls <= max(step + 1, 50 * (step // 50 + 1))  # stopped at the next check


def test_diverged_run_is_recorded_as_unfinished(run_spec):
    record = run_training(run_spec, World(1, 0, 0), n_epochs=1, max_steps=6, lr=1e12)
    assert record["finished"] is False
    assert "training diverged" in record["error"] and "step" in record["error"]


def test_finished_run_record(run_spec):
    record = run_training(run_spec, World(1, 0, 0), n_epochs=2, max_steps=2)
    assert record["finished"] and record["error"] is None
    assert record["samples"] == 2 * 2 * run_spec.batch_size
    assert len(record["eval_accuracy"]) == 3  # before training and after each epoch
    assert record["p_core"] >= record["p_train"] >= record["p_whole"] > 0
    assert record["fingerprint"] and record["machine"]["torch"] == torch.__version__


def test_throughputs_follow_flagperf_definitions():
    rates = throughputs(64, train_seconds=4.0, step_seconds=[1.0, 1.0], core_seconds=[0.5, 0.5])
    assert rates == {"p_whole": 16.0, "p_train": 32.0, "p_core": 64.0}


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentiles(values) == {"p50": 50.0, "p90": 90.0, "p99": 99.0}
    assert percentiles([3.0]) == {"p50": 3.0, "p90": 3.0, "p99": 3.0}


def test_model_flops_formula_agrees_with_the_flop_counter(run_spec, model, train_set, masker):
    """The formula (useful work) and torch's counter (executed matmuls) agree within 15%."""
    ids, labels = masker(train_set.input_ids[:2], train_set.special_tokens_mask[:2])
    counted = counted_flops(
        lambda: model(
            input_ids=ids, attention_mask=train_set.attention_mask[:2], labels=labels
        ).loss.backward()
    )
    formula = 2 * model_flops_per_sample(run_spec.config, run_spec.seq_len)
    assert counted == pytest.approx(formula, rel=0.15)


def test_longformer_base_flops_per_sample():
    config = SimpleNamespace(
        hidden_size=768, intermediate_size=3072, vocab_size=50265, attention_window=[512] * 12
    )
    assert model_flops_per_sample(config, 1024) == pytest.approx(8.2e11, rel=0.01)


def test_evaluate_counts_every_masked_position(run_spec, model, eval_set):
    masker = MLMMasker(run_spec.mask_token_id, run_spec.config.vocab_size, run_spec.device, 3)
    accuracy = evaluate(model, eval_set, masker, 16, run_spec.precision, run_spec.device, World(1, 0, 0))
    again = MLMMasker(run_spec.mask_token_id, run_spec.config.vocab_size, run_spec.device, 3)
    positions = 0
    for start in range(0, eval_set.n_samples, 16):
        _, labels = again(
            eval_set.input_ids[start : start + 16], eval_set.special_tokens_mask[start : start + 16]
        )
        positions += int((labels != -100).sum())
    assert accuracy.positions == positions and 0 <= accuracy.hits <= positions
    assert model.training  # evaluate restores the mode


def test_train_step_updates_the_weights(run_spec, model, train_set, masker):
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = make_optimizer(model, lr=1e-3)
    batch = next(device_batches(train_set, list(range(16)), 4, masker, World(1, 0, 0)))
    loss = train_step(
        model, optimizer, make_scheduler(optimizer, 10), run_spec.precision, run_spec.device, batch
    )
    assert torch.isfinite(loss)
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]
    assert sum(changed) > len(changed) // 2  # the unused global projections keep theirs


@pytest.mark.parametrize(
    ("stop", "status", "message"),
    [
        (StopRules(target_accuracy=0.99), "max_epochs", "did not converge: accuracy"),
        (
            StopRules(target_accuracy=0.99, time_budget_s=1e-6),
            "time_budget",
            "time budget of 1e-06 s ran out",
        ),
        (StopRules(target_accuracy=0.99, patience=1), "no_improvement", "no improvement over 1 evaluations"),
    ],
)
def test_runs_that_stop_short_say_why_and_keep_what_they_measured(run_spec, stop, status, message):
    events: list[dict] = []
    record = run_training(run_spec, World(1, 0, 0), 2, max_steps=1, lr=0.0, stop=stop, on_event=events.append)
    assert record["status"] == status and not record["finished"]
    assert message in record["error"] and "target 0.99" in record["error"]
    assert record["samples"] > 0 and len(record["eval_accuracy"]) >= 2
    assert events[0]["event"] == "run_start" and events[-1]["event"] == "run_stop"
    assert events[-1]["status"] == status


def test_reaching_the_target_records_the_time_to_it(run_spec):
    record = run_training(run_spec, World(1, 0, 0), 3, max_steps=1, stop=StopRules(target_accuracy=1e-9))
    assert record["status"] == "converged" and record["finished"]
    assert record["time_to_target_s"] == record["eval_seconds"][1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("1.5", None, None), "--target-acc 1.5: an accuracy lies in (0, 1]"),
        (("x", None, None), "--target-acc 'x': not a number"),
        ((None, "-3", None), "--time-budget -3.0: must be positive"),
        ((None, None, "0"), "--patience 0: must be positive"),
    ],
)
def test_bad_stop_options(args, message):
    with pytest.raises(BenchInputError, match=re.escape(message)):
        stop_rules(*args)


def test_an_epoch_slice_trains_and_evaluates_the_first_samples_of_each_epoch(run_spec):
    """The fast profile's epoch round: capped at `max_samples` of the epoch and of the eval set, on
    through successive epochs; without a cap a round is the whole epoch and the whole eval set."""
    from bench.measure.workloads import epoch

    size = run_spec.batch_size
    sliced = epoch(run_spec, "device", rounds=2, max_samples=2 * size - 1)  # a partial batch rounds up
    rounds = [sliced.step(), sliced.step()]
    assert [r["record"].epoch for r in rounds] == [0, 1]
    assert all(r["record"].steps == 2 and r["record"].samples == 2 * size for r in rounds)
    assert all(r["eval_samples"] == 2 * size - 1 for r in rounds)
    whole = epoch(run_spec, "device", rounds=1).step()
    assert whole["record"].steps == steps_per_epoch(run_spec.train.n_samples, size, World(1, 0, 0))
    assert whole["eval_samples"] == run_spec.eval.n_samples


def test_mfu_peaks_match_a_card_by_its_whole_name():
    """An H100 PCIe peaks at 756 bf16 TFLOP/s, an SXM at 989: a substring match would take one for
    the other. Unknown parts (an NVL) get no peak, unless --peak-tflops gives one."""
    from bench.harness.metrics import peak_flops

    assert peak_flops("NVIDIA H100 80GB HBM3", "bf16") == 989.5e12
    assert peak_flops("NVIDIA H100 PCIe", "bf16") == 756e12
    assert peak_flops("NVIDIA H200", "fp32") == 67e12
    assert peak_flops("NVIDIA H100 NVL", "bf16") is None and peak_flops("NVIDIA H200 NVL", "bf16") is None
    assert peak_flops("Tesla V100-SXM2-32GB", "bf16") is None  # no bf16 tensor cores
    assert peak_flops(None, "fp32") is None and peak_flops("NVIDIA H100 NVL", "bf16", 835e12) == 835e12

"""Small harness pieces: FlagPerf's block grouping, reproducible npz files, precision, timing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.harness.device import PRECISIONS, resolve_precision
from bench.harness.prepare import group_into_blocks, write_npz
from bench.harness.train import decays, make_optimizer


def test_grouping_drops_the_remainder_of_each_group():
    rows = [[0, 10 + i, 2] for i in range(5)]  # five lines of 3 tokens
    specials = [[1, 0, 1]] * 5
    out = group_into_blocks(rows, specials, block_len=4, lines_per_group=2)
    # groups: lines 0-1 (6 tokens -> 1 block), 2-3 (6 -> 1 block), 4 (3 -> none)
    assert out["input_ids"].tolist() == [[0, 10, 2, 0], [0, 12, 2, 0]]
    assert out["special_tokens_mask"].tolist() == [[1, 0, 1, 1], [1, 0, 1, 1]]
    assert (out["attention_mask"] == 1).all()
    assert [out[k].dtype for k in ("input_ids", "attention_mask", "special_tokens_mask")] == [
        np.int32,
        np.int8,
        np.int8,
    ]


def test_write_npz_is_reproducible_and_loads_like_savez(tmp_path):
    arrays = {"input_ids": np.arange(12, dtype=np.int32).reshape(3, 4)}
    write_npz(tmp_path / "a.npz", arrays)
    write_npz(tmp_path / "b.npz", arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as npz:
        assert np.array_equal(npz["input_ids"], arrays["input_ids"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz"]  # no temp file left


def test_autocast_precision_runs_matmuls_in_its_dtype():
    device = torch.device("cpu")
    a = torch.randn(8, 8)
    with resolve_precision("bf16", device).active(device):
        assert (a @ a).dtype is torch.bfloat16
    with resolve_precision("fp32", device).active(device):
        assert (a @ a).dtype is torch.float32


def test_precision_restores_tf32_flags():
    before = torch.backends.cuda.matmul.allow_tf32
    with PRECISIONS["tf32"].active(torch.device("cpu")):
        assert torch.backends.cuda.matmul.allow_tf32
    assert torch.backends.cuda.matmul.allow_tf32 == before


def test_only_fp16_needs_a_grad_scaler():
    assert [name for name, p in PRECISIONS.items() if p.needs_grad_scaler] == ["fp16"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("longformer.encoder.layer.0.attention.self.query.weight", True),
        ("longformer.encoder.layer.0.attention.self.query.bias", False),
        ("longformer.encoder.layer.0.output.LayerNorm.weight", False),
        ("lm_head.dense.weight", True),
    ],
)
def test_weight_decay_spares_biases_and_layernorm(name, expected):
    assert decays(name) is expected


def test_optimizer_groups_cover_every_parameter_once(model):
    optimizer = make_optimizer(model)
    grouped = [id(p) for group in optimizer.param_groups for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]


def test_tf32_holds_through_backward_and_the_optimizer(run_spec, model, train_set, masker):
    """--dtype tf32: the flags are read when each matmul runs, and backward runs after the forward's
    context; a training step keeps TF32 on for all of it (and restores the flags after)."""
    from bench.harness.train import Batch, make_optimizer, make_scheduler, train_step

    seen: list[bool] = []
    for parameter in model.parameters():
        parameter.register_hook(lambda grad: seen.append(torch.backends.cuda.matmul.allow_tf32))
    ids, labels = masker(train_set.input_ids[:2], train_set.special_tokens_mask[:2])
    batch = Batch(ids, train_set.attention_mask[:2], labels)
    optimizer = make_optimizer(model)
    before = torch.backends.cuda.matmul.allow_tf32
    train_step(model, optimizer, make_scheduler(optimizer, 1), PRECISIONS["tf32"], run_spec.device, batch)
    assert seen and all(seen)  # every gradient was computed with TF32 on
    assert torch.backends.cuda.matmul.allow_tf32 == before


def test_cuda_step_marks_go_on_the_run_devices_stream(monkeypatch):
    """--device cuda:1: an event recorded without a stream lands on the current device's (cuda:0
    unless set), so Marks names the run's device. Checked here with torch.cuda stood in for, since
    only a GPU runs it for real."""
    from bench.harness import timing

    streams: list[object] = []

    class Event:
        def __init__(self, enable_timing: bool) -> None:
            assert enable_timing

        def record(self, stream=None) -> None:
            streams.append(stream)

    monkeypatch.setattr(timing.torch.cuda, "Event", Event)
    monkeypatch.setattr(timing.torch.cuda, "current_stream", lambda device: f"stream of {device}")
    timing.Marks(torch.device("cuda", 1)).mark()
    assert streams == ["stream of cuda:1"]


def test_training_memory_counts_the_state_and_the_rounds_peak_not_the_harness(model, monkeypatch):
    """The epoch benchmark's CUDA peak: parameters + gradients + AdamW's two moments, plus what the
    round allocated on top of everything resident (here faked: 1000 bytes resident, 1500 at peak)."""
    from bench.harness import metrics
    from bench.harness.train import make_optimizer

    optimizer = make_optimizer(model)
    ids = torch.ones(1, 64, dtype=torch.long)
    model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.sum().backward()
    optimizer.step()
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    trained = sum(p.numel() * p.element_size() for p in model.parameters() if p.grad is not None)
    assert 0 < trained < parameters  # the global-attention projections get no gradient, no state
    steps = sum(s["step"].numel() * s["step"].element_size() for s in optimizer.state.values())
    expected = parameters + 3 * trained + steps  # + a gradient and two moments per trained parameter
    assert metrics.training_state_bytes(model, optimizer) == expected
    allocated = {"now": 1000}
    monkeypatch.setattr(metrics.torch.cuda, "synchronize", lambda device: None)
    monkeypatch.setattr(metrics.torch.cuda, "reset_peak_memory_stats", lambda device: None)
    monkeypatch.setattr(metrics.torch.cuda, "memory_allocated", lambda device: allocated["now"])
    monkeypatch.setattr(metrics.torch.cuda, "max_memory_allocated", lambda device: 1500)
    peak = metrics.training_peak_cuda_bytes(lambda: None, torch.device("cuda"), model, optimizer)
    assert peak == expected + 500

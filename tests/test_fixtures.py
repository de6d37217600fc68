"""The fixtures put the checkpoint and data on the chosen device, fresh for every test."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from bench.harness.data import to_device
from bench.harness.model import build_model
from fixtures import EMBEDDED_MODEL_DIR


def test_tensors_live_on_the_run_device(device, model, train_set, eval_set, masker):
    assert all(p.device.type == device.type for p in model.parameters())
    for split in (train_set, eval_set):
        assert split.input_ids.device.type == device.type
        assert split.input_ids.dtype == torch.int64
        assert split.special_tokens_mask.dtype == torch.bool
    masked, labels = masker(train_set.input_ids[:2], train_set.special_tokens_mask[:2])
    assert masked.device.type == labels.device.type == device.type


def test_model_is_a_private_copy_of_the_initial_weights(model, initial_model):
    assert model is not initial_model and model.training
    with torch.no_grad():
        next(model.parameters()).add_(1.0)  # what a training step would do
    first_initial = next(initial_model.parameters())
    assert not torch.equal(next(model.parameters()), first_initial)


def test_next_test_sees_untouched_weights(model, initial_model):
    for fresh, initial in zip(model.parameters(), initial_model.parameters(), strict=True):
        assert torch.equal(fresh, initial)


def test_random_init_is_seeded(run_spec, initial_model):
    again = build_model(run_spec.model_dir, run_spec.config, "random", run_spec.seed)
    for a, b in zip(again.state_dict().values(), initial_model.state_dict().values(), strict=True):
        assert torch.equal(a.cpu(), b.cpu())


def test_pretrained_init_loads_the_shipped_weights(run_spec):
    loaded = build_model(EMBEDDED_MODEL_DIR, run_spec.config, "pretrained", run_spec.seed)
    state = loaded.state_dict()
    for name, tensor in load_file(EMBEDDED_MODEL_DIR / "model.safetensors").items():
        assert torch.equal(state[name], tensor), name


@pytest.mark.gpu
def test_cuda_fixtures_place_everything_on_the_gpu(run_spec):
    device = torch.device("cuda")
    split = to_device(run_spec.train, device)
    model = build_model(run_spec.model_dir, run_spec.config, run_spec.init, run_spec.seed).to(device)
    assert split.input_ids.is_cuda and all(p.is_cuda for p in model.parameters())
    out = model(input_ids=split.input_ids[:2], attention_mask=split.attention_mask[:2])
    assert out.logits.is_cuda and torch.isfinite(out.logits).all()


def test_loading_never_touches_the_network(monkeypatch):
    """The spec, the pretrained weights and the tokenizer all load with sockets forbidden."""
    import socket

    from transformers import AutoTokenizer

    from bench.harness.options import option_defaults
    from bench.harness.spec import build_spec

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    spec = build_spec(**{**option_defaults(), "device": "cpu", "init": "pretrained"})
    build_model(spec.model_dir, spec.config, spec.init, spec.seed)
    AutoTokenizer.from_pretrained(EMBEDDED_MODEL_DIR, local_files_only=True)


def test_initial_model_uses_the_run_attention(run_spec, initial_model):
    from transformers.models.longformer.modeling_longformer import LongformerSelfAttention

    from bench.harness.attention import CLASSES

    layers = [m for m in initial_model.modules() if isinstance(m, LongformerSelfAttention)]
    assert len(layers) == run_spec.config.num_hidden_layers
    assert {type(m) for m in layers} == {CLASSES[run_spec.attention]}


def test_config_and_precision_fixtures_describe_the_run(
    pytestconfig, run_spec, model_config, precision, model
):
    assert model_config is run_spec.config
    assert model.config.num_hidden_layers == model_config.num_hidden_layers
    assert precision is run_spec.precision and precision.name == pytestconfig.getoption("dtype")


def test_convergence_outputs_go_where_the_runs_are_saved(tmp_path):
    """--benchmark-storage (scripts/gpu_check.sh points it into $OUT): the event log and the PNG
    of a convergence run land beside the saved runs, not in the checkout."""
    from types import SimpleNamespace

    from bench.benchmarks.test_convergence import results_folder

    session = SimpleNamespace(storage=SimpleNamespace(path=tmp_path / "out"))
    assert results_folder(SimpleNamespace(_benchmarksession=session, rootpath=tmp_path)) == tmp_path / "out"
    assert results_folder(SimpleNamespace(rootpath=tmp_path)) == tmp_path / "results"

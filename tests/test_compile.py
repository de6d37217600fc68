"""The compiled path (`--compile`): the option, the series, dynamo's counts, the parity check and the
compile latency. Dynamo's `eager` backend stands in for inductor wherever inductor is not the point
(it traces and breaks graphs as inductor's front end does, in seconds); the one real inductor run is
the `compiled` benchmark row (bench/benchmarks/test_train_step.py), which `make test` runs too."""

from __future__ import annotations

import pytest
import torch

from bench.base.errors import BenchInputError
from bench.base.history import series_folder
from bench.harness.compiled import (
    COMPILE_MODES,
    ParityFailed,
    compile_counts,
    compile_extra_info,
    compile_module,
    parity,
    recompile_reasons,
    reset_counts,
)
from bench.harness.options import option_defaults
from bench.harness.spec import build_spec
from bench.measure import workloads
from bench.measure.worker import side_options

GOOD = {**option_defaults(), "device": "cpu"}


@pytest.fixture(scope="module")
def compiled_spec():
    return build_spec(**{**GOOD, "compile": "default"})


@pytest.mark.parametrize("value", ["on", "Default", "", "max_autotune", "inductor"])
def test_bad_compile_modes_are_refused_by_name(value):
    with pytest.raises(BenchInputError) as err:
        build_spec(**{**GOOD, "compile": value})
    assert str(err.value) == f"--compile {value!r}: expected one of {', '.join(COMPILE_MODES)}"


def test_a_bad_compile_mode_from_the_environment_names_its_variable(monkeypatch, capsys):
    from bench.__main__ import main

    monkeypatch.setenv("LFBENCH_COMPILE", "fast")
    assert main(["train"]) == 2
    assert "error: $LFBENCH_COMPILE 'fast': expected one of off, default," in capsys.readouterr().err


def test_the_compile_mode_is_in_the_fingerprint_series_and_header():
    specs = {mode: build_spec(**{**GOOD, "compile": mode}) for mode in COMPILE_MODES}
    folders = {mode: series_folder(spec.fingerprint()) for mode, spec in specs.items()}
    assert len(set(folders.values())) == len(COMPILE_MODES)  # no two modes share a series
    # eager runs keep the series they had before --compile existed: no key for `off`
    assert "compile" not in specs["off"].run_config()
    assert specs["max-autotune"].run_config()["compile"] == "max-autotune"
    assert "  compile off (eager)" in specs["off"].header()
    assert "  compile default (torch.compile, inductor)" in specs["default"].header()


def test_an_older_sides_server_leaves_out_options_it_lacks_only_at_their_default():
    def old_build_spec(*, device, attention="hf"):  # a checkout from before --compile
        return device, attention

    defaults = {"device": "auto", "attention": "hf", "compile": "off"}
    given = {"device": "cpu", "attention": "hf", "compile": "off"}
    assert side_options(old_build_spec, given, defaults) == {"device": "cpu", "attention": "hf"}
    with pytest.raises(ValueError, match="--compile 'default': the side's checkout has no --compile option"):
        side_options(old_build_spec, {**given, "compile": "default"}, defaults)


def test_graph_breaks_graphs_and_recompiles_are_counted_exactly_and_alike_twice(compiled_spec):
    """HF's LongformerEncoder.forward calls `is_index_global_attn.flatten().any().item()`, a
    data-dependent break. Dynamo meets it three times, once in each frame it traces down to it:
    LongformerForMaskedLM.forward (which inlines the model and the encoder), then
    LongformerModel.forward, then LongformerEncoder.forward itself: 3 graph breaks. The graphs
    compiled: the model's embeddings and masks up to the encoder, the encoder up to the `.item()`,
    the encoder's layers after it, and the MLM head and loss: 4 (the rest of LongformerModel.forward
    after the encoder is empty, and so is LongformerForMaskedLM.forward before it). The same batch
    shape every step: no recompile. The parity check's own compile comes before the reset."""
    counted = []
    for _ in range(2):
        work = workloads.training_step(compiled_spec, "hf", 4, 2, backend="eager")
        facts = work.step()
        counted.append(work.counts())
        work.eager_step()  # the same round uncompiled: counts nothing, recompiles nothing
        assert work.counts() == counted[-1]
        assert facts["recompile_reasons"] == [] and facts["compile"] == "default"
        assert facts["compile_seconds"] > 0  # dynamo's tracing, less nothing: never negative here
        assert facts["parity"]["passed"] and facts["parity"]["tolerance"] == 1e-3
    assert counted[0] == counted[1] == {"graph_breaks": 3, "unique_graphs": 4, "recompiles": 0}


def test_a_recompile_is_counted_with_its_reason():
    reset_counts()
    relu = compile_module(torch.nn.ReLU(), "default", backend="eager")
    relu(torch.ones(2))
    relu(torch.ones(3))  # a new size: recompiled with that dimension dynamic
    relu(torch.ones(4))  # dynamic now: no more recompiles
    assert compile_counts() == {"graph_breaks": 0, "unique_graphs": 2, "recompiles": 1}
    (reason,) = recompile_reasons()
    assert "size mismatch at index 0. expected 2, actual 3" in reason
    reset_counts()
    assert compile_counts() == {"graph_breaks": 0, "unique_graphs": 0, "recompiles": 0}


def test_the_attention_layer_compiles_in_one_graph(compiled_spec):
    work = workloads.attention_step(compiled_spec, "hf", 32, 512, 2, "forward_backward", backend="eager")
    facts = work.step()
    assert work.counts() == {"graph_breaks": 0, "unique_graphs": 1, "recompiles": 0}
    assert facts["parity"]["passed"] and facts["compile_seconds"] > 0


def test_the_epoch_trains_compiled_and_evaluates_eager(compiled_spec):
    work = workloads.epoch(
        compiled_spec, "device", 2, max_samples=4, warmup_steps=1, batch_size=2, backend="eager"
    )
    facts = work.step()
    assert work.counts() == {"graph_breaks": 3, "unique_graphs": 4, "recompiles": 0}
    assert facts["parity"]["passed"] and facts["compile_seconds"] > 0 and facts["record"].steps == 2


def scaled_by_1_01(graph: torch.fx.GraphModule, example_inputs):
    """A wrong compiler: it runs the graph and makes every floating output 1% larger."""

    def run(*args):
        return [o * 1.01 if o.is_floating_point() else o for o in graph(*args)]

    return run


def loss_of_linear(module: torch.nn.Module) -> torch.Tensor:
    return module(torch.arange(8.0).reshape(2, 4)).square().sum()


def test_parity_passes_for_a_faithful_compile_and_fails_a_wrong_one():
    torch.manual_seed(0)
    layer = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))  # dropout off for the check
    checked = parity(layer, loss_of_linear, "default", 1e-3, backend="eager")
    assert checked == {
        "loss_abs": 0.0,
        "loss_rel": 0.0,
        "grad_abs": 0.0,
        "grad_rel": 0.0,
        "tolerance": 1e-3,
        "passed": True,
    }
    reset_counts()
    with pytest.raises(ParityFailed, match=r"loss differs by 2\.\d\de-02 .* over the tolerance 0\.001"):
        parity(layer, loss_of_linear, "default", 1e-3, backend=scaled_by_1_01)


def test_a_wrong_compiled_model_fails_the_workload(compiled_spec):
    with pytest.raises(ParityFailed, match=r"torch\.compile \(mode default\) does not match eager"):
        workloads.attention_step(compiled_spec, "hf", 32, 512, 2, "forward_backward", backend=scaled_by_1_01)


def test_compile_extra_info_from_the_workers_facts():
    def facts(seconds: float, reasons: list[str], grad_rel: float) -> dict:
        return {
            "loss": 1.0,
            "compile": "default",
            "compile_seconds": seconds,
            "recompile_reasons": reasons,
            "parity": {"grad_rel": grad_rel, "passed": True},
        }

    rounds = [facts(3.0, [], 1e-7), facts(5.0, ["b"], 3e-7), facts(4.0, ["a", "b"], 2e-7)]
    assert compile_extra_info(rounds) == {
        "compile": "default",
        "compile_seconds": 4.0,
        "recompile_reasons": ["a", "b"],
        "parity": {"grad_rel": 3e-7, "passed": True},
    }
    assert compile_extra_info([{"loss": 1.0}, None]) == {}  # eager rounds: nothing to add

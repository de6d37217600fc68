"""The structural regressions the exact-count measurements inject (scripts/structural/sitecustomize.py).

Each injection is counted here with torch's own tools on the fast training step (the embedded model
at the fast profile's batch): it changes the count it should by exactly the amount derived from the
model's config, leaves the others and the training's losses as they were, and a process without
it counts the same as before. The injections are patched in and restored in this process
(`injected`); what the variable does at an interpreter's start is checked in subprocesses.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from bench.measure.counts import count_round
from bench.measure.jobs import FAST_BATCHES
from bench.measure.workloads import fresh_model, training_step
from bench.verdicts.notation import WIDTH

FOLDER = Path(__file__).resolve().parents[1] / "scripts" / "structural"
_spec = importlib.util.spec_from_file_location("lfbench_structural", FOLDER / "sitecustomize.py")
structural = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(structural)  # not as `sitecustomize`: it installs nothing when imported so

BATCH = FAST_BATCHES[0]  # the fast training step's batch on the CPU
STEPS = 2  # training steps a count runs (a warm-up and the counted one): their losses must not change


@dataclass
class Counts:
    exact: dict[str, int]  # the worker's counts of a round (bench/measure/counts.py) and dynamo's
    losses: list[float]


def dynamo_graphs(run_spec) -> tuple[int, int]:
    """(graph breaks, graphs) of the model's forward and loss on a fast step's batch, traced by dynamo."""
    model = fresh_model(run_spec)
    tokens = torch.randint(5, run_spec.config.vocab_size, (BATCH, run_spec.seq_len))
    torch._dynamo.reset()
    try:
        explained = torch._dynamo.explain(model)(input_ids=tokens, labels=tokens)
    finally:
        torch._dynamo.reset()  # no compiled code of the patched classes left for other tests
    return explained.graph_break_count, explained.graph_count


def count(run_spec) -> Counts:
    """The exact counts of one round of the fast training step as a worker takes them (after one
    untimed step, as a worker warms up), dynamo's graphs of its forward, and the steps' losses.
    The peak is the round's own allocations, without the training state a worker holds in it: with
    the state the peak can fall at another moment of the round (an injected product in the head
    moved it by 194,964 bytes, not by its 65,536), and only the round's own has a size to derive."""
    work = training_step(run_spec, run_spec.attention, STEPS, BATCH)
    losses = [work.step()["loss"]]
    exact = count_round(lambda: losses.append(work.step()["loss"]), run_spec.device)
    breaks, graphs = dynamo_graphs(run_spec)
    return Counts({**exact, "graph_breaks": breaks, "unique_graphs": graphs}, losses)


@pytest.fixture(scope="module")
def counted(run_spec) -> dict[str, Counts]:
    """The counts without an injection (`none`), with each one, and without one again (`after`)."""
    module = sys.modules.get(structural.TARGET)
    if run_spec.device.type != "cpu" or run_spec.precision.name != "fp32":
        pytest.skip("the sizes are derived for float32 on the CPU (the embedded default)")
    if module is not None and structural.active(module):
        pytest.skip(f"this process runs with {structural.VARIABLE} set: no unpatched count to compare")
    out = {"none": count(run_spec)}
    for name in structural.INJECTIONS:
        with structural.injected([name]):
            out[name] = count(run_spec)
    out["after"] = count(run_spec)
    return out


def changed(counted: dict[str, Counts], name: str) -> dict[str, int]:
    """What `name` changed, count by count: {count: new - old} for every count that moved."""
    before, after = counted["none"].exact, counted[name].exact
    keys = sorted(before.keys() | after.keys())
    return {key: after.get(key, 0) - before.get(key, 0) for key in keys if after.get(key) != before.get(key)}


def float_bytes() -> int:
    return torch.empty(0, dtype=torch.float32).element_size()


def test_saved_activation_keeps_one_batch_x_seq_x_intermediate_tensor_a_layer(run_spec, counted):
    """The ones multiplied into every feed-forward block's activation are kept for its backward;
    they are alive from the forward to the backward, so the peak grows by as much; one ones_like
    and one mul a layer forward, one mul backward; no FLOP (an elementwise product is not counted)."""
    config = run_spec.config
    layers = config.num_hidden_layers
    size = layers * BATCH * run_spec.seq_len * config.intermediate_size * float_bytes()
    assert changed(counted, "saved-activation") == {
        "saved_bytes": size,
        "peak_bytes": size,
        "op_calls": 3 * layers,
        "op_calls.aten.mul": 2 * layers,
        "op_calls.aten.ones_like": layers,
    }
    assert counted["saved-activation"].losses == counted["none"].losses


def test_item_adds_a_host_sync_a_layer_and_one_graph_break(run_spec, counted):
    """isnan, any and the item's _local_scalar_dense in every layer's forward. Under dynamo the item
    breaks LongformerLayer.forward, whose code dynamo compiles once and every layer reuses (the
    layers are inputs to it, not constants): one more graph break and one more graph, whatever
    the number of layers."""
    layers = run_spec.config.num_hidden_layers
    assert changed(counted, "item") == {
        "graph_breaks": 1,
        "unique_graphs": 1,
        "op_calls": 3 * layers,
        "op_calls.aten._local_scalar_dense": layers,
        "op_calls.aten.any": layers,
        "op_calls.aten.isnan": layers,
    }
    assert counted["item"].losses == counted["none"].losses


def test_mlm_matmul_adds_two_hidden_x_hidden_products_and_keeps_the_identity(run_spec, counted):
    """The head's input times an identity: one (batch*seq x hidden) @ (hidden x hidden) product
    forward and one backward (the input's gradient; the identity needs none), 2 FLOPs a
    multiply-add; the identity is what the product keeps for backward and adds to the peak. The
    product is exact (x * 1 plus zeros), so the losses are the same to the bit."""
    hidden = run_spec.config.hidden_size
    product = 2 * BATCH * run_spec.seq_len * hidden * hidden
    assert changed(counted, "mlm-matmul") == {
        "flops": 2 * product,
        "saved_bytes": hidden * hidden * float_bytes(),
        "peak_bytes": hidden * hidden * float_bytes(),
        "op_calls": 8,
        "op_calls.aten._unsafe_view": 1,  # matmul folding batch and seq, and unfolding them
        "op_calls.aten.eye": 1,
        "op_calls.aten.mm": 2,
        "op_calls.aten.t": 1,  # the identity transposed for the backward product
        "op_calls.aten.view": 3,
    }
    assert counted["mlm-matmul"].losses == counted["none"].losses


def test_slow_gelu_adds_gelu_calls_alone(run_spec, counted):
    """The activation applied LFBENCH_SLOW_GELU_TIMES - 1 more times in every layer, without
    autograd: that many more aten::gelu calls, nothing saved, no FLOP (elementwise), no backward;
    the extra outputs are freed at once, before the round's peak; the losses as they were."""
    extra = (structural.slow_gelu_times() - 1) * run_spec.config.num_hidden_layers
    assert changed(counted, "slow-gelu") == {"op_calls": extra, "op_calls.aten.gelu": extra}
    assert counted["slow-gelu"].losses == counted["none"].losses


def test_a_bad_slow_gelu_factor_is_refused_naming_its_variable(monkeypatch):
    monkeypatch.setenv(structural.SLOW_GELU_VARIABLE, "0")
    with pytest.raises(ValueError, match="LFBENCH_SLOW_GELU_TIMES=0: expected a positive integer"):
        structural.requested("slow-gelu")
    monkeypatch.setenv(structural.SLOW_GELU_VARIABLE, "3")
    assert structural.slow_gelu_times() == 3


def test_without_an_injection_and_after_one_every_count_is_the_same(counted):
    assert counted["after"] == counted["none"]
    assert changed(counted, "after") == {}


def test_injected_restores_the_classes_and_refuses_an_unknown_name():
    module = importlib.import_module(structural.TARGET)
    before = module.LongformerLayer.forward
    with structural.injected(["item", "mlm-matmul"]):
        assert structural.active(module) == ["item", "mlm-matmul"]
    assert module.LongformerLayer.forward is before and structural.active(module) == []
    with pytest.raises(ValueError, match="LFBENCH_STRUCTURAL=item,nan: unknown injection 'nan'"):
        structural.requested("item,nan")


PROBE = """
import sys
import sitecustomize
hooks = [type(f).__name__ for f in sys.meta_path if isinstance(f, sitecustomize.PatchOnImport)]
if "--import" in sys.argv:
    import transformers.models.longformer.modeling_longformer as module
    print(",".join(sitecustomize.active(module)))
else:
    print(",".join(hooks))
"""


def probe(value: str | None, *args: str) -> subprocess.CompletedProcess:
    """A fresh interpreter with the folder on PYTHONPATH, as ab's servers start, and the variable."""
    env = {k: v for k, v in os.environ.items() if k != structural.VARIABLE}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FOLDER), os.environ.get("PYTHONPATH")]))
    if value is not None:
        env[structural.VARIABLE] = value
    command = [sys.executable, "-c", PROBE, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_the_variable_patches_longformer_as_an_interpreter_imports_it():
    run = probe(" mlm-matmul,saved-activation ,mlm-matmul", "--import")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["saved-activation,mlm-matmul"]  # the classes' order, each once


@pytest.mark.parametrize("value", [None, "", " , "])
def test_unset_or_empty_installs_nothing(value):
    run = probe(value)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == ""


def test_an_unknown_name_stops_the_interpreter_naming_the_variable():
    run = probe("item,graph-break")
    assert run.returncode == 2
    assert run.stdout == ""
    assert "LFBENCH_STRUCTURAL=item,graph-break: unknown injection 'graph-break'" in run.stderr
    assert "expected a comma list of saved-activation, item, mlm-matmul, slow-gelu" in run.stderr


_spec = importlib.util.spec_from_file_location("lfbench_sessions", FOLDER / "sessions.py")
sessions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sessions)

STEP = "bench/benchmarks/test_train_step.py::test_train_step_fast"
COUNTS = {"flops": 1835925504, "saved_bytes": 23361540, "peak_bytes": 60000000, "op_calls": 9000}
INJECTED = {**COUNTS, "saved_bytes": 25458692, "peak_bytes": 62097152, "op_calls": 9006}


class FakeAb:
    """Stands for `python -m bench ab`: prints `result` (ab's --format json) and keeps what it was given."""

    def __init__(self, result: dict, code: int = 0) -> None:
        self.result, self.code, self.calls = result, code, []

    def __call__(self, command, env, stdout, stderr, cwd):
        self.calls.append((command, env))
        stdout.write(json.dumps(self.result))
        return subprocess.CompletedProcess(command, self.code)


def ab_result(tmp_path, exact_in_row: bool, baseline=COUNTS, candidate=INJECTED) -> dict:
    """ab's JSON for one row; its exact counts in the row, or in the saved pair's files (`pair`)."""
    row = {"benchmark": STEP, "verdict": "no change", "ratio": 1.004}
    if exact_in_row:
        return {
            "pair": None,
            "benchmarks": [{**row, "exact": {"baseline": baseline, "candidate": candidate}}],
        }
    for side, counts in (("baseline", baseline), ("candidate", candidate)):
        entry = {"fullname": STEP, "extra_info": {} if counts is None else {"exact": counts}}
        (tmp_path / f"{side}.json").write_text(json.dumps({"benchmarks": [entry]}))
    return {"pair": str(tmp_path), "benchmarks": [row]}


def run_sessions(tmp_path, fake: FakeAb, *args: str) -> tuple[int, list[str]]:
    out = tmp_path / "sessions"
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        code = sessions.main([*args, "--out", str(out), "-m", "pr"], run=fake)
    lines = printed.getvalue().splitlines()
    assert lines[1] == f"their JSON and logs in {out}"
    assert all(len(line) <= WIDTH for line in lines[2:])
    return code, lines[2:]


@pytest.mark.parametrize("exact_in_row", [True, False])
def test_sessions_name_the_exact_count_that_changed_and_the_timing_verdict(tmp_path, exact_in_row):
    fake = FakeAb(ab_result(tmp_path, exact_in_row))
    code, lines = run_sessions(tmp_path, fake, "2", "saved-activation")
    assert code == 0
    line = "train_step_fast: saved_bytes 23361540 -> 25458692 (+8.98%), 2 more; timing no change +0.4%"
    assert lines == [
        f"1/2 {line}",
        f"2/2 {line}",
        "LFBENCH_STRUCTURAL=saved-activation: 2 sessions, 2 rows",
        "an exact change in 2 rows, none in 0, no counts in 0",
        "timing verdicts: 2 no change",
    ]
    command, env = fake.calls[0]
    assert command[2:] == [
        "bench",
        "ab",
        "--format",
        "json",
        "--baseline-env",
        "LFBENCH_STRUCTURAL=",
        "-m",
        "pr",
    ]
    assert env["LFBENCH_STRUCTURAL"] == "saved-activation"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(FOLDER)


def test_same_code_sessions_run_against_head_with_nothing_injected(tmp_path, monkeypatch):
    monkeypatch.setenv("LFBENCH_STRUCTURAL", "item")  # left over in the shell: not passed on
    fake = FakeAb(ab_result(tmp_path, True, candidate=COUNTS))
    code, lines = run_sessions(tmp_path, fake, "1", "none")
    assert code == 0
    assert lines[:3] == [
        "1/1 train_step_fast: no exact change; timing no change +0.4%",
        "same code: 1 sessions, 1 rows",
        "an exact change in 0 rows, none in 1, no counts in 0",
    ]
    command, env = fake.calls[0]
    assert command[2:] == ["bench", "ab", "--format", "json", "--baseline-ref", "HEAD", "-m", "pr"]
    assert "LFBENCH_STRUCTURAL" not in env


def test_an_ab_without_exact_counts_or_that_failed_is_said_so(tmp_path):
    code, lines = run_sessions(tmp_path, FakeAb(ab_result(tmp_path, False, baseline=None)), "1", "item")
    assert code == 0
    assert lines[0] == "1/1 train_step_fast: no exact counts in ab's output; timing no change +0.4%"
    code, lines = run_sessions(tmp_path, FakeAb({}, code=2), "1", "item")
    assert code == 0
    assert lines[0] == "1/1 ab exited with code 2: see 1-of-1.log in the output folder"
    assert lines[-1] == "timing verdicts: 1 failed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["0", "item"], "N '0': expected a positive integer"),
        (["2", "item,nan"], "LFBENCH_STRUCTURAL=item,nan: unknown injection 'nan'"),
        (["2", ","], "INJECTION ',': name an injection, or `none` for same-code sessions"),
    ],
)
def test_sessions_refuse_bad_arguments_before_any_session(tmp_path, capsys, args, message):
    fake = FakeAb({})
    assert sessions.main([*args, "--out", str(tmp_path)], run=fake) == 2
    assert message in capsys.readouterr().err
    assert fake.calls == []


def test_sessions_name_the_operator_first_in_each_explained_row(tmp_path):
    """With ab --explain, a row's line ends with its attribution's first operator (* significant),
    and the summary counts which came first in the regression rows and how many rows flagged any."""
    top = {"op": "aten::gelu", "change_ms": 1.523, "significant": True}
    result = ab_result(tmp_path, True)
    result["benchmarks"][0].update(
        verdict="regression", attribution={"top": [top], "significant": ["aten::gelu"]}
    )
    code, lines = run_sessions(tmp_path, FakeAb(result), "2", "slow-gelu")
    assert code == 0
    assert " ".join(" ".join(lines[:2]).split()).endswith(
        "; timing regression +0.4%; where aten::gelu +1.52 ms*"
    )
    assert lines[-2:] == [
        "where: first operator of the regression rows: aten::gelu 2",
        "where: an operator significant in 2 of 2 explained rows",
    ]

"""Train to a target accuracy and record the time it took (MLPerf's time-to-train).

The case follows from the run's options:
- embedded (the default model and data): target 0.90 at lr 1e-3, batch 8 x 128 tokens (unless
  --batch-size / --seq-len say otherwise), at most 40 epochs and a 170 s budget: it proves that the
  pipeline learns, on a 2-core CPU within 3 minutes.
- flagperf (--init random with another model): FlagPerf's own run, target 0.64 at lr 5e-5, up to
  1000 epochs, as its code does.
- finetune (--init pretrained with another model): lr 5e-5, up to 10 epochs, and no target of its
  own: FlagPerf's README says 0.90, which a pretrained RoBERTa-family model's masked-token accuracy
  does not approach (an MLM perplexity of 3-4 on such text), and no published figure fits this
  case, so it runs only with --target-acc and skips, saying so, without it.
--target-acc, --max-epochs, --time-budget and --patience override the case's values.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.base.history import series_folder
from bench.harness.distributed import World
from bench.harness.options import EMBEDDED_MODEL_DIR, option_defaults
from bench.harness.runner import StopRules, append_record, run_training, stop_rules
from bench.harness.spec import RunSpec, build_spec, positive_int
from bench.verdicts.report import save_accuracy_curve
from fixtures.options import option_values


@dataclass(frozen=True)
class Case:
    name: str
    target: float | None  # None: the user must give --target-acc
    lr: float
    max_epochs: int
    time_budget_s: float | None = None


CASES = {
    "embedded": Case("embedded", target=0.90, lr=1e-3, max_epochs=40, time_budget_s=170),
    "flagperf": Case("flagperf", target=0.64, lr=5e-5, max_epochs=1000),
    "finetune": Case("finetune", target=None, lr=5e-5, max_epochs=10),
}
EMBEDDED_BATCH, EMBEDDED_SEQ_LEN = "8", "128"


def case_for(spec: RunSpec) -> Case:
    if spec.model_dir.resolve() == EMBEDDED_MODEL_DIR:
        return CASES["embedded"]
    return CASES["finetune" if spec.init == "pretrained" else "flagperf"]


def convergence_spec(config: pytest.Config, spec: RunSpec, case: Case) -> RunSpec:
    """The embedded case trains smaller batches of shorter blocks unless the options say otherwise."""
    if case.name != "embedded":
        return spec
    values = option_values(config)
    if values["seq_len"] is None:
        values["seq_len"] = EMBEDDED_SEQ_LEN
    if values["batch_size"] == option_defaults()["batch_size"]:
        values["batch_size"] = EMBEDDED_BATCH
    return build_spec(**values)


def results_folder(config: pytest.Config) -> Path:
    """Where saved runs go (--benchmark-storage, results/ by default): the event log and the PNG
    go beside them, so a run that saves elsewhere (scripts/gpu_check.sh: $OUT) keeps them too."""
    storage = getattr(getattr(config, "_benchmarksession", None), "storage", None)
    path = getattr(storage, "path", None)
    return Path(path) if path is not None else Path(config.rootpath) / "results"


@pytest.mark.slow
@pytest.mark.convergence
def test_convergence(benchmark, pytestconfig, run_spec):
    case = case_for(run_spec)
    spec = convergence_spec(pytestconfig, run_spec, case)
    get = pytestconfig.getoption
    given = stop_rules(get("target_acc"), get("time_budget"), get("patience"))
    if given.target_accuracy is None and case.target is None:
        pytest.skip(
            f"the {case.name} case has no published target accuracy to assert (README, Convergence); "
            "give one with --target-acc"
        )
    stop = StopRules(
        target_accuracy=given.target_accuracy or case.target,
        time_budget_s=given.time_budget_s or case.time_budget_s,
        patience=given.patience,
    )
    max_epochs = positive_int("--max-epochs", get("max_epochs")) or case.max_epochs
    folder = results_folder(pytestconfig) / "convergence" / series_folder(spec.fingerprint())
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{case.name}"
    events = folder / f"{stem}.events.jsonl"
    records: list[dict] = []

    def train() -> None:
        records.append(
            run_training(
                spec,
                World(1, 0, 0),
                max_epochs,
                lr=case.lr,
                stop=stop,
                progress=True,
                on_event=lambda event: append_record(events, event),
            )
        )

    benchmark.group = "convergence"
    benchmark.pedantic(train, rounds=1, iterations=1)
    (record,) = records
    drawn = save_accuracy_curve(
        folder / f"{stem}.png",
        record["eval_seconds"],
        record["eval_accuracy"],
        stop.target_accuracy,
        f"{case.name}: {spec.precision.name}, batch {spec.batch_size} x {spec.seq_len}",
    )
    benchmark.extra_info.update(
        case=case.name,
        status=record["status"],
        target_accuracy=stop.target_accuracy,
        time_to_target_s=record["time_to_target_s"],
        epochs=len(record["eval_accuracy"]) - 1,
        samples=record.get("samples"),
        eval_accuracy=record["eval_accuracy"],
        eval_seconds=record["eval_seconds"],
        e2e_seconds=record["e2e_seconds"],
        batch_size=spec.batch_size,
        seq_len=spec.seq_len,
        lr=case.lr,
        dtype=spec.precision.name,
        event_log=str(events),
        accuracy_png=str(folder / f"{stem}.png") if drawn else None,
        compile=spec.compile,
        # under --compile: the parity check, dynamo's counts and recompiles (bench/harness/runner.py)
        **{key: record[key] for key in ("parity", "compile_counts", "recompile_reasons") if key in record},
    )
    assert record["status"] == "converged", f"{case.name}: {record['error']} (events: {events})"


# On CUDA, HF's chunked attention backward accumulates with atomics: the order of additions, and so
# the last bits, change from run to run. There the runs must agree to this relative tolerance.
CUDA_LOSS_RTOL = 1e-3


@pytest.mark.convergence
def test_embedded_convergence_is_deterministic(pytestconfig, run_spec):
    """The same seed gives the same losses and accuracy curve: to the last bit on the CPU, within
    CUDA_LOSS_RTOL on CUDA (not measured there yet: no GPU has run it)."""
    spec = convergence_spec(pytestconfig, run_spec, CASES["embedded"])
    runs = [run_training(spec, World(1, 0, 0), 2, lr=1e-3, max_steps=8) for _ in range(2)]
    assert runs[0]["finished"] and runs[1]["finished"]
    losses = [[loss for e in run["epochs"] for loss in e["losses"]] for run in runs]
    if spec.device.type == "cuda":
        assert losses[0] == pytest.approx(losses[1], rel=CUDA_LOSS_RTOL)
        assert runs[0]["eval_accuracy"] == pytest.approx(runs[1]["eval_accuracy"], abs=0.01)
        return
    assert runs[0]["eval_accuracy"] == runs[1]["eval_accuracy"]
    assert losses[0] == losses[1]

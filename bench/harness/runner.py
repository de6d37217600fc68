"""A whole training run as FlagPerf's run_pretraining does it, for one process or under torchrun.

Evaluate once before training and after every epoch; stop at the target accuracy or after the last
epoch. The result is one record (a dict) that the main rank writes; it says whether the run
finished and, if not, why.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from bench.base.errors import BenchInputError
from bench.harness.attention import use_attention
from bench.harness.compiled import (
    BACKEND,
    checked_compile,
    compile_counts,
    compile_module,
    masked_lm_loss,
    recompile_reasons,
)
from bench.harness.data import DeviceSplit, to_device
from bench.harness.distributed import World, all_reduce_sum, wrap
from bench.harness.fingerprint import fingerprint_id, machine_fingerprint
from bench.harness.flagperf_data import FLAGPERF_WORKERS, collator, flagperf_batches
from bench.harness.masking import MLMMasker
from bench.harness.metrics import efficiency, model_flops_per_sample, peak_flops
from bench.harness.model import build_model
from bench.harness.spec import RunSpec, positive_float, positive_int
from bench.harness.train import (
    LEARNING_RATE,
    Accuracy,
    Batch,
    EpochRecord,
    TrainingDiverged,
    device_batches,
    epoch_order,
    evaluate,
    make_grad_scaler,
    make_optimizer,
    make_scheduler,
    steps_per_epoch,
    summarize,
    train_epoch,
)

DATA_PATHS = ("device", "flagperf")


def epoch_batches(
    spec: RunSpec,
    train_set: DeviceSplit,
    order: list[int],
    masker: MLMMasker,
    world: World,
    data_path: str,
) -> Iterator[Batch]:
    """The epoch's batches through the chosen data path: the suite's on the device, or FlagPerf's."""
    if data_path == "device":
        return device_batches(train_set, order, spec.batch_size, masker, world)
    if data_path == "flagperf":
        workers = min(FLAGPERF_WORKERS, os.cpu_count() or 1)
        return flagperf_batches(spec.train, spec.model_dir, order, spec.batch_size, world, workers)
    raise ValueError(f"--data-path {data_path!r}: expected one of {', '.join(DATA_PATHS)}")


def params_in_sync(model: torch.nn.Module, world: World) -> bool:
    """True when every rank holds the same weights (what DDP promises), compared by checksum."""
    checksum = torch.stack([p.detach().double().abs().sum() for p in model.parameters()]).sum()
    low, high = checksum.clone(), checksum.clone()
    if world.size > 1:
        torch.distributed.all_reduce(low, op=torch.distributed.ReduceOp.MIN)
        torch.distributed.all_reduce(high, op=torch.distributed.ReduceOp.MAX)
    return bool(low == high)


@dataclass
class Trainer:
    """One training run's state: the model and its optimizer, schedule, scaler and maskers.

    `epoch` trains one epoch through the chosen data path; `evaluate` measures accuracy. The
    throughput benchmark and `run_training` both drive one. Under `--compile` the steps train
    `compiled`, the model under torch.compile; evaluation runs eager.
    """

    spec: RunSpec
    world: World
    model: torch.nn.Module
    train_set: DeviceSplit
    eval_set: DeviceSplit
    total_steps: int
    lr: float = LEARNING_RATE
    data_path: str = "device"
    reshuffle: bool = True
    max_steps: int | None = None
    backend: str | Callable = BACKEND  # torch.compile's, under --compile (the tests' aot_eager)

    def __post_init__(self) -> None:
        spec = self.spec
        self.optimizer = make_optimizer(self.model, lr=self.lr)
        self.scheduler = make_scheduler(self.optimizer, self.total_steps)
        self.scaler = make_grad_scaler(spec.precision, spec.device)
        self.masker = MLMMasker(spec.mask_token_id, spec.config.vocab_size, spec.device, spec.seed)
        self.eval_masker = MLMMasker(spec.mask_token_id, spec.config.vocab_size, spec.device, spec.seed + 1)
        if self.data_path == "flagperf":
            collator(spec.model_dir)  # load the tokenizer now, not inside the first timed epoch
        compiled = spec.compile != "off"
        self.compiled = compile_module(self.model, spec.compile, self.backend) if compiled else self.model

    def epoch(self, epoch: int, eager: bool = False) -> EpochRecord:
        """One epoch's training; `eager`: through the model itself even under --compile."""
        spec, world = self.spec, self.world
        order = epoch_order(self.train_set.n_samples, spec.seed, epoch, world, self.reshuffle)
        batches = epoch_batches(spec, self.train_set, order, self.masker, world, self.data_path)
        return self.train(itertools.islice(batches, self.max_steps), epoch, self.model if eager else None)

    def warm_up(self, steps: int, eager: bool = False) -> None:
        """A few untimed steps on the device path (another order), so first-call costs stay out;
        `eager`: through the model itself even under --compile (the compile latency's baseline)."""
        self.train(itertools.islice(self.warm_up_batches(), steps), -1, self.model if eager else None)

    def warm_up_batches(self) -> Iterator[Batch]:
        order = epoch_order(self.train_set.n_samples, self.spec.seed + 1, 0, self.world)
        return device_batches(self.train_set, order, self.spec.batch_size, self.masker, self.world)

    def train(
        self, batches: Iterable[Batch], epoch: int, model: torch.nn.Module | None = None
    ) -> EpochRecord:
        spec = self.spec
        return train_epoch(
            model or self.compiled,
            self.optimizer,
            self.scheduler,
            batches,
            spec.precision,
            spec.device,
            self.world,
            spec.batch_size,
            epoch,
            self.scaler,
            read_loss_every_step=self.data_path == "flagperf",
        )

    def evaluate(self) -> Accuracy:
        spec = self.spec
        return evaluate(
            self.model,
            self.eval_set,
            self.eval_masker,
            spec.batch_size,
            spec.precision,
            spec.device,
            self.world,
        )


@dataclass(frozen=True)
class StopRules:
    """When a run ends before its last epoch: the target, a time budget, a stall."""

    target_accuracy: float | None = None
    time_budget_s: float | None = None  # checked after each epoch's evaluation
    patience: int | None = None  # evaluations without a new best accuracy


def stop_rules(target_acc: str | None, time_budget: str | None, patience: str | None) -> StopRules:
    """Validate the stop options (strings from the command line or the environment)."""
    target = positive_float("--target-acc", target_acc)
    if target is not None and target > 1:
        raise BenchInputError(f"--target-acc {target}: an accuracy lies in (0, 1]")
    return StopRules(
        target, positive_float("--time-budget", time_budget), positive_int("--patience", patience)
    )


def run_training(
    spec: RunSpec,
    world: World,
    n_epochs: int,
    data_path: str = "device",
    reshuffle: bool = True,
    max_steps: int | None = None,
    lr: float = LEARNING_RATE,
    stop: StopRules = StopRules(),
    on_event: Callable[[dict], None] | None = None,
    progress: bool = False,
) -> dict:
    """Train up to `n_epochs` epochs, evaluating before and after each; return the run's record.

    The record's `status` says how it ended: converged, finished (all epochs, no target), or
    max_epochs, time_budget, no_improvement, diverged, out_of_memory, each with an `error` message.
    `on_event` receives run_start, eval and run_stop events (JSON-ready dicts) as they happen.
    """
    device, precision, size = spec.device, spec.precision, spec.batch_size
    record: dict = {
        "kind": "train",
        "status": "running",
        "finished": False,
        "error": None,
        "world_size": world.size,
        "per_device_batch": size,
        "global_batch": size * world.size,
        "seq_len": spec.seq_len,
        "dtype": precision.name,
        "attention": spec.attention,
        "compile": spec.compile,
        "data_path": data_path,
        "reshuffle_each_epoch": reshuffle,
        "init": spec.init,
        "lr": lr,
        "target_accuracy": stop.target_accuracy,
        "model_dir": str(spec.model_dir),
        "data_dir": str(spec.data_dir),
        "machine": machine_fingerprint(device, precision.name),
        "eval_accuracy": [],
        "eval_masked_positions": [],
        "eval_seconds": [],  # seconds since training started, at each evaluation
        "time_to_target_s": None,
    }
    record["fingerprint"] = fingerprint_id(record["machine"])
    emit = on_event if on_event is not None and world.is_main else (lambda event: None)
    start = time.perf_counter()
    emit({"event": "run_start", "time": time.time(), **{k: v for k, v in record.items() if k != "machine"}})
    epochs: list[EpochRecord] = []
    bar = tqdm(total=n_epochs, desc="train", unit="epoch", disable=not (progress and world.is_main))
    try:
        model = build_model(spec.model_dir, spec.config, spec.init, spec.seed).to(device)
        use_attention(model, spec.attention)
        train_set = to_device(spec.train, device)
        if spec.compile != "off":  # compiled against eager on a first batch, before any training
            masker = MLMMasker(spec.mask_token_id, spec.config.vocab_size, device, spec.seed + 2)
            first = next(device_batches(train_set, list(range(train_set.n_samples)), size, masker, world))
            record["parity"] = checked_compile(
                model, masked_lm_loss(precision, device, first), precision.name, spec.compile
            )
        model = wrap(model, world, device)
        steps = steps_per_epoch(train_set.n_samples, size, world)
        if max_steps is not None:
            steps = min(steps, max_steps)
        trainer = Trainer(
            spec,
            world,
            model,
            train_set,
            to_device(spec.eval, device),
            steps * n_epochs,
            lr,
            data_path,
            reshuffle,
            max_steps,
        )
        train_start = time.perf_counter()

        def evaluation(epoch: int) -> float:
            accuracy = trainer.evaluate()
            seconds = time.perf_counter() - train_start
            record["eval_accuracy"].append(accuracy.value)
            record["eval_masked_positions"].append(accuracy.positions)
            record["eval_seconds"].append(seconds)
            emit({"event": "eval", "epoch": epoch, "accuracy": accuracy.value, "train_seconds": seconds})
            return accuracy.value

        best, since_best = evaluation(epoch=0), 0
        record["status"] = "finished" if stop.target_accuracy is None else "max_epochs"
        for epoch in range(n_epochs):
            result = trainer.epoch(epoch)
            losses = torch.tensor(result.losses, device=device)
            result.losses = (all_reduce_sum(losses, world) / world.size).tolist()  # mean over ranks
            epochs.append(result)
            accuracy = evaluation(epoch=epoch + 1)
            bar.update()
            bar.set_postfix(loss=f"{result.losses[-1]:.3f}", acc=f"{accuracy:.4f}")
            best, since_best = (accuracy, 0) if accuracy > best else (best, since_best + 1)
            elapsed = record["eval_seconds"][-1]  # training time at this evaluation
            if stop.target_accuracy is not None and accuracy >= stop.target_accuracy:
                record.update(status="converged", time_to_target_s=elapsed)
                break
            if stop.time_budget_s is not None and elapsed > stop.time_budget_s:
                record["status"] = "time_budget"
                break
            if stop.patience is not None and since_best >= stop.patience:
                record["status"] = "no_improvement"
                break
        train_seconds = time.perf_counter() - train_start
        record.update(summarize(epochs, train_seconds))
        if spec.compile != "off":  # what dynamo counted over the whole run (its compile is in the time)
            record.update(compile_counts=compile_counts(), recompile_reasons=recompile_reasons())
        record.update(
            **efficiency(
                record["p_core"],
                model_flops_per_sample(spec.config, spec.seq_len),
                peak_flops(record["machine"]["gpu_name"], precision.name, spec.peak_flops_per_s),
            ),
            params_in_sync=params_in_sync(model, world),
        )
        record["error"] = stop_message(record, stop, best)
        record["finished"] = record["error"] is None
    except TrainingDiverged as err:
        record.update(status="diverged", error=str(err))
    except torch.cuda.OutOfMemoryError:
        record.update(
            status="out_of_memory",
            error=f"CUDA out of memory at per-device batch size {size}, sequence length {spec.seq_len}, "
            f"dtype {precision.name}: lower --batch-size or --seq-len",
        )
    finally:
        bar.close()
        record["epochs"] = [asdict(e) for e in epochs]
    record["e2e_seconds"] = time.perf_counter() - start
    emit(
        {
            "event": "run_stop",
            "time": time.time(),
            "status": record["status"],
            "error": record["error"],
            "eval_accuracy": record["eval_accuracy"][-1:],
            "e2e_seconds": record["e2e_seconds"],
        }
    )
    return record


def stop_message(record: dict, stop: StopRules, best: float) -> str | None:
    """Why a run that ended without an exception still failed, or None when it did not."""
    last = record["eval_accuracy"][-1]
    reached = f"accuracy {last:.4f} (best {best:.4f}) after {len(record['eval_accuracy']) - 1} epochs"
    target = f"target {stop.target_accuracy}"
    return {
        "max_epochs": f"did not converge: {reached}, {target}",
        "time_budget": f"time budget of {stop.time_budget_s} s ran out: {reached}, {target}",
        "no_improvement": f"no improvement over {stop.patience} evaluations: {reached}, {target}",
    }.get(record["status"])


def append_record(path: Path, record: dict) -> None:
    """Append one JSON line in a single write(2), so concurrent writers never interleave a line."""
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)

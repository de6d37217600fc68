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
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from bench.attention import use_attention
from bench.data import DeviceSplit, to_device
from bench.distributed import World, all_reduce_sum, wrap
from bench.fingerprint import fingerprint_id, machine_fingerprint
from bench.flagperf_data import FLAGPERF_WORKERS, flagperf_batches
from bench.masking import MLMMasker
from bench.metrics import efficiency, model_flops_per_sample, peak_flops
from bench.model import build_model
from bench.spec import RunSpec
from bench.train import (
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


def record_accuracy(record: dict, accuracy: Accuracy) -> None:
    record["eval_accuracy"].append(accuracy.value)
    record["eval_masked_positions"].append(accuracy.positions)


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
    throughput benchmark and `run_training` both drive one.
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

    def __post_init__(self) -> None:
        spec = self.spec
        self.optimizer = make_optimizer(self.model, lr=self.lr)
        self.scheduler = make_scheduler(self.optimizer, self.total_steps)
        self.scaler = make_grad_scaler(spec.precision, spec.device)
        self.masker = MLMMasker(spec.mask_token_id, spec.config.vocab_size, spec.device, spec.seed)
        self.eval_masker = MLMMasker(spec.mask_token_id, spec.config.vocab_size, spec.device, spec.seed + 1)

    def epoch(self, epoch: int) -> EpochRecord:
        spec, world = self.spec, self.world
        order = epoch_order(self.train_set.n_samples, spec.seed, epoch, world, self.reshuffle)
        batches = epoch_batches(spec, self.train_set, order, self.masker, world, self.data_path)
        return self.train(itertools.islice(batches, self.max_steps), epoch)

    def warm_up(self, steps: int) -> None:
        """A few untimed steps on the device path (another order), so first-call costs stay out."""
        order = epoch_order(self.train_set.n_samples, self.spec.seed + 1, 0, self.world)
        batches = device_batches(self.train_set, order, self.spec.batch_size, self.masker, self.world)
        self.train(itertools.islice(batches, steps), epoch=-1)

    def train(self, batches: Iterable[Batch], epoch: int) -> EpochRecord:
        spec = self.spec
        return train_epoch(
            self.model,
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


def run_training(
    spec: RunSpec,
    world: World,
    n_epochs: int,
    data_path: str = "device",
    reshuffle: bool = True,
    max_steps: int | None = None,
    lr: float = LEARNING_RATE,
    target_accuracy: float | None = None,
) -> dict:
    """Train `n_epochs` epochs (or to `target_accuracy`); return the run's record."""
    device, precision, size = spec.device, spec.precision, spec.batch_size
    record: dict = {
        "kind": "train",
        "finished": False,
        "error": None,
        "world_size": world.size,
        "per_device_batch": size,
        "global_batch": size * world.size,
        "seq_len": spec.seq_len,
        "dtype": precision.name,
        "attention": spec.attention,
        "data_path": data_path,
        "reshuffle_each_epoch": reshuffle,
        "init": spec.init,
        "lr": lr,
        "model_dir": str(spec.model_dir),
        "data_dir": str(spec.data_dir),
        "machine": machine_fingerprint(device, precision.name),
        "eval_accuracy": [],
        "eval_masked_positions": [],
    }
    record["fingerprint"] = fingerprint_id(record["machine"])
    start = time.perf_counter()
    epochs: list[EpochRecord] = []
    try:
        model = build_model(spec.model_dir, spec.config, spec.init, spec.seed)
        use_attention(model, spec.attention)
        model = wrap(model.to(device), world, device)
        train_set = to_device(spec.train, device)
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
        record_accuracy(record, trainer.evaluate())
        train_start = time.perf_counter()
        for epoch in range(n_epochs):
            result = trainer.epoch(epoch)
            losses = torch.tensor(result.losses, device=device)
            result.losses = (all_reduce_sum(losses, world) / world.size).tolist()  # mean over ranks
            epochs.append(result)
            accuracy = trainer.evaluate()
            record_accuracy(record, accuracy)
            if target_accuracy is not None and accuracy.value >= target_accuracy:
                break
        train_seconds = time.perf_counter() - train_start
        record.update(summarize(epochs, train_seconds))
        record.update(
            **efficiency(
                record["p_core"],
                model_flops_per_sample(spec.config, spec.seq_len),
                peak_flops(record["machine"]["gpu_name"], precision.name, spec.peak_flops_per_s),
            ),
            params_in_sync=params_in_sync(model, world),
            finished=True,
        )
    except TrainingDiverged as err:
        record["error"] = str(err)
    except torch.cuda.OutOfMemoryError:
        record["error"] = (
            f"CUDA out of memory at per-device batch size {size}, sequence length {spec.seq_len}, "
            f"dtype {precision.name}: lower --batch-size or --seq-len"
        )
    finally:
        record["epochs"] = [asdict(e) for e in epochs]
    record["e2e_seconds"] = time.perf_counter() - start
    return record


def append_record(path: Path, record: dict) -> None:
    """Append one JSON line in a single write(2), so concurrent writers never interleave a line."""
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)

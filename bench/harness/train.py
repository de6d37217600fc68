"""FlagPerf's training loop, to be read top to bottom.

optimizer and schedule -> the order of samples in an epoch -> batches (the suite's on-device path,
or FlagPerf's DataLoader path in bench/harness/flagperf_data.py) -> one step -> one epoch, timed the way
FlagPerf's p_train and p_core need -> evaluation (masked-token accuracy).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup

from bench.harness.data import DeviceSplit
from bench.harness.device import Precision, synchronize
from bench.harness.distributed import World, all_reduce_sum
from bench.harness.masking import IGNORE_INDEX, MLMMasker
from bench.harness.metrics import percentiles, throughputs
from bench.harness.timing import Marks

LEARNING_RATE = 5e-5
WEIGHT_DECAY = 0.01
CHECK_LOSS_EVERY = 50  # steps between reads of the loss (a device sync) to catch NaN early


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and step."""


def decays(parameter_name: str) -> bool:
    """FlagPerf exempts biases and LayerNorm weights from weight decay."""
    return not ("bias" in parameter_name or "LayerNorm.weight" in parameter_name)


def make_optimizer(
    model: nn.Module, lr: float = LEARNING_RATE, weight_decay: float = WEIGHT_DECAY
) -> torch.optim.AdamW:
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if decays(n)], "weight_decay": weight_decay},
        {"params": [p for n, p in named if not decays(n)], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr)


def make_scheduler(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear decay to zero over the whole run, no warmup, stepped every batch (as FlagPerf)."""
    return get_linear_schedule_with_warmup(optimizer, 0, total_steps)


def make_grad_scaler(precision: Precision, device: torch.device) -> torch.amp.GradScaler | None:
    """fp16 needs loss scaling; every other precision trains without."""
    return torch.amp.GradScaler(device.type) if precision.needs_grad_scaler else None


def epoch_order(n_samples: int, seed: int, epoch: int, world: World, reshuffle: bool = True) -> list[int]:
    """All ranks' samples for `epoch` in torch's DistributedSampler order, before the rank split.

    A permutation seeded by seed + epoch, padded by repetition to a multiple of the world size; rank r
    takes every world-th sample from offset r (`order[r::world]`), as DistributedSampler does. So the
    k-th global batch, all ranks' k-th batches together, is the contiguous slice
    order[k*B*world : (k+1)*B*world]. FlagPerf never calls set_epoch, so every epoch repeats epoch 0's
    order: `reshuffle=False` reproduces that.
    """
    generator = torch.Generator().manual_seed(seed + (epoch if reshuffle else 0))
    order = torch.randperm(n_samples, generator=generator).tolist()
    total = math.ceil(n_samples / world.size) * world.size
    return (order * math.ceil(total / n_samples))[:total]


def steps_per_epoch(n_samples: int, batch_size: int, world: World) -> int:
    """Per-rank batches in an epoch; the last may be partial (FlagPerf counts it as full)."""
    return math.ceil(math.ceil(n_samples / world.size) / batch_size)


@dataclass(frozen=True)
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def to(self, device: torch.device) -> Batch:
        tensors = (self.input_ids, self.attention_mask, self.labels)
        return Batch(*(t.to(device, non_blocking=True) for t in tensors))


def device_batches(
    split: DeviceSplit, order: list[int], batch_size: int, masker: MLMMasker, world: World
) -> Iterator[Batch]:
    """The suite's data path: rows gathered and masked on the device, no host round trip.

    Masks are drawn for the whole global batch from a generator seeded alike on every rank, and each
    rank keeps its own rows: the masks a sample gets do not depend on the world size.
    """
    order_on_device = torch.tensor(order, device=split.input_ids.device)
    global_batch = batch_size * world.size
    for start in range(0, len(order), global_batch):
        rows = order_on_device[start : start + global_batch]
        ids, labels = masker(split.input_ids[rows], split.special_tokens_mask[rows])
        mine = slice(world.rank, None, world.size)  # strided views: the model needs contiguous rows
        yield Batch(ids[mine].contiguous(), split.attention_mask[rows[mine]], labels[mine].contiguous())


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    precision: Precision,
    device: torch.device,
    batch: Batch,
    scaler: torch.amp.GradScaler | None = None,
) -> torch.Tensor:
    """Forward, backward, optimizer and scheduler: the work FlagPerf's p_core times.

    Returns the loss as a device tensor; reading it (`.item()`) would stall the device every step.
    Autocast wraps the forward only (as torch advises); the TF32 mode wraps the whole step.
    """
    with precision.matmul_mode():
        with precision.active(device):
            loss = model(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels
            ).loss
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        scheduler.step()
    return loss.detach()


@dataclass
class EpochRecord:
    """What one epoch did and how long each part took, per rank."""

    epoch: int
    steps: int
    samples: int  # steps x batch x world size, a partial last batch counted full (FlagPerf)
    wall_seconds: float  # first fetch to last step done, synchronized
    step_seconds: list[float] = field(default_factory=list)  # data wait + core, per step
    core_seconds: list[float] = field(default_factory=list)  # forward+backward+optimizer+scheduler
    losses: list[float] = field(default_factory=list)


def summarize(records: list[EpochRecord], train_seconds: float) -> dict:
    """FlagPerf's throughputs and the step-time spread over `records`, trained in `train_seconds`."""
    step_seconds = [s for r in records for s in r.step_seconds]
    samples = sum(r.samples for r in records)
    return {
        "samples": samples,
        "train_seconds": train_seconds,
        **throughputs(samples, train_seconds, step_seconds, [s for r in records for s in r.core_seconds]),
        "step_seconds_percentiles": percentiles(step_seconds),
    }


def check_finite(losses: list[torch.Tensor], epoch: int, first_step: int) -> None:
    """Raise at the first NaN/inf loss among `losses` (steps first_step, first_step+1, ...)."""
    finite = torch.isfinite(torch.stack(losses)).tolist()
    if not all(finite):
        step = first_step + finite.index(False)
        value = losses[finite.index(False)].item()
        raise TrainingDiverged(f"loss is {value} at epoch {epoch}, step {step}: training diverged")


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    batches: Iterable[Batch],
    precision: Precision,
    device: torch.device,
    world: World,
    batch_size: int,
    epoch: int,
    scaler: torch.amp.GradScaler | None = None,
    read_loss_every_step: bool = False,
) -> EpochRecord:
    """One pass over `batches`, timing each step's data wait and its core separately.

    `read_loss_every_step` calls `.item()` on every loss, as FlagPerf's loop does (a device sync per
    step); otherwise the loss is read every CHECK_LOSS_EVERY steps to stop a diverged run early.
    """
    marks = Marks(device)
    spans: list[tuple] = []
    losses: list[torch.Tensor] = []
    checked = 0
    start = time.perf_counter()
    fetched = marks.mark()
    for batch in batches:  # the wait for the next batch falls between `fetched` and `ready`
        batch = batch.to(device)
        ready = marks.mark()
        loss = train_step(model, optimizer, scheduler, precision, device, batch, scaler)
        if read_loss_every_step:
            loss.item()
        done = marks.mark()
        spans.append((fetched, ready, done))
        losses.append(loss)
        if len(losses) - checked >= CHECK_LOSS_EVERY:
            check_finite(losses[checked:], epoch, checked)
            checked = len(losses)
        fetched = done
    synchronize(device)
    wall = time.perf_counter() - start
    if len(losses) > checked:
        check_finite(losses[checked:], epoch, checked)
    return EpochRecord(
        epoch=epoch,
        steps=len(spans),
        samples=len(spans) * batch_size * world.size,
        wall_seconds=wall,
        step_seconds=[marks.seconds(a, c) for a, _, c in spans],
        core_seconds=[marks.seconds(b, c) for _, b, c in spans],
        losses=torch.stack(losses).tolist() if losses else [],
    )


@dataclass(frozen=True)
class Accuracy:
    """Masked positions predicted right, over all masked positions of the eval set."""

    hits: int
    positions: int

    @property
    def value(self) -> float:
        return self.hits / self.positions if self.positions else float("nan")


@torch.no_grad()
def evaluate(
    model: nn.Module,
    split: DeviceSplit,
    masker: MLMMasker,
    batch_size: int,
    precision: Precision,
    device: torch.device,
    world: World,
) -> Accuracy:
    """FlagPerf's accuracy: argmax hits over all masked positions of the whole eval set.

    Each rank evaluates its share of every global batch, masked as in training (so the masks do not
    depend on the world size), and the hit and position counts are summed over ranks, so the
    accuracy is exact over the set. (FlagPerf lets
    every rank evaluate the whole set and averages the accuracies.)
    """
    was_training = model.training
    model.eval()
    counts = torch.zeros(2, dtype=torch.float64, device=device)  # hits, masked positions
    in_order = list(range(split.n_samples))  # no padding: every sample counted once
    for batch in device_batches(split, in_order, batch_size, masker, world):
        with precision.active(device):
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        masked = batch.labels != IGNORE_INDEX
        counts[0] += (logits.argmax(-1)[masked] == batch.labels[masked]).sum()
        counts[1] += masked.sum()
    all_reduce_sum(counts, world)
    model.train(was_training)
    hits, positions = counts.tolist()
    return Accuracy(int(hits), int(positions))

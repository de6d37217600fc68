"""How much of an epoch the fast profile can afford, whatever model and data it is given.

A whole epoch of an unfamiliar model can take many minutes on a CPU: a 50k-word output layer on
1024-token blocks takes 25 s a step at batch 16 here, most of it in memory-bound work on the 3 GB of
logits that no FLOP count sees. So the fast form of the epoch benchmark is sized from a measured
step: one training step at batch 1 (a probe in a worker, after one untimed step), scaled linearly
to the batch (an overestimate where a larger batch uses the machine better, never an under-one).
The largest plan whose expected time fits the budget is chosen; when not even one sample a step
fits, the benchmark skips with the estimate as its reason.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

FAST_BUDGET_S = 120.0  # the whole fast profile on a 2-core CPU
EPOCH_SHARE = 0.5  # of it, what the epoch benchmark may take (the attention cases take most of the rest)
EVAL_COST = 1 / 3  # an evaluation batch is a forward pass: about a third of a training step


@dataclass(frozen=True)
class EpochPlan:
    """One round's size and the rounds per worker: `max_samples` 0 is the whole epoch,
    `batch_size` 0 the run's."""

    max_samples: int
    rounds: int
    warmup_rounds: int
    warmup_steps: int = 2  # untimed steps before the first round (bench/measure/workloads.py)
    batch_size: int = 0
    estimated_seconds: float = 0.0  # all workers, warm-up included, at the expected step time

    def params(self, data_path: str) -> dict:
        """The epoch workload's parameters for this plan (bench/measure/workloads.py `epoch`), the warm-up
        rounds counted in its schedule."""
        return {
            "data_path": data_path,
            "rounds": self.rounds + self.warmup_rounds,
            "max_samples": self.max_samples,
            "warmup_steps": self.warmup_steps,
            "batch_size": self.batch_size,
        }

    def describe(self, train_samples: int, run_batch: int) -> str:
        if not self.max_samples:
            return f"whole epochs of {train_samples} samples"
        text = f"the first {min(self.max_samples, train_samples)} of {train_samples} samples a round"
        if self.batch_size and self.batch_size != run_batch:
            text += f", at batch {self.batch_size} (the run's is {run_batch})"
        return text


class DoesNotFit(Exception):
    """Even the smallest plan's estimate exceeds the budget; the message says by how much."""


def candidate_plans(batch: int, slice_steps: int, slice_rounds: int, slice_warmup: int) -> list[EpochPlan]:
    """The slices to try, largest first: `slice_steps` batches a round; one batch once, after one
    untimed step; then the batch halved, down to one sample, each once."""
    plans = [EpochPlan(slice_steps * batch, slice_rounds, slice_warmup), EpochPlan(batch, 1, 0, 1)]
    size = batch // 2
    while size >= 1:
        plans.append(EpochPlan(size, 1, 0, 1, batch_size=size))
        size //= 2
    return plans


def plan_cost(
    plan: EpochPlan, sample_step_s: float, batch: int, train: int, evals: int, workers: int
) -> float:
    """Expected seconds of the benchmark, a step costing `sample_step_s` per sample of its batch: per
    worker the warm-up steps, then every round's train steps and evaluation batches."""
    size = plan.batch_size or batch
    cap = plan.max_samples or max(train, evals)
    steps = math.ceil(min(cap, train) / size)
    eval_steps = math.ceil(min(cap, evals) / size)
    step_s = sample_step_s * size
    return (
        workers
        * step_s
        * (plan.warmup_steps + (plan.rounds + plan.warmup_rounds) * (steps + EVAL_COST * eval_steps))
    )


def plan_epoch(
    candidates: list[EpochPlan],
    sample_step_s: float,
    batch: int,
    train: int,
    evals: int,
    workers: int,
    budget_s: float,
) -> EpochPlan:
    """The first of `candidates` (largest first) whose expected cost fits `budget_s`."""
    for plan in candidates:
        cost = plan_cost(plan, sample_step_s, batch, train, evals, workers)
        if cost <= budget_s:
            return dataclasses.replace(plan, estimated_seconds=cost)
    smallest = candidates[-1]
    cost = plan_cost(smallest, sample_step_s, batch, train, evals, workers)
    raise DoesNotFit(
        f"one training step takes about {sample_step_s:.1f} s per sample here (measured at batch 1), "
        f"{sample_step_s * batch:.0f} s at batch {batch}: even {smallest.describe(train, batch)} in "
        f"{workers} workers needs about {cost:.0f} s, over the fast profile's {budget_s:.0f} s for this "
        f"benchmark; the full run (`pytest -k epoch_throughput`) measures whole epochs"
    )


# A fast plan is chosen once per series and then reused: sized afresh on every run from a live
# probe, a slow day would flip it to a smaller batch or slice, and history would compare different
# amounts of work (bench/base/history.py WORK_KEYS). The saved row a plan is read from is the
# benchmark's in the newest saved run of the series (fixtures/storage.py `saved_row`).


def reused_plan(candidates: list[EpochPlan], saved: dict, batch: int) -> EpochPlan | None:
    """The candidate that measured what a saved row of the epoch benchmark recorded (its slice,
    batch and rounds), or None where none did (no saved row, or the candidates changed since):
    then the plan is chosen afresh, and that choice is reused from the next run on."""
    for plan in candidates:
        work = {
            "max_samples": plan.max_samples or None,
            "batch_size": plan.batch_size or batch,
            "rounds_per_worker": plan.rounds,
            "warmup_rounds_per_worker": plan.warmup_rounds,
        }
        if saved and all(saved.get(key) == value for key, value in work.items()):
            return plan
    return None


def reused_batch(saved: dict, batches: tuple[int, ...], run_batch: int) -> int | None:
    """The training step's batch a saved row trained at, where it is still one the fast profile may
    choose (one of `batches`, at most the run's); else None, and the batch is chosen afresh."""
    batch = saved.get("batch_size")
    return batch if batch in batches and batch <= run_batch else None

"""Training under torch.compile (`--compile`): the modes, the compiled module, what dynamo counted,
the compile latency and the parity check of compiled against eager.

Dynamo keeps its caches and counters per process: a workload resets both when it is built
(`reset_counts`), so that each job counts its own graph breaks, graphs and recompiles.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from bench.base.errors import BenchInputError
from bench.harness.device import Precision, synchronize
from bench.harness.train import Batch

COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
BACKEND = "inductor"
COMPILE_ROUNDS = 2  # the first compiled rounds timed for the compile latency, against as many eager
# Parity: the largest difference of the loss and of the gradients, each relative to the eager
# tensors' largest magnitude. fp32 differs by reduction order alone (the embedded model's step under
# inductor on the CPU: about 1e-6, docs/benchmarks.md); reduced precisions by where a fused kernel
# rounds (bf16 keeps 8 bits of mantissa: 2^-8 is about 4e-3, a few roundings in a row a few times that).
PARITY_TOLERANCE = {"fp32": 1e-3, "tf32": 1e-2, "bf16": 5e-2, "fp16": 5e-2}


class ParityFailed(AssertionError):
    """The compiled model's loss or gradients differ from eager's by more than the tolerance."""


def check_compile_mode(mode: str) -> str:
    if mode not in COMPILE_MODES:
        raise BenchInputError(f"--compile {mode!r}: expected one of {', '.join(COMPILE_MODES)}")
    return mode


def compile_module(module: nn.Module, mode: str, backend: str | Callable = BACKEND) -> nn.Module:
    """`module` under torch.compile in `mode` (inductor's; another backend, the tests' `eager` or
    `aot_eager`, takes no mode). The result shares the module's parameters."""
    kwargs = {"mode": mode} if backend == BACKEND and mode != "default" else {}
    return torch.compile(module, backend=backend, **kwargs)


def uncompiled(module: nn.Module) -> nn.Module:
    """The module a compiled one wraps (itself when it is not compiled): the same weights, eager."""
    return getattr(module, "_orig_mod", module)


def _counters():
    from torch._dynamo.utils import counters

    return counters


def _compilation_metrics() -> list:
    from torch._dynamo import utils

    return utils.get_compilation_metrics()  # torch 2.11 and 2.13 alike


def reset_counts() -> None:
    """Forget every compiled graph and every count (a fresh process, as far as dynamo can tell)."""
    from torch._dynamo import utils

    torch.compiler.reset()
    _counters().clear()
    clear = getattr(utils, "clear_compilation_metrics", None)
    if clear is not None:
        clear()
    else:  # no clear function: empty the deque itself
        utils._compilation_metrics.clear()


def recompile_reasons() -> list[str]:
    """Why dynamo recompiled a frame since the last reset, in order: the first failed guard each."""
    return [m.recompile_reason for m in _compilation_metrics() if getattr(m, "recompile_reason", None)]


def compile_counts() -> dict[str, int]:
    """Since the last reset, as pytorch's benchmarks/dynamo/common.py reads them: graph breaks (each
    time dynamo broke a frame's graph), unique graphs (graphs compiled) and recompiles (frames compiled
    again after a guard failed)."""
    counters = _counters()
    return {
        "graph_breaks": sum(counters["graph_break"].values()),
        "unique_graphs": counters["stats"]["unique_graphs"],
        "recompiles": len(recompile_reasons()),
    }


def timed(run: Callable[[], object], rounds: int, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    for _ in range(rounds):
        run()
    synchronize(device)
    return time.perf_counter() - start


def compile_seconds(
    eager: Callable[[], object], compiled: Callable[[], object], device: torch.device
) -> float:
    """The dynamo runner's compilation latency: the first COMPILE_ROUNDS compiled rounds' time minus
    as many eager rounds of the same work (run first, as the runner does)."""
    eager_s = timed(eager, COMPILE_ROUNDS, device)
    return timed(compiled, COMPILE_ROUNDS, device) - eager_s


def _loss_and_grads(module: nn.Module, loss_of: Callable[[nn.Module], torch.Tensor]):
    module.zero_grad(set_to_none=True)
    loss = loss_of(module)
    loss.backward()
    grads = {
        name: p.grad.detach().double()
        for name, p in uncompiled(module).named_parameters()
        if p.grad is not None
    }
    return loss.detach().double(), grads


def _relative(difference: float, scale: float) -> float:
    return difference / scale if scale else (0.0 if difference == 0 else math.inf)


def parity(
    module: nn.Module,
    loss_of: Callable[[nn.Module], torch.Tensor],
    mode: str,
    tolerance: float,
    backend: str | Callable = BACKEND,
) -> dict:
    """Compiled against eager on the same input: `loss_of(copy)` and its gradients, for a copy of
    `module` compiled and one not, both in eval mode (dropout off: the compiled graph draws its own
    random numbers). ParityFailed, naming what differs, when either is beyond `tolerance`."""
    eager = copy.deepcopy(uncompiled(module)).eval()
    compiled = compile_module(copy.deepcopy(eager), mode, backend)
    eager_loss, eager_grads = _loss_and_grads(eager, loss_of)
    compiled_loss, compiled_grads = _loss_and_grads(compiled, loss_of)
    if eager_grads.keys() != compiled_grads.keys():
        raise ParityFailed(
            f"compiled and eager gradients differ in which parameters they reach: "
            f"{sorted(eager_grads.keys() ^ compiled_grads.keys())[:3]}"
        )
    loss_abs = float((compiled_loss - eager_loss).abs())
    grad_abs = max((float((compiled_grads[n] - g).abs().max()) for n, g in eager_grads.items()), default=0.0)
    grad_scale = max((float(g.abs().max()) for g in eager_grads.values()), default=0.0)
    result = {
        "loss_abs": loss_abs,
        "loss_rel": _relative(loss_abs, float(eager_loss.abs())),
        "grad_abs": grad_abs,
        "grad_rel": _relative(grad_abs, grad_scale),
        "tolerance": tolerance,
    }
    result["passed"] = result["loss_rel"] <= tolerance and result["grad_rel"] <= tolerance
    if not result["passed"]:
        raise ParityFailed(
            f"torch.compile (mode {mode}) does not match eager: loss differs by {result['loss_rel']:.2e} "
            f"and gradients by {result['grad_rel']:.2e} (relative), over the tolerance {tolerance:g}"
        )
    return result


def checked_compile(
    module: nn.Module,
    loss_of: Callable[[nn.Module], torch.Tensor],
    precision: str,
    mode: str,
    backend: str | Callable = BACKEND,
) -> dict:
    """Before a compiled training's first step: the parity check at the precision's tolerance (a
    failure fails the job), then dynamo's caches and counts reset, so that the training counts its
    own graphs."""
    checked = parity(module, loss_of, mode, PARITY_TOLERANCE[precision], backend)
    reset_counts()
    return checked


def masked_lm_loss(
    precision: Precision, device: torch.device, batch: Batch
) -> Callable[[nn.Module], torch.Tensor]:
    """The training step's loss of `batch` (its forward as bench/harness/train.py runs it), for the
    parity check."""

    def loss_of(model: nn.Module) -> torch.Tensor:
        with precision.matmul_mode(), precision.active(device):
            return model(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels
            ).loss

    return loss_of


def compile_facts(seconds: float, checked: dict, mode: str) -> dict:
    """What a compiled round reports beside its own facts: the mode, the compile latency, the parity
    check and the recompiles so far (counted at the round's end)."""
    return {
        "compile": mode,
        "compile_seconds": seconds,
        "parity": checked,
        "recompile_reasons": recompile_reasons(),
    }


def compile_extra_info(facts: list[dict] | None) -> dict:
    """extra_info of a compiled benchmark from its rounds' facts (every worker's): the median compile
    latency, every recompile reason once, the parity check farthest from eager's."""
    compiled = [f for f in facts or [] if f and "compile_seconds" in f]
    if not compiled:
        return {}
    return {
        "compile": compiled[0]["compile"],
        "compile_seconds": statistics.median(f["compile_seconds"] for f in compiled),
        "recompile_reasons": sorted({r for f in compiled for r in f["recompile_reasons"]}),
        "parity": max((f["parity"] for f in compiled), key=lambda p: p["grad_rel"]),
    }

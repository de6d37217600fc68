"""The measured work of each sampled benchmark, built from a RunSpec wherever it runs.

A worker process (bench/measure/sampling.py) builds a workload from its name and parameters, warms it up and
times `step` round by round; with --benchmark-disable the test builds it in-process and runs it once.
Building (model, inputs, optimizer) is never timed. Every process builds the same seeded work.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bench.harness.attention import layer_inputs, make_layer, use_attention
from bench.harness.compiled import (
    BACKEND,
    COMPILE_ROUNDS,
    checked_compile,
    compile_counts,
    compile_facts,
    compile_module,
    compile_seconds,
    masked_lm_loss,
)
from bench.harness.data import head, to_device
from bench.harness.distributed import World
from bench.harness.masking import MLMMasker
from bench.harness.model import build_model
from bench.harness.runner import Trainer
from bench.harness.spec import RunSpec
from bench.harness.train import (
    device_batches,
    epoch_order,
    make_grad_scaler,
    make_optimizer,
    make_scheduler,
    steps_per_epoch,
    train_step,
)
from bench.measure.calibration import Calibration
from bench.measure.memory import training_tensors

SINGLE = World(1, 0, 0)


@dataclass
class Workload:
    """`step` runs one round of the measured work and returns facts about it (or None).

    `forward` (where there is one) runs the forward pass alone, for memory measurements. For the
    worker's counted round (bench/measure/counts.py), which reads these three with getattr (an old
    baseline checkout's Workload lacks them): `held` gives the state alive between rounds
    (parameters, grads, optimizer state), counted in the peak from the round's start; `eager_step`
    is the same round without torch.compile, counted where `step` is compiled; `counts` gives exact
    counts the workload knows itself (a compiled step's graph breaks), merged into the round's;
    `uncounted` says why its round cannot run under the counters' dispatch modes ('': it can):
    then only what needs none is counted (on CUDA the allocator's peak).
    """

    step: Callable[[], object]
    forward: Callable[[], torch.Tensor] | None = None
    facts: dict = field(default_factory=dict)
    held: Callable[[], list[torch.Tensor]] | None = None
    eager_step: Callable[[], object] | None = None
    counts: Callable[[], dict[str, int]] | None = None
    uncounted: str = ""


def uncounted(attention: str) -> str:
    """Why a round through `attention` cannot be counted: flex_attention is a higher-order operator
    that no dispatch mode of the counted round can run, eager or compiled (torch 2.13's flop counter
    and any TorchDispatchMode without a rule for it raise)."""
    return (
        "flex_attention runs under no dispatch mode (torch's flop counter among them)"
        if attention == "flex"
        else ""
    )


_initial_models: dict[int, torch.nn.Module] = {}


def initial_model(spec: RunSpec) -> torch.nn.Module:
    """The run's model, built (random init) or loaded (pretrained) once per process, on the device,
    with the run's attention. Never trained itself: callers train copies."""
    key = id(spec)
    if key not in _initial_models:
        model = build_model(spec.model_dir, spec.config, spec.init, spec.seed)
        use_attention(model, spec.attention)
        _initial_models.clear()
        _initial_models[key] = model.to(spec.device)
    return _initial_models[key]


def release() -> None:
    """Drop the cached initial model (a worker calls this when a job ends, to give memory back)."""
    _initial_models.clear()


def fresh_model(spec: RunSpec) -> torch.nn.Module:
    """A private copy of the initial model in train mode, the global RNG (dropout) reseeded, so
    whatever trains it is reproducible on its own."""
    model = copy.deepcopy(initial_model(spec))
    model.train()
    torch.manual_seed(spec.seed)
    return model


def with_compile_facts(
    work: Workload, compiled: Callable[[], object], seconds: float, checked: dict, mode: str
) -> Workload:
    """`work` with its rounds run by `compiled`, each round's facts carrying the compile's
    (bench/harness/compiled.py `compile_facts`), and `work`'s own round as the eager one."""

    def step() -> dict:
        return {**(compiled() or {}), **compile_facts(seconds, checked, mode)}

    return dataclasses.replace(work, step=step, eager_step=work.step, counts=compile_counts)


def under_compile(
    work: Workload,
    step_with: Callable[[torch.nn.Module], Callable[[], object]],
    module: torch.nn.Module,
    loss_of: Callable[[torch.nn.Module], torch.Tensor],
    spec: RunSpec,
    mode: str,
    backend: str | Callable,
) -> Workload:
    """`work` with its round run by `step_with(module compiled)`, checked, and its compile latency
    taken over the first rounds."""
    checked = checked_compile(module, loss_of, spec.precision.name, mode, backend)
    compiled = step_with(compile_module(module, mode, backend))
    seconds = compile_seconds(work.step, compiled, spec.device)
    return with_compile_facts(work, compiled, seconds, checked, mode)


def attention_step(
    spec: RunSpec,
    implementation: str,
    window: int,
    seq_len: int,
    batch: int,
    passes: str,
    hidden: int = 0,
    heads: int = 0,
    compile_mode: str = "",
    backend: str | Callable = BACKEND,
) -> Workload:
    """One self-attention layer of the model's dimensions (or `hidden`/`heads`), forward or
    forward + backward, on random non-zero hidden states without padding (FlagPerf never pads);
    the layer under torch.compile in `compile_mode` (default: the run's)."""
    config = copy.deepcopy(spec.config)
    if hidden:
        config.hidden_size, config.num_attention_heads = hidden, heads
    device, precision = spec.device, spec.precision
    layer = make_layer(config, window, implementation, device, spec.seed)
    x, kwargs = layer_inputs(batch, seq_len, config.hidden_size, device, spec.seed)
    backward = passes == "forward_backward"
    x.requires_grad_(backward)
    upstream = torch.randn(batch, seq_len, config.hidden_size, device=device)

    def forward_with(module: torch.nn.Module) -> Callable[[], torch.Tensor]:
        def forward() -> torch.Tensor:
            with precision.active(device):
                return module(x, **kwargs)[0]

        return forward

    def step_with(module: torch.nn.Module) -> Callable[[], None]:
        forward = forward_with(module)

        def step() -> None:
            with precision.matmul_mode():  # the backward's matmuls too
                out = forward()
                if backward:
                    module.zero_grad(set_to_none=True)
                    x.grad = None
                    out.backward(upstream.to(out.dtype))

        return step

    def held() -> list[torch.Tensor]:  # the layer's parameters and their grads
        parameters = list(layer.parameters())
        return parameters + [p.grad for p in parameters if p.grad is not None]

    facts = {"hidden_size": config.hidden_size, "heads": config.num_attention_heads}
    work = Workload(
        step_with(layer), forward_with(layer), facts, held=held, uncounted=uncounted(implementation)
    )
    mode = compile_mode or spec.compile
    if mode == "off":
        return work

    def loss_of(module: torch.nn.Module) -> torch.Tensor:
        with precision.matmul_mode(), precision.active(device):
            return (module(x.detach().requires_grad_(), **kwargs)[0].float() * upstream).sum()

    return under_compile(work, step_with, layer, loss_of, spec, mode, backend)


def training_step(
    spec: RunSpec,
    attention: str,
    rounds: int,
    batch_size: int = 0,
    compile_mode: str = "",
    backend: str | Callable = BACKEND,
) -> Workload:
    """One FlagPerf training step (forward, backward, AdamW, schedule) on real masked batches, with
    every self-attention layer swapped to `attention` (same weights, same function); `batch_size`
    > 0 trains at that batch instead of the run's (the fast profile's step); the model under
    torch.compile in `compile_mode` (default: the run's)."""
    mode = compile_mode or spec.compile
    model = fresh_model(spec)
    if batch_size:
        spec = dataclasses.replace(spec, batch_size=batch_size)
    use_attention(model, attention)
    train_set = to_device(spec.train, spec.device)
    masker = MLMMasker(spec.mask_token_id, spec.config.vocab_size, spec.device, spec.seed)
    order = epoch_order(train_set.n_samples, spec.seed, 0, SINGLE)
    batches = list(
        itertools.islice(device_batches(train_set, order, spec.batch_size, masker, SINGLE), rounds)
    )
    cycle = itertools.cycle(batches)
    optimizer = make_optimizer(model)
    compile_rounds = 2 * COMPILE_ROUNDS if mode != "off" else 0  # the compile latency's, eager and compiled
    scheduler = make_scheduler(optimizer, total_steps=rounds + compile_rounds + 1)
    scaler = make_grad_scaler(spec.precision, spec.device)

    def step_with(module: torch.nn.Module) -> Callable[[], dict]:
        def step() -> dict:
            loss = train_step(module, optimizer, scheduler, spec.precision, spec.device, next(cycle), scaler)
            return {"loss": float(loss)}

        return step

    work = Workload(
        step_with(model), held=lambda: training_tensors(model, optimizer), uncounted=uncounted(attention)
    )
    if mode == "off":
        return work
    return under_compile(
        work, step_with, model, masked_lm_loss(spec.precision, spec.device, batches[0]), spec, mode, backend
    )


EPOCH_WARMUP_STEPS = 2
COUNTED_ROUNDS = 1  # the worker's counted round (bench/measure/worker.py), after the warm-up rounds


def epoch(
    spec: RunSpec,
    data_path: str,
    rounds: int,
    max_samples: int = 0,
    warmup_steps: int = EPOCH_WARMUP_STEPS,
    batch_size: int = 0,
    backend: str | Callable = BACKEND,
) -> Workload:
    """One round = one epoch over the train set through `data_path`, then one evaluation, as FlagPerf
    runs them; successive rounds are successive epochs of one run, after a few untimed steps.

    `max_samples` > 0 caps a round at the first samples of each epoch and of the eval set (an epoch
    slice): the same code path in a round short enough to repeat, for the fast profile and A/B.
    `batch_size` > 0 trains at that batch instead of the run's (the fast profile's smallest slices).
    The training's peak memory is the worker's counted round's (bench/measure/counts.py: `held` is
    the training state), never taken in a timed round. Under --compile the steps train the compiled
    model; the compile latency is taken on warm-up steps.
    """
    model = fresh_model(spec)
    if batch_size:
        spec = dataclasses.replace(spec, batch_size=batch_size)
    train_blocks, eval_blocks = spec.train, spec.eval
    if max_samples:
        eval_blocks = head(eval_blocks, max_samples)
    train_set, eval_set = to_device(train_blocks, spec.device), to_device(eval_blocks, spec.device)
    steps = steps_per_epoch(train_set.n_samples, spec.batch_size, SINGLE)
    if max_samples:
        steps = min(steps, steps_per_epoch(max_samples, spec.batch_size, SINGLE))
    compiled = spec.compile != "off"
    compile_steps = 2 * COMPILE_ROUNDS if compiled else 0  # the compile latency's, eager and compiled
    trainer = Trainer(
        spec,
        SINGLE,
        model,
        train_set,
        eval_set,
        # the schedule's length, the counted round's epoch and the compile latency's steps included;
        # rounds past it train at lr 0
        steps * (rounds + COUNTED_ROUNDS) + warmup_steps + compile_steps,
        data_path=data_path,
        max_steps=steps if max_samples else None,
        backend=backend,
    )
    trainer.warm_up(warmup_steps, eager=True)  # eager: under --compile the parity check comes first
    if compiled:
        loss_of = masked_lm_loss(spec.precision, spec.device, next(trainer.warm_up_batches()))
        checked = checked_compile(trainer.model, loss_of, spec.precision.name, spec.compile, backend)
        seconds = compile_seconds(
            lambda: trainer.warm_up(1, eager=True), lambda: trainer.warm_up(1), spec.device
        )
    done = itertools.count()

    def one_round(eager: bool = True) -> dict:
        start = time.perf_counter()
        record = trainer.epoch(next(done), eager)
        accuracy = trainer.evaluate()
        return {
            "record": record,
            "train_seconds": time.perf_counter() - start,
            "accuracy": accuracy.value,
            "eval_samples": eval_set.n_samples,
            # the process's max resident set: everything in it, whatever it ran before (torch itself)
            "process_max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }

    def held() -> list[torch.Tensor]:
        return training_tensors(trainer.model, trainer.optimizer)

    work = Workload(one_round, held=held, uncounted=uncounted(spec.attention))
    if not compiled:
        return work
    return with_compile_facts(work, lambda: one_round(eager=False), seconds, checked, spec.compile)


# The floor's matmul, large enough that launch, casts and syncs do not count: a 2048^3 bf16 matmul
# takes about 20 us on an H100 (not measured here: no GPU yet), 8192^3 about 1 ms.
MATMUL_SIZES = {"cpu": 2048, "cuda": 8192}


def matmul_size(device: torch.device) -> int:
    return MATMUL_SIZES[device.type]


def matmul(spec: RunSpec, size: int) -> Workload:
    """A square matmul at the run's precision: the rate a kernel's FLOPs are measured against."""
    a = torch.randn(size, size, device=spec.device)
    b = torch.randn(size, size, device=spec.device)

    def step() -> None:
        with spec.precision.active(spec.device):
            a @ b

    return Workload(step)


def calibration(spec: RunSpec) -> Workload:
    """The calibration workload itself, measured like a benchmark: its time over the calibration
    time is steady on any machine, so the detector's self-tests see only what they inject."""
    work = Calibration(spec.device)
    return Workload(work.seconds)


BUILDERS: dict[str, Callable[..., Workload]] = {
    "attention_step": attention_step,
    "training_step": training_step,
    "epoch": epoch,
    "matmul": matmul,
    "calibration": calibration,
}


def build(spec: RunSpec, name: str, params: dict) -> Workload:
    return BUILDERS[name](spec, **params)

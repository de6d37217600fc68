"""One round of a benchmark's step under torch.profiler, reduced to a compact table per aten operator.

The profiled pass of `ab --explain` (docs/ab.md, "Where the time went"): after a worker's timed
rounds, PROFILE_ROUNDS more rounds of the same `step`, warm, each under `torch.profiler.profile`,
apart from the timed rounds so that the profiler's overhead never reaches the clock. What comes
back, each operator's median over those rounds, is per
`aten::` operator its self CPU time (us), its calls and, on CUDA, its self device time (the
kernels it launched, in us), as builtins only (a message between processes); compiled graphs
(`--compile`, flex_attention on the CPU) under one name, COMPILED.

The worker (worker.py, the driving checkout's copy) loads this file from its own folder, as it
loads counts.py, so that both sides of an A/B session, an old baseline's checkout too, are
profiled by the same instrument. It imports torch only where it runs, nothing of the suite.
"""

from __future__ import annotations

import time
from collections.abc import Callable

ATEN = "aten::"
# A compiled region's kernels (inductor's, flex_attention's on the CPU) run under one event a graph,
# named by its hash and holding no aten operator: their self time is kept under this one name.
COMPILED = "compiled::graphs"
# Profiled rounds a process, each operator's median over them: a single profiled round of the
# training step had 30-40 ms spikes in one operator in some processes (`_log_softmax_backward_data`,
# `fill_`, `add_`: 1-2 ms elsewhere), enough to put it above an injected operator (docs/ab.md).
PROFILE_ROUNDS = 3


def op_name(key: str) -> str | None:
    """The table's name of a profiler event: an aten operator's own, COMPILED for a compiled
    graph's call, None for the rest (the profiler's and dynamo's own ranges)."""
    if key.startswith(ATEN):
        return key
    return COMPILED if "CompiledFxGraph" in key else None


def device_self_us(event) -> float:
    """An averaged event's self device time: `self_device_time_total` (newer torch) or the older
    `self_cuda_time_total`."""
    for name in ("self_device_time_total", "self_cuda_time_total"):
        value = getattr(event, name, None)
        if value is not None:
            return float(value)
    return 0.0


def profile_round(step: Callable[[], object], device, rounds: int = PROFILE_ROUNDS) -> dict:
    """`step` `rounds` times, each under a profiler of its own, and per operator the median over
    them: {"ops": {name: [self_us, calls, device_us]}, "device": on CUDA, "seconds": the wall time
    of the whole pass, the profiler's own work included}."""
    import statistics

    on_cuda = device.type == "cuda"
    started = time.perf_counter()
    tables = [one_round(step, device, on_cuda) for _ in range(rounds)]
    names = sorted({name for table in tables for name in table})
    ops = {}
    for name in names:
        entries = [table.get(name, [0.0, 0, 0.0]) for table in tables]
        ops[name] = [
            round(statistics.median(e[0] for e in entries), 3),
            int(statistics.median_low(e[1] for e in entries)),
            round(statistics.median(e[2] for e in entries), 3),
        ]
    return {"ops": ops, "device": on_cuda, "seconds": time.perf_counter() - started}


def one_round(step: Callable[[], object], device, on_cuda: bool) -> dict[str, list]:
    """One profiled round: per operator its self CPU time (us), calls and self device time (us)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if on_cuda else [])]
    with profile(activities=activities) as prof:
        step()
        if on_cuda:
            torch.cuda.synchronize(device)
    ops: dict[str, list] = {}
    for event in prof.key_averages():
        name = op_name(event.key)
        if name is not None:
            entry = ops.setdefault(name, [0.0, 0, 0.0])
            entry[0] = round(entry[0] + float(event.self_cpu_time_total), 3)
            entry[1] += int(event.count)
            entry[2] = round(entry[2] + device_self_us(event), 3)
    return ops

"""One round of a benchmark's step under torch.profiler, reduced to a compact table per aten operator.

The profiled pass of `ab --explain` (docs/ab.md, "Where the time went"): after a worker's timed
rounds, one more round of the same `step`, warm, under `torch.profiler.profile`, apart from the
timed rounds so that the profiler's overhead never reaches the clock. What comes back is per
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


def profile_round(step: Callable[[], object], device) -> dict:
    """`step` once under the profiler: {"ops": {name: [self_us, calls, device_us]}, "device": on
    CUDA, "seconds": the wall time of the whole pass, the profiler's own work included}."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    on_cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if on_cuda else [])]
    started = time.perf_counter()
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
    return {"ops": dict(sorted(ops.items())), "device": on_cuda, "seconds": time.perf_counter() - started}

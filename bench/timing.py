"""Device-correct timing shared by every benchmark: the timed call ends only when the work has."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from bench.device import synchronize


def synchronized(fn: Callable[[], object], device: torch.device) -> Callable[[], None]:
    """Wrap `fn` so it returns after the device finished its kernels (CUDA runs asynchronously)."""

    def run() -> None:
        fn()
        synchronize(device)

    return run


def median_seconds(fn: Callable[[], object], device: torch.device, rounds: int, warmup: int) -> float:
    """Median wall time of `fn` over `rounds` synchronized calls after `warmup` untimed ones.

    For measurements a benchmark makes beside its pytest-benchmark timing (a reference to compare
    against in the same run); pytest-benchmark times the benchmark itself.
    """
    run = synchronized(fn, device)
    for _ in range(warmup):
        run()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class Marks:
    """Timestamps inside a step that do not stall the device.

    On CUDA each mark records an event on the stream (the GPU timeline, idle gaps included); on the
    CPU, where work is synchronous, it reads perf_counter. Read intervals with `seconds` once the
    work is done: `seconds` synchronizes once, not once a step.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def mark(self) -> torch.cuda.Event | float:
        if self.device.type != "cuda":
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def seconds(self, start: torch.cuda.Event | float, end: torch.cuda.Event | float) -> float:
        if isinstance(start, float):
            return end - start
        end.synchronize()
        return start.elapsed_time(end) / 1000.0

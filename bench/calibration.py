"""A fixed yardstick timed in every worker process beside each benchmark.

One compute-bound part (a square fp32 matmul) and one memory-bound part (an elementwise add over
buffers far larger than a core's private caches). A benchmark's time over this time moves with the
code under test but not with the speed of the machine it ran on, which lets a comparison tell a
slower machine from slower code. Sizes are fixed per device type and never change with the options.
"""

from __future__ import annotations

import time

import torch

from bench.device import synchronize

# (matmul size, matmul repeats, elements of the memory-bound add) per device type
SIZES = {"cpu": (256, 8, 1 << 23), "cuda": (4096, 8, 1 << 28)}


class Calibration:
    """The fixed work, allocated once per process; `seconds()` times one synchronized round."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        size, self.repeats, elements = SIZES[device.type]
        generator = torch.Generator(device=device).manual_seed(0)
        self.a = torch.randn(size, size, device=device, generator=generator)
        self.b = torch.randn(size, size, device=device, generator=generator)
        self.x = torch.randn(elements, device=device, generator=generator)
        self.y = torch.empty_like(self.x)

    def seconds(self) -> float:
        start = time.perf_counter()
        for _ in range(self.repeats):
            torch.mm(self.a, self.b)
        torch.add(self.x, 1.0, out=self.y)
        synchronize(self.device)
        return time.perf_counter() - start

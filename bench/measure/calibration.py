"""The yardstick timed beside every round, on both sides of an A/B session alike.

The worker (worker.py, run by path) loads this file by path from the driving checkout, so that the
calibration is the same code on both sides; workloads.py imports it by name for the self-tests'
`calibration` workload. It imports nothing of the suite, and torch only where it is used (the
driver that names it never needs torch).
"""

from __future__ import annotations

import time

# (matmul size, matmul repeats, elements of the memory-bound add) per device type
CALIBRATION_SIZES = {"cpu": (256, 8, 1 << 23), "cuda": (4096, 8, 1 << 28)}


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Calibration:
    """A fixed yardstick timed beside every round: one compute-bound part (a square fp32 matmul)
    and one memory-bound part (an add over buffers far larger than a core's caches). A round's time
    over this time moves with the code under test but much less with the speed of the machine at
    that moment. Sizes are fixed per device type and never change with the options."""

    def __init__(self, device) -> None:
        import torch

        self.device = device
        size, self.repeats, elements = CALIBRATION_SIZES[device.type]
        generator = torch.Generator(device=device).manual_seed(0)
        self.a = torch.randn(size, size, device=device, generator=generator)
        self.b = torch.randn(size, size, device=device, generator=generator)
        self.x = torch.randn(elements, device=device, generator=generator)
        self.y = torch.empty_like(self.x)

    def seconds(self) -> float:
        import torch

        start = time.perf_counter()
        for _ in range(self.repeats):
            torch.mm(self.a, self.b)
        torch.add(self.x, 1.0, out=self.y)
        synchronize(self.device)
        return time.perf_counter() - start

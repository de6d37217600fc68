"""Device-correct timing shared by every benchmark: the timed call ends only when the work has."""

from __future__ import annotations

from collections.abc import Callable

import torch

from bench.device import synchronize


def synchronized(fn: Callable[[], object], device: torch.device) -> Callable[[], None]:
    """Wrap `fn` so it returns after the device finished its kernels (CUDA runs asynchronously)."""

    def run() -> None:
        fn()
        synchronize(device)

    return run

"""Timestamps inside a training step that stay correct on an asynchronous device."""

from __future__ import annotations

import time

import torch


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
        # on the run's device's stream: `record()` alone takes the current device's, cuda:0 unless set
        event.record(torch.cuda.current_stream(self.device))
        return event

    def seconds(self, start: torch.cuda.Event | float, end: torch.cuda.Event | float) -> float:
        if isinstance(start, float):
            return end - start
        end.synchronize()
        return start.elapsed_time(end) / 1000.0

"""Hardware and software identity of a run, so histories from different stacks never mix silently."""

from __future__ import annotations

import os
import platform
import subprocess
from functools import cache
from typing import Any

import torch
import transformers

from bench.base.history import digest


@cache
def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo, or what platform knows elsewhere."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@cache
def nvidia_driver() -> str | None:
    """torch does not expose the driver version; nvidia-smi does where it is installed."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def machine_fingerprint(
    device: torch.device, dtype: str, worker_threads: int | None = None, run: dict | None = None
) -> dict[str, Any]:
    """Everything that changes a timing besides the code under test: the hardware and the run's
    configuration (`run`: the model's shape, batch, sequence length, ...; RunSpec.run_config), which
    make a series (bench/base/history.py), and the software stack, which labels the runs in it.

    `torch_threads` is this process's thread count; `worker_threads` the one the sampled benchmarks'
    worker processes compute with (bench/measure/sampling.py).
    """
    cuda = device.type == "cuda"
    return {
        "device": device.type,
        "gpu_name": torch.cuda.get_device_name(device) if cuda else None,
        "gpu_count": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "gpu_driver": nvidia_driver() if cuda else None,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "worker_threads": worker_threads,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "transformers": transformers.__version__,
        "dtype": dtype,
        **({"run": run} if run is not None else {}),
    }


def fingerprint_id(fingerprint: dict[str, Any]) -> str:
    """The digest of the whole stack, software included: equal ids, identical stacks."""
    return digest(fingerprint)

"""Device and numeric-precision choices, validated before anything is timed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from bench.base.errors import BenchInputError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda:0 when torch sees a GPU; an explicit CUDA request fails loudly without one.
    A CUDA device always comes back with its index: `torch.cuda.set_device`, which every worker and
    a single-process run call with it, refuses one without."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise BenchInputError(
            f"--device {name!r}: unknown device; expected one of {', '.join(DEVICE_CHOICES)}"
        ) from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise BenchInputError(
            f"--device {name!r}: unsupported device type {device.type!r}; "
            f"expected one of {', '.join(DEVICE_CHOICES)}"
        )
    if not torch.cuda.is_available():
        raise BenchInputError(
            f"--device {name!r}: CUDA is not available on this machine "
            f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); use --device cpu"
        )
    index = 0 if device.index is None else device.index
    if index >= torch.cuda.device_count():
        raise BenchInputError(
            f"--device {name!r}: only {torch.cuda.device_count()} CUDA device(s) are visible"
        )
    return torch.device("cuda", index)


@dataclass(frozen=True)
class Precision:
    """How matmuls run: plain fp32, TF32 tensor cores, or bf16/fp16 autocast."""

    name: str
    autocast_dtype: torch.dtype | None
    allow_tf32: bool

    @property
    def needs_grad_scaler(self) -> bool:
        """fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range."""
        return self.autocast_dtype is torch.float16

    @contextlib.contextmanager
    def matmul_mode(self) -> Iterator[None]:
        """TF32 on or off for everything enclosed, restoring the global flags after. A training step
        runs wholly inside it (forward, backward, optimizer): the flags are read when a matmul runs,
        and backward runs outside the forward's autocast region."""
        saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = self.allow_tf32
        torch.backends.cudnn.allow_tf32 = self.allow_tf32
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved

    @contextlib.contextmanager
    def active(self, device: torch.device) -> Iterator[None]:
        """Run the enclosed forward pass at this precision: autocast (bf16/fp16) and the TF32 mode."""
        with self.matmul_mode():
            if self.autocast_dtype is None:
                yield
            else:
                with torch.autocast(device_type=device.type, dtype=self.autocast_dtype):
                    yield


PRECISIONS = {
    "fp32": Precision("fp32", None, allow_tf32=False),
    "tf32": Precision("tf32", None, allow_tf32=True),
    "bf16": Precision("bf16", torch.bfloat16, allow_tf32=False),
    "fp16": Precision("fp16", torch.float16, allow_tf32=False),
}


def resolve_precision(name: str, device: torch.device) -> Precision:
    """TF32 is a tensor-core mode: asking for it on a CPU is a mistake worth reporting."""
    if name not in PRECISIONS:
        raise BenchInputError(f"--dtype {name!r}: unknown dtype; expected one of {', '.join(PRECISIONS)}")
    if name == "tf32" and device.type != "cuda":
        raise BenchInputError(
            f"--dtype tf32 needs a CUDA device (TF32 runs on tensor cores); the device is {device}"
        )
    return PRECISIONS[name]


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so a timer read afterwards includes them."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def use_threads(threads: int | None) -> None:
    """Fix torch's CPU thread count before anything is timed (None keeps torch's default)."""
    if threads is not None:
        torch.set_num_threads(threads)

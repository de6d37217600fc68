"""FLOPs, memory and rates: one definition of each, shared by every benchmark.

FLOPs come two ways. `counted_flops` runs a function under torch.utils.flop_counter.FlopCounterMode,
which counts the matmul-like ops the implementation actually executes (mm, bmm, einsum, SDPA as if
unmasked, the CPU flash kernel included): it credits an implementation for its wasted tiles (HF's
overlapping chunks, the blocked version's 3w-wide tiles) and ignores elementwise work. The `*_flops`
formulas count the useful work of the function itself, the same for every implementation, so
achieved FLOP/s = useful FLOPs / time compares implementations fairly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

BACKWARD_FACTOR = 2  # a matmul's backward is two matmuls of the same size (input and weight grads)


def attention_layer_flops(batch: int, seq_len: int, hidden: int, window: int | None, backward: bool) -> int:
    """Useful FLOPs of one Longformer self-attention layer: q/k/v projections plus the band.

    Each query scores and mixes `window + 1` keys (window/2 on each side and itself); `window=None`
    means dense attention over all `seq_len` keys. Forward only, or forward + backward (x3).
    """
    keys = seq_len if window is None else window + 1
    projections = 3 * 2 * batch * seq_len * hidden * hidden
    band = 2 * 2 * batch * seq_len * keys * hidden  # QK^T and PV, over all heads
    forward = projections + band
    return forward * (1 + BACKWARD_FACTOR) if backward else forward


def _cpu_flash_sdpa(query, key, value, *args, out_val=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_flash_sdpa_backward(grad_out, query, key, value, *args, out_val=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


# torch's counter knows the CUDA SDPA kernels but not the CPU flash kernel; count it the same way.
CPU_SDPA_FORMULAS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_sdpa,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_flash_sdpa_backward,
}


def counted_flops(fn: Callable[[], object]) -> int:
    """FLOPs torch's flop counter attributes to one call of `fn` (forward and any backward in it)."""
    with FlopCounterMode(display=False, custom_mapping=CPU_SDPA_FORMULAS) as counter:
        fn()
    return int(counter.get_total_flops())


def saved_bytes_for_backward(fn: Callable[[], object]) -> int:
    """Bytes of the distinct tensors autograd keeps for backward while `fn` runs a forward pass."""
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return sum(seen.values())


def peak_cuda_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Peak memory allocated on `device` while `fn` runs, above what was allocated before."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def matmul_flops_per_s(device: torch.device, size: int = 2048, rounds: int = 5) -> float:
    """Median fp32 matmul rate on this device: the yardstick for how close to the floor a kernel is."""
    from bench.timing import median_seconds

    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    return 2 * size**3 / median_seconds(lambda: a @ b, device, rounds=rounds, warmup=1)

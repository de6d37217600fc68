"""FLOPs, memory and rates: one definition of each, shared by every benchmark.

FLOPs come two ways. bench/measure/counts.py `counted_flops` runs a function under torch's
FlopCounterMode, which counts the matmul-like ops the implementation actually executes (mm, bmm,
einsum, SDPA as if unmasked, the CPU flash kernel included): it credits an implementation for its
wasted tiles (HF's overlapping chunks, the blocked version's 3w-wide tiles) and ignores elementwise
work. The `*_flops` formulas here count the useful work of the function itself, the same for every
implementation, so achieved FLOP/s = useful FLOPs / time compares implementations fairly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

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


def peak_cuda_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Peak memory allocated on `device` while `fn` runs, above what was allocated before."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def training_state_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Bytes a training run keeps between steps: parameters, their gradients, the optimizer's state."""
    tensors = [p for p in model.parameters()] + [p.grad for p in model.parameters() if p.grad is not None]
    tensors += [t for state in optimizer.state.values() for t in state.values() if torch.is_tensor(t)]
    return sum(t.numel() * t.element_size() for t in tensors)


def training_peak_cuda_bytes(
    fn: Callable[[], object], device: torch.device, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> int:
    """The training's own peak while `fn` trains: its state at the start plus the most `fn`
    allocated on top. What else the process holds on the device (the calibration's buffers, a
    cached initial model, the data) is not the training's and is left out."""
    state = training_state_bytes(model, optimizer)
    return state + peak_cuda_bytes(fn, device)


def throughputs(
    samples: int, train_seconds: float, step_seconds: list[float], core_seconds: list[float]
) -> dict:
    """FlagPerf's three throughputs, in samples (one block of seq_len tokens) per second.

    p_whole: over the training wall time, evaluations included; p_train: over the sum of step times
    (data wait included, evaluation excluded); p_core: over the sum of forward+backward+optimizer+
    scheduler times only.
    """
    return {
        "p_whole": samples / train_seconds,
        "p_train": samples / sum(step_seconds),
        "p_core": samples / sum(core_seconds),
    }


def percentiles(values: list[float], points: tuple[int, ...] = (50, 90, 99)) -> dict[str, float]:
    """Nearest-rank percentiles, {"p50": ..., ...}: the spread of step times FlagPerf leaves out."""
    ordered = sorted(values)
    return {f"p{p}": ordered[min(len(ordered) - 1, max(0, -(-p * len(ordered) // 100) - 1))] for p in points}


def model_flops_per_sample(config, seq_len: int) -> int:
    """Useful FLOPs to train LongformerForMaskedLM on one sample (forward + backward = 3 x forward).

    Per layer: q/k/v/output projections 8·L·E², feed-forward 4·L·E·F, the band 4·L·(w+1)·E; then the
    LM head's dense 2·L·E² and decoder 2·L·E·V. Embeddings, norms and softmax are left out (they are
    not matmuls), as are the global-attention projections, which no FlagPerf token uses.
    """
    hidden, ffn, vocab = config.hidden_size, config.intermediate_size, config.vocab_size
    layers = sum(
        8 * seq_len * hidden**2 + 4 * seq_len * hidden * ffn + 4 * seq_len * (window + 1) * hidden
        for window in config.attention_window
    )
    head = 2 * seq_len * hidden**2 + 2 * seq_len * hidden * vocab
    return (1 + BACKWARD_FACTOR) * (layers + head)


# Dense (not sparse) peak FLOP/s from the vendors' data sheets, by the exact name torch reports
# (torch.cuda.get_device_name). Parts differ: an H100 PCIe peaks at 756 bf16 TFLOP/s, an SXM at 989,
# so a name is matched whole or not at all; any other card (H100/H200 NVL among them) needs
# --peak-tflops for an MFU. V100 has no TF32 (it runs fp32) and no bf16 tensor cores.
_H100_SXM = {"fp32": 67e12, "tf32": 494.5e12, "bf16": 989.5e12, "fp16": 989.5e12}
_A100 = {"fp32": 19.5e12, "tf32": 156e12, "bf16": 312e12, "fp16": 312e12}
_V100 = {"fp32": 15.7e12, "tf32": 15.7e12, "bf16": None, "fp16": 125e12}
PEAK_FLOPS: dict[str, dict[str, float | None]] = {
    "NVIDIA H200": _H100_SXM,  # H200 SXM: the H100 SXM's compute
    "NVIDIA H100 80GB HBM3": _H100_SXM,
    "NVIDIA H100 PCIe": {"fp32": 51e12, "tf32": 378e12, "bf16": 756e12, "fp16": 756e12},
    "NVIDIA A100-SXM4-40GB": _A100,
    "NVIDIA A100-SXM4-80GB": _A100,
    "NVIDIA A100-PCIE-40GB": _A100,
    "NVIDIA A100 80GB PCIe": _A100,
    "Tesla V100-SXM2-16GB": _V100,
    "Tesla V100-SXM2-32GB": _V100,
}


def peak_flops(gpu_name: str | None, dtype: str, override: float | None = None) -> float | None:
    """The card's dense peak for `dtype`; `override` (FLOP/s) wins; None where the card is not one
    of PEAK_FLOPS's exactly (then MFU is left out and the summary asks for --peak-tflops)."""
    if override:
        return override
    return PEAK_FLOPS.get((gpu_name or "").strip(), {}).get(dtype)


def efficiency(p_core: float, flops_per_sample: int, peak: float | None) -> dict[str, float | None]:
    """Achieved model FLOP/s over the core step time, and MFU where the device's peak is known."""
    achieved = p_core * flops_per_sample
    return {
        "model_flops_per_sample": flops_per_sample,
        "achieved_flops_per_s": achieved,
        "peak_flops_per_s": peak,
        "mfu": achieved / peak if peak else None,
    }

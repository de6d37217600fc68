"""Step time of one sliding-window self-attention layer: HF's, a faster exact one, and dense.

Dimensions (hidden size, heads) are the model under test's; window, sequence length and batch are
parameters. Inputs are random non-zero hidden states without padding (FlagPerf never pads).
"""

from __future__ import annotations

import pytest
import torch
from transformers import LongformerConfig

from bench.attention import EXACT, layer_inputs, make_layer
from bench.metrics import (
    attention_layer_flops,
    counted_flops,
    matmul_flops_per_s,
    peak_cuda_bytes,
    saved_bytes_for_backward,
)
from bench.timing import median_seconds, synchronized

ROUNDS, WARMUP_ROUNDS = 10, 2
# (window, seq_len, batch)
FAST_CASES = [(32, 512, 2), (32, 2048, 2), (128, 512, 2), (128, 2048, 2)]
GPU_CASES = [(512, n, 1) for n in (512, 1024, 2048, 4096)] + [
    (128, 4096, 1),
    (256, 4096, 1),
    (512, 4096, 8),
]
PASSES = ("forward", "forward_backward")


def case_id(case: tuple[int, int, int]) -> str:
    window, seq_len, batch = case
    return f"w{window}-L{seq_len}-b{batch}"


def measure_layer(benchmark, run_spec, config, implementation, window, seq_len, batch, pass_) -> None:
    """Time one layer of `config`'s dimensions (forward, or forward + backward); record what it did."""
    device, precision = run_spec.device, run_spec.precision
    if seq_len % window:
        pytest.skip(f"seq_len {seq_len} is not a multiple of window {window}")
    layer = make_layer(config, window, implementation, device, run_spec.seed)
    x, kwargs = layer_inputs(batch, seq_len, config.hidden_size, device, run_spec.seed)
    backward = pass_ == "forward_backward"
    x.requires_grad_(backward)
    upstream = torch.randn(batch, seq_len, config.hidden_size, device=device)

    def step() -> None:
        with precision.active(device):
            out = layer(x, **kwargs)[0]
        if backward:
            layer.zero_grad(set_to_none=True)
            x.grad = None
            out.backward(upstream.to(out.dtype))

    benchmark.pedantic(synchronized(step, device), rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS, iterations=1)
    if benchmark.disabled:
        return
    median = benchmark.stats.stats.median
    useful = attention_layer_flops(
        batch, seq_len, config.hidden_size, None if implementation == "dense" else window, backward
    )
    memory = (
        {"peak_cuda_bytes": peak_cuda_bytes(step, device)}
        if device.type == "cuda"
        else {"saved_bytes_for_backward": saved_bytes_for_backward(lambda: layer(x, **kwargs))}
    )
    benchmark.extra_info.update(
        implementation=implementation,
        passes=pass_,
        batch_size=batch,
        seq_len=seq_len,
        window=window,
        hidden_size=config.hidden_size,
        heads=config.num_attention_heads,
        dtype=precision.name,
        tokens_per_s=batch * seq_len / median,
        useful_flops=useful,
        counted_flops=counted_flops(step) if implementation != "flex" else None,
        achieved_flops_per_s=useful / median,
        **memory,
    )


@pytest.mark.fast
@pytest.mark.parametrize("pass_", PASSES)
@pytest.mark.parametrize("implementation", ["hf", "blocked", "dense"])
@pytest.mark.parametrize("case", FAST_CASES, ids=case_id)
def test_attention_step(benchmark, run_spec, implementation, case, pass_):
    benchmark.group = f"attention {case_id(case)} {pass_}"
    measure_layer(benchmark, run_spec, run_spec.config, implementation, *case, pass_)


@pytest.mark.gpu
@pytest.mark.parametrize("pass_", PASSES)
@pytest.mark.parametrize("implementation", ["hf", "blocked", "flex", "dense"])
@pytest.mark.parametrize("case", GPU_CASES, ids=case_id)
def test_attention_step_gpu(benchmark, run_spec, implementation, case, pass_):
    if run_spec.device.type != "cuda":
        pytest.skip(f"gpu cases run on CUDA; the run's device is {run_spec.device}")
    benchmark.group = f"attention {case_id(case)} {pass_}"
    measure_layer(benchmark, run_spec, run_spec.config, implementation, *case, pass_)


@pytest.mark.slow
@pytest.mark.parametrize("faster", [impl for impl in EXACT if impl != "hf"])
def test_attention_speedup_at_base_dims(benchmark, run_spec, faster):
    """longformer-base's layer (hidden 768, 12 heads, window 512, seq 4096, batch 1), forward+backward.

    Times the faster implementation with pytest-benchmark and, in the same process, HF's layer and
    a 2048^3 matmul at the run's dtype; records speedup over HF and the distance from the floor
    (useful FLOPs / that matmul rate).
    """
    device = run_spec.device
    if faster == "flex" and device.type != "cuda":
        pytest.skip("flex_attention has no backward on the CPU")
    config = LongformerConfig(hidden_size=768, num_attention_heads=12, num_hidden_layers=1)
    window, seq_len, batch = 512, 4096, 1
    measure_layer(benchmark, run_spec, config, faster, window, seq_len, batch, "forward_backward")
    if benchmark.disabled:
        return
    hf = make_layer(config, window, "hf", device, run_spec.seed)
    x, kwargs = layer_inputs(batch, seq_len, 768, device, run_spec.seed)
    x.requires_grad_(True)

    def hf_step() -> None:
        with run_spec.precision.active(device):
            out = hf(x, **kwargs)[0]
        hf.zero_grad(set_to_none=True)
        out.sum().backward()

    hf_seconds = median_seconds(hf_step, device, rounds=5, warmup=1)
    rate = matmul_flops_per_s(device, run_spec.precision)
    median = benchmark.stats.stats.median
    floor = benchmark.extra_info["useful_flops"] / rate
    benchmark.extra_info.update(
        hf_seconds=hf_seconds,
        speedup_over_hf=hf_seconds / median,
        matmul_flops_per_s=rate,
        floor_seconds=floor,
        times_floor=median / floor,
    )

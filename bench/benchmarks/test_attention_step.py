"""Step time of one sliding-window self-attention layer: HF's, a faster exact one, and dense.

Dimensions (hidden size, heads) are the model under test's; window, sequence length and batch are
parameters. Inputs are random non-zero hidden states without padding (FlagPerf never pads).
"""

from __future__ import annotations

import statistics

import pytest

from bench.harness.attention import EXACT
from bench.harness.compiled import compile_extra_info
from bench.harness.metrics import attention_layer_flops, peak_cuda_bytes
from bench.measure.jobs import ATTENTION_ROUNDS, ATTENTION_WARMUP
from bench.measure.sampling import Job
from bench.measure.workloads import attention_step, matmul_size

# (window, seq_len, batch)
FAST_CASES = [(32, 512, 2), (128, 2048, 2)]
GPU_CASES = [(512, n, 1) for n in (512, 1024, 2048, 4096)] + [
    (128, 4096, 1),
    (256, 4096, 1),
    (512, 4096, 8),
]
PASSES = ("forward", "forward_backward")
BASE_DIMS = {"hidden": 768, "heads": 12}  # longformer-base's layer


def case_id(case: tuple[int, int, int]) -> str:
    window, seq_len, batch = case
    return f"w{window}-L{seq_len}-b{batch}"


def measure_layer(sampled, benchmark, run_spec, params: dict) -> None:
    """Time one layer (forward, or forward + backward) in the worker processes; here, record what it
    did: FLOPs by formula and counted, memory saved for backward (the workers' counted round,
    bench/measure/counts.py) and on CUDA the step's peak memory."""
    if params["seq_len"] % params["window"]:
        pytest.skip(f"seq_len {params['seq_len']} is not a multiple of window {params['window']}")
    steps = sampled("attention_step", params, ATTENTION_ROUNDS, ATTENTION_WARMUP)
    device = run_spec.device
    work = attention_step(run_spec, **params, compile_mode="off")  # counted here, eager
    median = statistics.median(benchmark.extra_info["process_medians"])
    backward = params["passes"] == "forward_backward"
    batch, seq_len, hidden = params["batch"], params["seq_len"], work.facts["hidden_size"]
    dense = params["implementation"] == "dense"
    useful = attention_layer_flops(batch, seq_len, hidden, None if dense else params["window"], backward)
    exact = benchmark.extra_info.get("exact", {})  # flex's round is not counted but for its peak
    memory = (
        {"peak_cuda_bytes": peak_cuda_bytes(work.step, device)}
        if device.type == "cuda"
        else {"saved_bytes_for_backward": exact["saved_bytes"]}
    )
    benchmark.extra_info.update(
        {**params, **work.facts},  # the facts restate hidden/heads where params give them
        dtype=run_spec.precision.name,
        tokens_per_s=batch * seq_len / median,
        useful_flops=useful,
        counted_flops=exact.get("flops"),
        achieved_flops_per_s=useful / median,
        **memory,
        **compile_extra_info(steps),
    )


def layer_params(implementation: str, case: tuple[int, int, int], pass_: str, **dims) -> dict:
    window, seq_len, batch = case
    return dict(
        implementation=implementation, window=window, seq_len=seq_len, batch=batch, passes=pass_, **dims
    )


@pytest.mark.fast
@pytest.mark.parametrize("pass_", PASSES)
# the layers that train (HF's and the faster exact one) are what the pull-request check judges;
# dense is the reference a window is measured against
@pytest.mark.parametrize(
    "implementation",
    [pytest.param("hf", marks=pytest.mark.pr), pytest.param("blocked", marks=pytest.mark.pr), "dense"],
)
@pytest.mark.parametrize("case", FAST_CASES, ids=case_id)
def test_attention_step(sampled, benchmark, run_spec, implementation, case, pass_):
    benchmark.group = f"attention {case_id(case)} {pass_}"
    measure_layer(sampled, benchmark, run_spec, layer_params(implementation, case, pass_))


@pytest.mark.gpu
@pytest.mark.parametrize("pass_", PASSES)
@pytest.mark.parametrize("implementation", ["hf", "blocked", "flex", "dense"])
@pytest.mark.parametrize("case", GPU_CASES, ids=case_id)
def test_attention_step_gpu(sampled, benchmark, run_spec, implementation, case, pass_):
    if run_spec.device.type != "cuda":
        pytest.skip(f"gpu cases run on CUDA; the run's device is {run_spec.device}")
    benchmark.group = f"attention {case_id(case)} {pass_}"
    measure_layer(sampled, benchmark, run_spec, layer_params(implementation, case, pass_))


@pytest.mark.slow
@pytest.mark.parametrize("faster", [impl for impl in EXACT if impl != "hf"])
def test_attention_speedup_at_base_dims(sampled, sample, benchmark, run_spec, faster):
    """longformer-base's layer (hidden 768, 12 heads, window 512, seq 4096, batch 1), forward+backward.

    Times the faster implementation and, in the same worker processes, HF's layer and a square
    matmul at the run's dtype (2048 on the CPU, 8192 on CUDA: bench/measure/workloads.py); records speedup
    over HF and the distance from the floor (useful FLOPs / that matmul rate).
    """
    if faster == "flex" and run_spec.device.type != "cuda":
        pytest.skip("flex_attention has no backward on the CPU")
    case = (512, 4096, 1)
    measure_layer(sampled, benchmark, run_spec, layer_params(faster, case, "forward_backward", **BASE_DIMS))

    def worker_median(workload: str, params: dict) -> float:
        return statistics.median(s.median for s in sample(Job(workload, params, ATTENTION_ROUNDS)))

    hf_seconds = worker_median("attention_step", layer_params("hf", case, "forward_backward", **BASE_DIMS))
    size = matmul_size(run_spec.device)
    rate = 2 * size**3 / worker_median("matmul", {"size": size})
    median = statistics.median(benchmark.extra_info["process_medians"])
    floor = benchmark.extra_info["useful_flops"] / rate
    benchmark.extra_info.update(
        hf_seconds=hf_seconds,
        speedup_over_hf=hf_seconds / median,
        matmul_flops_per_s=rate,
        floor_seconds=floor,
        times_floor=median / floor,
    )

"""The summary after pytest-benchmark's table: the figures each benchmark was run for."""

from __future__ import annotations

from bench.verdicts.summary import Measured, si, summary_lines

EPOCH = {
    "p_whole": 46.98,
    "p_train": 49.91,
    "p_core": 49.98,
    "tokens_per_s": 12777.0,
    "mfu": None,
    "peak_tensor_bytes": 199_553_792,
    "peak_tensor_kind": "tracked",
    "process_max_rss_bytes": 747_040_768,
    "max_samples": 32,
    "train_set_samples": 256,
    "eval_samples": 32,
    "batch_size": 16,
}


def attention(implementation: str, median: float, **extra) -> Measured:
    info = {
        "implementation": implementation,
        "tokens_per_s": 1024 / median,
        "achieved_flops_per_s": 2e9,
        **extra,
    }
    return Measured(
        f"test_attention_step[w32-L512-b2-{implementation}-forward]", "attention w32", median, info
    )


def test_every_kind_of_benchmark_gets_its_figures_under_its_name():
    lines = summary_lines(
        [
            Measured("test_epoch_slice_throughput", "epoch slice", 0.8, EPOCH),
            Measured(
                "test_train_step[hf]", "train step", 0.3, {"samples_per_s": 53.3, "tokens_per_s": 13653.0}
            ),
            attention("hf", 0.010),
            attention("blocked", 0.004),
            Measured(
                "test_convergence",
                "convergence",
                95.0,
                {
                    "case": "embedded",
                    "eval_accuracy": [0.01, 0.93],
                    "target_accuracy": 0.9,
                    "time_to_target_s": 95.04,
                    "epochs": 12,
                    "status": "converged",
                },
            ),
            Measured("test_something_else", None, 1.0, {}),  # nothing beyond its time: no line
        ]
    )
    assert len(lines) == 5
    epoch, step, hf, blocked, convergence = lines
    assert "p_whole 47, p_train 49.9, p_core 50 samples/s; 12.8k tokens/s" in epoch
    assert "MFU: peak unknown (--peak-tflops)" in epoch
    assert "peak tensor memory 0.20 GB (tracked); process max RSS 0.75 GB" in epoch
    assert "the first 32 of 256 train samples and 32 eval samples, at batch 16" in epoch
    assert step.endswith("53.3 samples/s, 13.7k tokens/s")
    assert "HF's layer" not in hf and "blocked: 256k tokens/s, 2G FLOP/s, 2.50x HF's layer" in blocked
    assert (
        "embedded: accuracy 0.9300 (target 0.9), target reached in 95.0 s, 12 epochs, converged"
        in convergence
    )
    for entry in lines:  # the test id on its line, the figures indented under it, within 100 columns
        name, *figures = entry.splitlines()
        assert name.startswith("test_") and figures and all(f.startswith("    ") for f in figures)
        assert max(len(line) for line in entry.splitlines()) <= 100


def test_a_run_saved_before_tensors_were_tracked_reads_with_its_one_figure_as_saved():
    """Saved runs kept `peak_memory_bytes` (on the CPU the worker's max RSS) and said which it was."""
    old = {k: v for k, v in EPOCH.items() if "tensor" not in k and "rss" not in k}
    old.update(peak_memory_bytes=747_040_768, peak_memory_kind="worker process max RSS")
    (entry,) = summary_lines([Measured("test_epoch_slice_throughput", "epoch slice", 0.8, old)])
    assert "peak memory 0.75 GB (worker process max RSS)" in entry and "tensor" not in entry


def test_measured_speedups_and_the_floor_win_over_the_ratio_of_medians():
    (line,) = summary_lines([attention("blocked", 0.004, speedup_over_hf=3.1, times_floor=7.25)])
    assert line.endswith("3.10x HF's layer, 7.2x the matmul floor")


def test_the_training_step_says_the_batch_it_trained_at():
    """The fast step picks its own batch (2 here, whatever --batch-size says): its line says so."""
    extra = {"samples_per_s": 53.3, "tokens_per_s": 27290.0, "batch_size": 2, "seq_len": 256}
    (line,) = summary_lines([Measured("test_train_step_fast", "train step", 0.0375, extra)])
    assert line == "test_train_step_fast\n    53.3 samples/s, 27.3k tokens/s; at batch 2 x 256 tokens"


def test_a_compiled_step_says_its_compile_latency_and_parity():
    extra = {
        "samples_per_s": 53.3,
        "tokens_per_s": 27290.0,
        "batch_size": 2,
        "seq_len": 256,
        "compile": "default",
        "compile_seconds": 5.62,
        "parity": {"loss_rel": 2.5e-7, "grad_rel": 1.5e-6, "tolerance": 1e-3, "passed": True},
        "recompile_reasons": ["0/1: tensor 'x' size mismatch at index 0. expected 2, actual 3"],
    }
    (line,) = summary_lines([Measured("test_train_step_compiled", "train step", 0.0375, extra)])
    assert line == (
        "test_train_step_compiled\n    53.3 samples/s, 27.3k tokens/s; at batch 2 x 256 tokens\n"
        "    compiled (default): compile 5.6 s, parity within 0.001 (loss 2.5e-07, grads 1.5e-06)"
        "\n    1 recompile"
    )


def test_si_prefixes():
    assert si(12777, "tokens/s") == "12.8k tokens/s"
    assert si(4.5e13, "FLOP/s") == "45T FLOP/s"
    assert si(12.5, "x") == "12.5 x"


# the fast training step's counts at batch 2 (embedded model; bench/measure/counts.py)
EXACT = {"flops": 1_835_925_504, "saved_bytes": 20_827_652, "peak_bytes": 31_362_412, "op_calls": 1596}


def test_the_exact_counts_of_a_round_follow_the_figures_and_graph_breaks_when_compiled():
    extra = {"samples_per_s": 53.3, "tokens_per_s": 27290.0, "batch_size": 2, "seq_len": 256}
    compiled = {**EXACT, "graph_breaks": 3, "unique_graphs": 4, "recompiles": 0}
    eager, under_compile, epoch, bare = summary_lines(
        [
            Measured("test_train_step_fast", "train step", 0.0375, {**extra, "exact": EXACT}),
            Measured("test_train_step_fast[compiled]", "train step", 0.04, {**extra, "exact": compiled}),
            Measured("test_epoch_slice_throughput", "epoch slice", 0.8, {**EPOCH, "exact": EXACT}),
            Measured("test_calibration", None, 1.0, {"exact": EXACT}),  # counts and nothing else
        ]
    )
    counts = "1.84G FLOPs a round, 20.8 MB saved for backward, peak 31.4 MB, 1,596 op calls"
    assert eager.splitlines()[2:] == [f"    {counts}"]
    assert under_compile.splitlines()[2:] == [
        f"    {counts}",
        "    3 graph breaks, 4 unique graphs, 0 recompiles",
    ]
    # the epoch's peak is its peak tensor memory already: not said twice
    assert "1.84G FLOPs a round, 20.8 MB saved for backward, 1,596 op calls" in epoch and "31.4" not in epoch
    assert bare == f"test_calibration\n    {counts}"
    for entry in (eager, under_compile, epoch, bare):
        assert max(len(line) for line in entry.splitlines()) <= 100

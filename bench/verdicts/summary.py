"""The figures a run was made for, printed after pytest-benchmark's table of seconds per round.

pytest-benchmark shows time per round; a performance engineer reads throughput: samples and tokens
per second, FLOP/s and MFU, the speedup over HF's attention at the same shape, peak memory, time
to the target accuracy; and the exact counts of one round (FLOPs, bytes saved for backward, peak
tensor bytes, operator calls, under torch.compile graph breaks). Built from the benchmarks'
extra_info alone (no torch import), one entry per benchmark, so a saved run's JSON gives the same
lines as the session that made it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.verdicts.notation import WIDTH, wrap


@dataclass(frozen=True)
class Measured:
    """One benchmark as the summary needs it: from a live session or from a saved run's JSON."""

    name: str  # the test's name, e.g. test_attention_step[w32-L512-b2-hf-forward]
    group: str | None
    median: float | None  # seconds per round (pytest-benchmark's median)
    extra: dict


def scaled(value: float) -> tuple[float, str]:
    """`value` over its k/M/G/T factor, and the prefix."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return value / factor, prefix
    return value, ""


def si(value: float, unit: str) -> str:
    """3 significant digits with a k/M/G/T prefix: 12800 tokens/s -> 12.8k tokens/s."""
    number, prefix = scaled(value)
    return f"{number:.3g}{prefix} {unit}"


def si_bytes(n_bytes: float) -> str:
    """3 significant digits in bytes with a prefix: 20827652 -> 20.8 MB."""
    number, prefix = scaled(n_bytes)
    return f"{number:.3g} {prefix}B"


def gigabytes(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.2f} GB"


def memory_parts(extra: dict) -> list[str]:
    """The training's peak tensor memory, how it was counted, and the worker's max RSS beside it; a
    run saved before tensors were counted has one figure (CPU: the RSS), labelled as it was saved."""
    if "peak_tensor_bytes" not in extra:
        return [f"peak memory {gigabytes(extra['peak_memory_bytes'])} ({extra['peak_memory_kind']})"]
    return [
        f"peak tensor memory {gigabytes(extra['peak_tensor_bytes'])} ({extra['peak_tensor_kind']})",
        f"process max RSS {gigabytes(extra['process_max_rss_bytes'])}",
    ]


def epoch_line(extra: dict) -> str:
    parts = [
        ", ".join(f"{key} {extra[key]:.3g}" for key in ("p_whole", "p_train", "p_core")) + " samples/s",
        si(extra["tokens_per_s"], "tokens/s"),
        f"MFU {extra['mfu']:.1%}" if extra.get("mfu") else "MFU: peak unknown (--peak-tflops)",
        *memory_parts(extra),
    ]
    if extra.get("max_samples"):
        parts.append(
            f"each round the first {extra['max_samples']} of {extra['train_set_samples']} train samples "
            f"and {extra['eval_samples']} eval samples, at batch {extra['batch_size']}"
        )
    return "; ".join(parts)


def attention_line(measured: Measured, hf_median: float | None) -> str:
    extra = measured.extra
    parts = [
        f"{extra['implementation']}: {si(extra['tokens_per_s'], 'tokens/s')}",
        si(extra["achieved_flops_per_s"], "FLOP/s"),
    ]
    if "speedup_over_hf" in extra:
        parts.append(f"{extra['speedup_over_hf']:.2f}x HF's layer")
    elif hf_median and measured.median and extra["implementation"] != "hf":
        parts.append(f"{hf_median / measured.median:.2f}x HF's layer")
    if extra.get("times_floor"):
        parts.append(f"{extra['times_floor']:.1f}x the matmul floor")
    return ", ".join(parts)


def convergence_line(extra: dict) -> str:
    reached = extra["eval_accuracy"][-1] if extra.get("eval_accuracy") else None
    accuracy = "no evaluation" if reached is None else f"accuracy {reached:.4f}"
    when = (
        f"target reached in {extra['time_to_target_s']:.1f} s"
        if extra.get("time_to_target_s") is not None
        else "target not reached"
    )
    return (
        f"{extra['case']}: {accuracy} (target {extra['target_accuracy']}), {when}, "
        f"{extra['epochs']} epochs, {extra['status']}"
    )


# the compiled path's counts (helper `compile`'s keys), shown where a round has them
COMPILE_COUNTS = (
    ("graph_breaks", "graph breaks"),
    ("unique_graphs", "unique graphs"),
    ("recompiles", "recompiles"),
)


def exact_line(extra: dict) -> str | None:
    """The exact counts of one round (the workers' counted round, bench/measure/counts.py), or
    None for a benchmark saved without them; the peak is left out where the line has it already
    (the epoch's peak tensor memory is the same count)."""
    exact = extra.get("exact")
    if not isinstance(exact, dict) or "flops" not in exact:
        return None
    parts = [f"{si(exact['flops'], 'FLOPs')} a round", f"{si_bytes(exact['saved_bytes'])} saved for backward"]
    if "peak_bytes" in exact and "peak_tensor_bytes" not in extra:
        parts.append(f"peak {si_bytes(exact['peak_bytes'])}")
    parts.append(f"{exact['op_calls']:,} op calls")
    compiled = [f"{exact[key]} {label}" for key, label in COMPILE_COUNTS if key in exact]
    return "; ".join([", ".join(parts), *([", ".join(compiled)] if compiled else [])])


def line(measured: Measured, hf_medians: dict[str, float]) -> str | None:
    """The figures of one benchmark and its exact counts, or None for a benchmark with nothing
    beyond its time."""
    figures = [text for text in (timed_line(measured, hf_medians), exact_line(measured.extra)) if text]
    return "; ".join(figures) or None


def timed_line(measured: Measured, hf_medians: dict[str, float]) -> str | None:
    """The figures of one benchmark's timed rounds, or None where it has none beyond its time."""
    extra = measured.extra
    if "p_whole" in extra:
        return epoch_line(extra)
    if "samples_per_s" in extra:
        # the fast step picks its own batch (fits the budget), not --batch-size: say which it ran
        shape = (
            f"; at batch {extra['batch_size']} x {extra['seq_len']} tokens" if "batch_size" in extra else ""
        )
        return f"{extra['samples_per_s']:.3g} samples/s, {si(extra['tokens_per_s'], 'tokens/s')}{shape}"
    if "implementation" in extra and "tokens_per_s" in extra:
        return attention_line(measured, hf_medians.get(measured.group or ""))
    if "target_accuracy" in extra:
        return convergence_line(extra)
    return None


def compile_part(extra: dict) -> str | None:
    """Under --compile: the mode, the compile latency and the parity check (docs/benchmarks.md)."""
    if "compile_seconds" not in extra:
        return None
    parity = extra["parity"]
    recompiles = len(extra.get("recompile_reasons", []))
    return (
        f"compiled ({extra['compile']}): compile {extra['compile_seconds']:.1f} s, parity within "
        f"{parity['tolerance']:g} (loss {parity['loss_rel']:.1e}, grads {parity['grad_rel']:.1e})"
        + (f"; {recompiles} recompile{'s' if recompiles > 1 else ''}" if recompiles else "")
    )


def figures(benchmarks: Iterable[Measured]) -> dict[str, str]:
    """The figures of every benchmark that has some, by name (a speedup is over HF's layer in the
    same group of these benchmarks)."""
    benchmarks = list(benchmarks)
    hf_medians = {
        b.group: b.median
        for b in benchmarks
        if b.group and b.median and b.extra.get("implementation") == "hf"
    }
    found = {
        b.name: "; ".join(filter(None, [line(b, hf_medians), compile_part(b.extra)])) for b in benchmarks
    }
    return {name: text for name, text in found.items() if text}


def summary_lines(benchmarks: Iterable[Measured], width: int = WIDTH) -> list[str]:
    """Per benchmark that has figures: its test id, then the figures, in the order of the table;
    `width` less than WIDTH where the printer indents every line (scripts/gpu_check.sh)."""
    # the name on its line, the figures under it within 100 columns: one entry a benchmark
    return ["\n".join([name, *figure_lines(text, width=width)]) for name, text in figures(benchmarks).items()]


def figure_lines(text: str, indent: str = "    ", width: int = WIDTH) -> list[str]:
    """A benchmark's figures under its name, broken between figures ("; ") to fit `width` columns;
    a figure longer than a line is wrapped on its own."""
    out: list[str] = []
    for part in text.split("; "):
        if out and len(out[-1]) + 2 + len(part) <= width:
            out[-1] += f"; {part}"
        else:
            out += wrap(part, indent, width) or [indent]
    return out


def verdict_lines(results: Path, saved: Path) -> list[str]:
    """What `python -m bench compare --latest SAVED` says per benchmark, or why it cannot say yet."""
    from bench.base.errors import BenchInputError
    from bench.verdicts.compare import compare
    from bench.verdicts.notation import LEGEND, format_change, run_names, short_name
    from bench.verdicts.verdict import CALIBRATED

    warnings: list[str] = []
    try:
        base_runs, _, rows = compare(results, latest=str(saved), warn=warnings.append)
    except BenchInputError as err:
        return wrap(f"no verdict yet: {err}", "")
    lines = wrap(f"against {run_names(base_runs)} (python -m bench compare; {LEGEND}):", "")
    for row in rows:
        change = f" {format_change(row.decided)} ({row.decided_by})" if row.decided else ""
        note = f" ({row.reason})" if row.reason and row.decided_by != CALIBRATED else ""
        lines += wrap(f"{short_name(row.benchmark)}: {row.verdict}{change}{note}")
    return lines + [line for w in warnings for line in wrap(f"warning: {w}", "")]

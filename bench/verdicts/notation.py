"""How the verdict layer writes what it found: one notation in `ab`, `compare`, `changes`, the
summary after a run and the report.

A change is a ratio of times, candidate (or latest) over baseline, written as the change in time
it means with its interval: `+5.0% [+2.1%, +8.0%]` is 5% slower. Times are in ms under a second.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from bench.base.history import SOFTWARE_KEYS, Run

if TYPE_CHECKING:  # cheap to import: the commands print their errors with `wrap`
    from bench.verdicts.stats import Change

WIDTH = 100  # every table and line the verdict layer prints fits this many columns


def wrap(text: str, indent: str = "  ", width: int = WIDTH) -> list[str]:
    """A line wrapped at WIDTH (or less, where the printer puts a prefix of its own before it)
    between words, continuation lines indented once more than the first."""
    return textwrap.wrap(
        text,
        width,
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_on_hyphens=False,
        break_long_words=False,  # a file name stays whole, past the margin if it must
    )


def format_change(change: Change | None) -> str:
    """The one notation of a change: its size in time, + slower, with its interval."""
    if change is None:
        return "-"
    return f"{percent(change.ratio)} [{percent(change.low)}, {percent(change.high)}]"


LEGEND = "changes are in time taken, candidate (or latest) against baseline: + is slower, - is faster"


def percent(ratio: float) -> str:
    """A ratio as the change in time it means: +5.0% is 5% more time (slower)."""
    return f"{(ratio - 1) * 100:+.1f}%"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.3f} ms" if seconds < 1 else f"{seconds:.3f} s"


def short_name(benchmark: str) -> str:
    """A benchmark's name as the tables show it: its test id without the test function's prefix."""
    name = benchmark.split("::")[-1]
    return name.removeprefix("test_")


def plural(n: int, thing: str, suffix: str = "s") -> str:
    """`1 saved run`, `2 saved runs` (`3 series` with suffix "")."""
    return f"{n} {thing}" + ("" if n == 1 else suffix)


def run_number(run: Run) -> str:
    """A saved run's number in its series folder, as `#7` (what --latest and --baseline take)."""
    return "#" + (run.path.name[:4].lstrip("0") or "0")


def run_name(run: Run) -> str:
    """A saved run as the text output names it, within any line: number, commit and when it ran
    (`#7 1a2b3c4d5e 2026-11-28 10:07`); its file's path, 100-odd columns, is in --json alone."""
    commit = run.labels.get("commit") or "no commit"
    return f"{run_number(run)} {commit} {run.when[:16].replace('T', ' ')}".strip()


def run_names(runs: list[Run]) -> str:
    """Several runs of one series: `#5 abc 2026-11-28 10:05, #6 ...`."""
    return ", ".join(run_name(run) for run in runs)


# The series keys said in words by `describe_series`, in the order said; anything else in a
# fingerprint is said as `key value` after them, so no two series ever read the same.
MODEL_WORDS = (
    ("layers", "{} layers"),
    ("hidden_size", "hidden {}"),
    ("heads", "{} heads"),
    ("intermediate_size", "intermediate {}"),
    ("attention_window", "window {}"),
    ("vocab_size", "vocab {}"),
)


def describe_series(fingerprint: dict) -> str:
    """A series' hardware and run configuration in words (bench/base/history.py), from its
    fingerprint: what a heading says instead of a folder name that differs only in its hash."""
    if not fingerprint:
        return ""
    config = {k: v for k, v in fingerprint.items() if k not in SOFTWARE_KEYS}
    run = dict(config.pop("run", None) or {})
    model = dict(run.pop("model", None) or {})
    device = config.pop("device", "?")
    gpu, gpus = config.pop("gpu_name", None), config.pop("gpu_count", None) or 0
    cpu, cpus = config.pop("cpu_model", None) or "unknown CPU", config.pop("cpu_count", None)
    host = cpu + (f" ({cpus} CPUs)" if cpus else "")
    if gpu:  # the GPU computes; the host it sits in is still part of the series
        hardware = (f"{gpus} x {gpu}" if gpus > 1 else gpu) + f" on {host}"
    else:
        hardware = host + (f", {gpus} GPUs present" if gpus else "")
    threads, worker_threads = config.pop("torch_threads", None), config.pop("worker_threads", None)
    parts = [f"{device} {hardware}"]
    if threads is not None:
        parts.append(f"{threads} threads" + (f", {worker_threads} a worker" if worker_threads else ""))
    if dtype := config.pop("dtype", None):
        parts.append(dtype)
    said = [fmt.format(model.pop(key)) for key, fmt in MODEL_WORDS if key in model]
    said += [f"{key} {value}" for key, value in sorted(model.items())]
    if said:
        parts.append("model " + ", ".join(said))
    if "attention" in run:
        parts.append(f"attention {run.pop('attention')}")
    if "batch_size" in run or "seq_len" in run:
        parts.append(f"batch {run.pop('batch_size', '?')} x {run.pop('seq_len', '?')} tokens")
    if "init" in run:
        parts.append(f"{run.pop('init')} init")
    if "workers" in run:
        parts.append(f"{run.pop('workers')} workers")
    if "train_samples" in run or "eval_samples" in run:
        parts.append(f"data {run.pop('train_samples', '?')}/{run.pop('eval_samples', '?')} blocks")
    parts += [f"{key} {value}" for key, value in sorted({**config, **run}.items())]
    return "; ".join(parts)

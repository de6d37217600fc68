"""`python -m bench runs`: the saved runs by series, what --latest and --baseline can name."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.base.errors import BenchInputError
from bench.base.history import SOFTWARE_KEYS, Run, by_series, load_runs
from bench.cli.common import warn
from bench.verdicts.notation import describe_series, plural, run_number, wrap

NAME = "runs"
SUMMARY = "the saved runs by series: number, when, commit, stack, benchmarks"
EXAMPLES = (
    "python -m bench runs",
    "python -m bench runs --series bf16   # the series whose configuration mentions bf16",
    "python -m bench runs --json",
)
MORE = (
    "A series is one hardware and run configuration (bench/base/history.py); its runs are numbered "
    "in its folder, and `compare --latest N --baseline M` takes those numbers. Each software stack "
    "(python, torch, transformers, CUDA) is listed once under its series, by letter."
)


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", default="results", help="the history folder (default results)")
    parser.add_argument(
        "--series",
        default=None,
        help="only the series whose configuration in words or folder contains this (any case)",
    )
    parser.add_argument("--json", action="store_true", help="print the series and their runs as JSON")


def stack(run: Run) -> str:
    """The software a run was measured on: python and SOFTWARE_KEYS, where recorded."""
    labels = run.labels
    return ", ".join(f"{key} {labels[key]}" for key in ("python", *SOFTWARE_KEYS) if labels.get(key))


def partial(run: Run) -> bool | None:
    """Whether the run measured a partial selection (-k), where history records it; else None."""
    value = getattr(run, "partial", None)
    return None if value is None else bool(value)


def describe_run(run: Run) -> dict:
    return {
        "number": int(run.path.name[:4]),
        "name": run.name,
        "when": run.when,
        "commit": run.labels.get("commit"),
        "stack": stack(run),
        "partial": partial(run),
        "benchmarks": len(run.benchmarks()),
    }


def series_lines(runs: list[Run]) -> list[str]:
    """One series: its configuration in words, its folders, a line a run, its stacks by letter."""
    stacks = list(dict.fromkeys(stack(run) for run in runs))
    letters = {text: chr(ord("A") + i) if i < 26 else str(i + 1) for i, text in enumerate(stacks)}
    folders = ", ".join(dict.fromkeys(run.path.parent.name for run in runs))
    rows = [("run", "when", "commit", "benchmarks", "stack")] + [
        (
            run_number(run),
            run.when[:16].replace("T", " "),
            run.labels.get("commit") or "-",
            f"{len(run.benchmarks())}" + (" partial" if partial(run) else ""),
            letters[stack(run)],
        )
        for run in runs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        *wrap(f"series: {describe_series(runs[0].fingerprint) or runs[0].series_name}", ""),
        *wrap(f"{plural(len(runs), 'run')} in {folders}"),
        *(("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))).rstrip() for row in rows),
        *(line for text in stacks for line in wrap(f"stack {letters[text]}: {text or 'not recorded'}")),
    ]


def run(args: argparse.Namespace) -> int:
    grouped = list(by_series(load_runs(Path(args.results), warn)).values())
    if args.series:
        wanted = args.series.lower()
        chosen = [
            runs
            for runs in grouped
            if wanted in describe_series(runs[0].fingerprint).lower()
            or any(wanted in run.path.parent.name.lower() for run in runs)
        ]
        if not chosen:
            raise BenchInputError(
                f"--series {args.series}: matches none of the {plural(len(grouped), 'series', '')} "
                f"saved under {args.results} (python -m bench runs lists them)"
            )
        grouped = chosen
    if args.json:
        described = [
            {
                "series": runs[0].series_name,
                "configuration": describe_series(runs[0].fingerprint),
                "runs": [describe_run(run) for run in runs],
            }
            for runs in grouped
        ]
        print(json.dumps(described, indent=2))
        return 0
    lines = [line for i, runs in enumerate(grouped) for line in ([""] if i else []) + series_lines(runs)]
    print("\n".join(lines))
    return 0

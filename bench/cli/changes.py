"""`python -m bench changes`: where each benchmark's level stepped and stayed over the saved runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.common import warn

NAME = "changes"
SUMMARY = "where each benchmark's level stepped and stayed over the saved runs, and what changed there"
EXAMPLES = ("python -m bench changes", "python -m bench changes --benchmark train_step --json")


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", default="results", help="the history folder (default results)")
    parser.add_argument("--alpha", type=float, default=0.001, help="significance of a step (default 0.001)")
    parser.add_argument(
        "--min-effect", type=float, default=0.02, help="smallest step that counts (default 0.02)"
    )
    parser.add_argument(
        "--min-runs", type=int, default=3, help="runs a level must hold on each side of a step (default 3)"
    )
    parser.add_argument("--benchmark", default=None, help="only benchmarks whose name contains this")
    parser.add_argument("--json", action="store_true", help="print the series and their steps as JSON")


def run(args: argparse.Namespace) -> int:
    from bench.verdicts.changes import as_json, changes
    from bench.verdicts.tables import format_changes

    found = changes(
        Path(args.results),
        args.alpha,
        args.min_effect,
        args.min_runs,
        args.benchmark,
        warn=warn,
    )
    print(as_json(found) if args.json else format_changes(found, args.alpha, args.min_effect, args.min_runs))
    return 0

"""`python -m bench compare`: the latest saved run against a baseline, or a saved A/B pair judged."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.base.errors import BenchInputError
from bench.cli.common import (
    add_format,
    add_gate,
    check_thresholds,
    exit_code,
    gate,
    judge_and_print_pair,
    output_format,
    warn,
)

NAME = "compare"
SUMMARY = "the latest saved run against a baseline: change, interval, verdict"
EXAMPLES = (
    "python -m bench compare --fail-on-regression",
    "python -m bench compare --baseline last:5 --json",
    "python -m bench compare --baseline 3 --format markdown > comment.md   # against run #3",
    "python -m bench compare --ab   # the newest saved A/B pair",
    "python -m bench compare --ab results/ab/0003_... --explain all   # every profiled row's operators",
    "python -m bench compare --fail-on-growth --memory-tolerance 2   # gate the exact counts",
)


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", default="results", help="the history folder (default results)")
    parser.add_argument(
        "--latest", default=None, help="run to judge: file, name or number (default the newest)"
    )
    parser.add_argument(
        "--baseline",
        default="previous",
        help="previous (default: the run before it in its series), last:N (the N before it, pooled), "
        "or a run's file, name or number",
    )
    parser.add_argument(
        "--alpha", type=float, default=0.01, help="significance level of the test (default 0.01)"
    )
    parser.add_argument(
        "--min-effect",
        type=float,
        default=0.02,
        help="smallest change that counts, as a fraction (default 0.02)",
    )
    parser.add_argument(
        "--fail-on-regression", action="store_true", help="exit 1 when any benchmark regressed"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="compare runs of different series (hardware or run configuration)",
    )
    parser.add_argument(
        "--process-spread",
        action="store_true",
        help="give verdicts before 5 earlier runs exist, on the spread between processes alone "
        "(blind to drift between runs: on a shared machine it flags same-code runs now and then)",
    )
    add_gate(parser)
    add_format(parser)
    parser.add_argument(
        "--ab",
        nargs="?",
        const="newest",
        default=None,
        metavar="PAIR",
        help="judge a saved A/B pair (default the newest under RESULTS/ab) with the in-session test; "
        "--latest PAIR does the same",
    )
    parser.add_argument(
        "--explain",
        choices=("auto", "all", "none"),
        default=None,
        help="with --ab: which rows show where the time went (default as the pair was sampled: "
        "auto, the rows judged a change; all, every profiled row; none)",
    )


def run(args: argparse.Namespace) -> int:
    from bench.verdicts.compare import as_json, compare, exact_section
    from bench.verdicts.pairs import find_pair
    from bench.verdicts.tables import format_table
    from bench.verdicts.verdict import any_regression

    wanted = gate(args)  # its options checked before any file is read
    pair = find_pair(Path(args.latest)) if args.latest and Path(args.latest).exists() else None
    if args.ab or pair:
        return compare_pair(args, pair)
    if args.explain:
        raise BenchInputError(f"--explain {args.explain}: only with --ab (saved runs have no profiles)")

    base_runs, latest, rows = compare(
        Path(args.results),
        args.latest,
        args.baseline,
        args.alpha,
        args.min_effect,
        args.force,
        warn=warn,
        process_spread=args.process_spread,
    )
    exact = exact_section(base_runs, latest, wanted)
    style = output_format(args)
    print(
        as_json(base_runs, latest, rows, exact)
        if style == "json"
        else format_table(
            base_runs,
            latest,
            rows,
            args.alpha,
            args.min_effect,
            args.force,
            args.process_spread,
            style,
            exact,
        )
    )
    return exit_code(any_regression(rows), args, exact)


def compare_pair(args: argparse.Namespace, pair: Path | None) -> int:
    """A saved A/B pair, judged with the in-session test (both sides of one time window)."""
    from bench.verdicts.pairs import load_pair, newest_pair

    check_thresholds(args.alpha, args.min_effect)
    if pair is None:
        wanted = Path(args.ab) if args.ab != "newest" else None
        pair = newest_pair(Path(args.results)) if wanted is None else find_pair_or_fail(wanted)
    return judge_and_print_pair(args, load_pair(pair), pair, args.explain)


def find_pair_or_fail(path: Path) -> Path:
    from bench.verdicts.pairs import find_pair

    pair = find_pair(path) if path.exists() else None
    if pair is None:
        raise BenchInputError(f"--ab {path}: not an A/B pair folder (baseline.json and candidate.json)")
    return pair

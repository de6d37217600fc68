"""What several commands share: threshold checks, warnings on stderr, a pair's verdicts printed."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from bench.base.errors import BenchInputError
from bench.harness.options import positive_float, positive_int
from bench.verdicts.notation import wrap

if TYPE_CHECKING:  # the commands import the verdict layer inside `run`
    from bench.verdicts.exact import ExactSection, Gate


def check_thresholds(alpha: float, min_effect: float) -> None:
    if not 0 < alpha < 1:
        raise BenchInputError(f"--alpha {alpha}: must be between 0 and 1")
    if min_effect < 0:
        raise BenchInputError(f"--min-effect {min_effect}: must be >= 0")


def check_sampling(args: argparse.Namespace) -> tuple[int, float]:
    """ab's --processes (2 or more) and --seconds, and --alpha and --min-effect, checked; bisect
    checks the same before its first step."""
    processes = positive_int("--processes", args.processes)
    if processes < 2:
        raise BenchInputError(f"--processes {processes}: need at least 2 per side (the test needs a spread)")
    seconds = positive_float("--seconds", args.seconds)
    check_thresholds(args.alpha, args.min_effect)
    return processes, seconds


def say(prefix: str, message: str) -> None:
    """A warning or an error on stderr, wrapped within 100 columns like every line printed."""
    print("\n".join(wrap(f"{prefix}: {message}", "")), file=sys.stderr)


def warn(message: str) -> None:
    say("warning", message)


FORMATS = ("text", "markdown", "csv", "json")


def add_format(parser: argparse.ArgumentParser) -> None:
    """--format, and --json for --format json: how `compare` and `ab` print their verdicts."""
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (default, within 100 columns), markdown (a pull-request comment), csv (one line "
        "a benchmark, unrounded) or json",
    )
    parser.add_argument("--json", action="store_true", help="the same as --format json")


def add_gate(parser: argparse.ArgumentParser) -> None:
    """--fail-on-growth and what narrows it: the gate on exact counts (bench/verdicts/exact.py)."""
    parser.add_argument(
        "--fail-on-growth",
        action="store_true",
        help="exit 1 when an exact count grew: memory past --memory-tolerance, a compile count "
        "at all, FLOPs or operator calls on any change",
    )
    parser.add_argument(
        "--growth-kinds",
        default=None,
        metavar="KINDS",
        help="the kinds --fail-on-growth gates, among memory,compile,work (default all three)",
    )
    parser.add_argument(
        "--memory-tolerance",
        default=None,
        metavar="PCT",
        help="growth of a memory count that passes, in percent (default 1)",
    )


def gate(args: argparse.Namespace) -> Gate:
    """The gate the options ask for, checked (exit 2 on a bad value) before anything runs."""
    from bench.verdicts.exact import gate_of

    return gate_of(args.fail_on_growth, args.growth_kinds, args.memory_tolerance)


def exit_code(regressed: bool, args: argparse.Namespace, exact: ExactSection) -> int:
    """1 where --fail-on-regression meets a regression or the exact gate fails (the failing counts
    named on stderr, whatever the format), else 0."""
    from bench.verdicts.exact import failing_names

    failing = exact.failing()
    if failing:
        say("exact gate", f"fails on {failing_names(failing)}")
    return 1 if (args.fail_on_regression and regressed) or failing else 0


def output_format(args: argparse.Namespace) -> str:
    return "json" if args.json else args.format


def judge_and_print_pair(
    args: argparse.Namespace, saved: dict[str, dict], where: Path, explain: str | None = None
) -> int:
    """An A/B pair's verdicts in --format, its exact counts apart, where the time went for the
    rows `explain` shows (default the pair's own --explain), and the exit code
    --fail-on-regression and --fail-on-growth ask for."""
    from bench.verdicts.pairs import exact_section, judge_saved, pair_attributions, pair_json
    from bench.verdicts.tables import format_pair
    from bench.verdicts.verdict import any_regression

    rows = judge_saved(saved, args.alpha, args.min_effect)
    exact = exact_section(saved, gate(args))
    explained = pair_attributions(saved, rows, args.alpha, explain)
    style = output_format(args)
    if style == "json":
        print(pair_json(saved, rows, where, exact, explained))
    else:
        print(format_pair(saved, rows, args.alpha, args.min_effect, where, style, exact, explained))
    return exit_code(any_regression(rows), args, exact)


@contextlib.contextmanager
def progress_bar(unit: str) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar on stderr for a measurement of many minutes: `update(done, total)` as it goes."""
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True)
        bar.total, bar.n = total, done
        bar.refresh()

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()

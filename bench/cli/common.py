"""What several commands share: threshold checks, warnings on stderr, a pair's verdicts printed."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.base.errors import BenchInputError
from bench.verdicts.notation import wrap


def check_thresholds(alpha: float, min_effect: float) -> None:
    if not 0 < alpha < 1:
        raise BenchInputError(f"--alpha {alpha}: must be between 0 and 1")
    if min_effect < 0:
        raise BenchInputError(f"--min-effect {min_effect}: must be >= 0")


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


def output_format(args: argparse.Namespace) -> str:
    return "json" if args.json else args.format


def judge_and_print_pair(args: argparse.Namespace, saved: dict[str, dict], where: Path) -> int:
    """An A/B pair's verdicts in --format, and the exit code --fail-on-regression asks for."""
    from bench.verdicts.pairs import judge_saved, pair_json
    from bench.verdicts.tables import format_pair
    from bench.verdicts.verdict import any_regression

    rows = judge_saved(saved, args.alpha, args.min_effect)
    style = output_format(args)
    if style == "json":
        print(pair_json(saved, rows, where))
    else:
        print(format_pair(saved, rows, args.alpha, args.min_effect, where, style))
    return 1 if args.fail_on_regression and any_regression(rows) else 0


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

"""What several commands share: threshold checks, warnings on stderr, a pair's verdicts printed."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.base.errors import BenchInputError


def check_thresholds(alpha: float, min_effect: float) -> None:
    if not 0 < alpha < 1:
        raise BenchInputError(f"--alpha {alpha}: must be between 0 and 1")
    if min_effect < 0:
        raise BenchInputError(f"--min-effect {min_effect}: must be >= 0")


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def judge_and_print_pair(args: argparse.Namespace, saved: dict[str, dict], where: Path) -> int:
    """An A/B pair's verdicts as the table (or --json), and the exit code --fail-on-regression asks for."""
    from bench.verdicts.pairs import judge_saved, pair_json
    from bench.verdicts.tables import format_pair
    from bench.verdicts.verdict import any_regression

    rows = judge_saved(saved, args.alpha, args.min_effect)
    if args.json:
        print(pair_json(saved, rows, where))
    else:
        print(format_pair(saved, rows, args.alpha, args.min_effect, where))
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

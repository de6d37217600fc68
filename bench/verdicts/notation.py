"""How the verdict layer writes what it found: one notation in `ab`, `compare`, `changes`, the
summary after a run and the report.

A change is a ratio of times, candidate (or latest) over baseline, written as the change in time
it means with its interval: `+5.0% [+2.1%, +8.0%]` is 5% slower. Times are in ms under a second.
"""

from __future__ import annotations

import textwrap

from bench.verdicts.stats import Change

WIDTH = 100  # every table and line the verdict layer prints fits this many columns


def wrap(text: str, indent: str = "  ") -> list[str]:
    """A line wrapped at WIDTH between words, continuation lines indented once more than the first."""
    return textwrap.wrap(
        text,
        WIDTH,
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

"""`python -m bench report`: trend charts per benchmark and one self-contained HTML page."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.common import warn
from bench.verdicts.notation import plural

NAME = "report"
SUMMARY = "trend charts per benchmark and one HTML page"
EXAMPLES = ("python -m bench report", "python -m bench report --results results --out /tmp/report.html")


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", default="results", help="the history folder (default results)")
    parser.add_argument("--out", default=None, help="the HTML file (default RESULTS/report.html)")


def run(args: argparse.Namespace) -> int:
    from bench.verdicts.report import write_report

    storage = Path(args.results)
    out = Path(args.out) if args.out else storage / "report.html"
    charts = write_report(storage, out, warn=warn)  # a folder without saved runs is an error
    print(f"{out} ({plural(charts, 'trend chart')})")
    return 0

"""`python -m bench COMMAND`: one module per command behind one parser (asv's `commands/` pattern).

A command module says what it is (`NAME`, `SUMMARY`, `EXAMPLES`, optionally `MORE` and
`PASSES_UNKNOWN` for a command that hands the arguments it does not know to pytest), adds its
arguments in `setup(parser)` and does its work in `run(args)`, returning the exit code. At its top
a command module imports only what costs nothing to import: torch (seconds) and scipy (a second)
are imported inside `run`, so that `--help` and a refused command line answer at once.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
from types import ModuleType

from bench.base.errors import BenchInputError
from bench.cli import ab, bisect, changes, compare, power, prepare, presets, report, runs, train
from bench.cli.common import say
from bench.harness.options import as_given
from bench.verdicts.notation import WIDTH

COMMANDS: tuple[ModuleType, ...] = (
    train,
    prepare,
    runs,
    report,
    compare,
    changes,
    ab,
    bisect,
    power,
    presets,
)


def help_formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's layout at the terminal's width, but never wider than 100 columns."""
    width = min(shutil.get_terminal_size().columns, WIDTH)
    return argparse.RawDescriptionHelpFormatter(prog, width=width, max_help_position=min(24, width // 3))


def add_command(commands, module: ModuleType) -> argparse.ArgumentParser:
    """A command's parser: --help starts with its one line and ends with its examples."""
    more = getattr(module, "MORE", "")
    parser = commands.add_parser(
        module.NAME,
        help=module.SUMMARY,
        description=f"{module.SUMMARY}.\n\n{textwrap.fill(more, 90)}" if more else f"{module.SUMMARY}.",
        epilog="examples:\n" + "\n".join(f"  {example}" for example in module.EXAMPLES),
        formatter_class=help_formatter,
        # abbreviations of its own flags would swallow pytest's
        allow_abbrev=not getattr(module, "PASSES_UNKNOWN", False),
    )
    module.setup(parser)
    parser.set_defaults(command_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="longformer-bench's commands: the harness, the verdicts and the PR check without pytest.",
        epilog="python -m bench COMMAND --help: what a command takes, with examples",
        formatter_class=help_formatter,
        allow_abbrev=False,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parsers = {module.NAME: add_command(commands, module) for module in COMMANDS}
    argv = sys.argv[1:] if argv is None else argv
    args, unknown = parser.parse_known_args(argv)
    module = args.command_module
    if getattr(module, "PASSES_UNKNOWN", False):
        args.pytest_args = unknown
    elif unknown:  # with the command's own usage, which lists what it takes
        parsers[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return module.run(args)
    except BenchInputError as err:
        say("error", as_given(str(err), argv))
        return 2

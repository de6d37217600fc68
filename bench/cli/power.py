"""`python -m bench power`: how often compare, changes or ab find injected slowdowns, and how often
they cry wolf (bench/power/, one module per mode)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.base.errors import BenchInputError
from bench.base.history import load_runs, replace_atomically
from bench.cli.common import check_thresholds, progress_bar, warn
from bench.harness.options import option_defaults, positive_float, positive_int
from bench.verdicts.notation import plural

NAME = "power"
SUMMARY = "how often compare, changes or ab find injected slowdowns, and how often they cry wolf"
EXAMPLES = (
    "python -m bench power --runs 40   # compare on fresh runs (minutes)",
    "python -m bench power --ab --case train-step --null-trials 10 --trials 10 --save power.json",
    "python -m bench power --changes   # changes on the saved runs (seconds)",
    "python -m bench power --scores results/ab/* power.json   # the scores on saved pairs and trials",
    "python -m bench power --rule   # the whole verdict rule's false alarms, simulated (minutes)",
)


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", default="40", help="runs, each with fresh worker processes (default 40)")
    parser.add_argument(
        "--workers", default="3", help="worker processes per run (default 3, the fast profile's)"
    )
    parser.add_argument("--alpha", type=float, default=None, help="default 0.01 (0.001 with --changes)")
    parser.add_argument("--min-effect", type=float, default=0.02)
    parser.add_argument(
        "--changes",
        action="store_true",
        help="measure `bench changes` on the saved runs in --results instead (seconds, no benchmarks run)",
    )
    parser.add_argument("--results", default="results", help="with --changes: the history folder")
    parser.add_argument("--min-runs", type=int, default=3, help="with --changes: as `changes --min-runs`")
    parser.add_argument(
        "--history", default="10", help="with --changes: same-code runs before each step (default 10)"
    )
    parser.add_argument("--save", default=None, help="write tables and values to this JSON file")
    parser.add_argument("--ab", action="store_true", help="measure `bench ab` instead of history compare")
    parser.add_argument(
        "--scores",
        nargs="+",
        metavar="SAVED",
        help="saved A/B pair folders and `power --ab --save` files: each score's interval widths, "
        "what it finds of the injected slowdowns, and its same-code calibration",
    )
    parser.add_argument(
        "--case",
        default="hf-w32-L512",
        help="with --ab: hf-w32-L512, blocked-w128-L2048, epoch-slice, train-step, or self-test "
        "(tests/test_ab.py's)",
    )
    parser.add_argument("--null-trials", default="200", help="with --ab: same-code trials (default 200)")
    parser.add_argument("--trials", default="40", help="with --ab: trials per injected level (default 40)")
    parser.add_argument(
        "--levels",
        default="0.02,0.05,0.10",
        help="with --ab: the injected slowdowns, fractions separated by commas (default 0.02,0.05,0.10)",
    )
    parser.add_argument("--processes", default="10", help="with --ab: processes per side (default 10, as ab)")
    parser.add_argument(
        "--seconds",
        default="20",
        help="with --ab: seconds per benchmark (default 20, ab's one look before --looks)",
    )
    parser.add_argument(
        "--rule",
        action="store_true",
        help="simulate the whole verdict rule on seeded sessions of unchanged code (no benchmarks run)",
    )
    parser.add_argument("--sessions", default="1000", help="with --rule: sessions a design (default 1000)")
    parser.add_argument(
        "--looks",
        default=None,
        help="with --rule: simulate `ab --looks K` instead, the rows still inconclusive after a look "
        "sampled again (same-code sessions of nine rows)",
    )
    parser.add_argument("--seed", default="1", help="with --rule: the simulation's seed (default 1)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="with --ab: go on from the trials in --save FILE up to the counts asked for",
    )


def run(args: argparse.Namespace) -> int:
    if args.scores:  # reads saved pairs and trials only: no torch
        from bench.power.scores import format_scores, load_sessions, measure, null_summary, power_table

        sessions = load_sessions([Path(p) for p in args.scores])
        if not any(session.rows for session in sessions):
            raise BenchInputError(
                f"--scores {' '.join(args.scores)}: holds no paired benchmark "
                f"({plural(len(sessions), 'session')}, none with a benchmark both sides ran)"
            )
        alpha = 0.01 if args.alpha is None else args.alpha
        print(format_scores(measure(sessions, 1.0 - alpha, args.min_effect), len(sessions)))
        print()
        print(power_table(sessions, (0.02, 0.03, 0.05, 0.10), alpha, args.min_effect))
        print()
        print(null_summary(sessions, alpha, args.min_effect))
        return 0
    if args.alpha is None:
        args.alpha = 0.001 if args.changes else 0.01
    if args.rule:  # seeded synthetic sessions: no torch
        from bench.power.rule import DESIGNS, format_rule, simulate

        check_thresholds(args.alpha, args.min_effect)
        sessions, seed = positive_int("--sessions", args.sessions), positive_int("--seed", args.seed)
        if args.looks is not None:
            return rule_looks(args, sessions, seed)
        results = [simulate(design, sessions, seed, args.alpha, args.min_effect) for design in DESIGNS]
        print(format_rule(results))
        if args.save:
            replace_atomically(Path(args.save), json.dumps(results, indent=1).encode())
        return 0
    if args.ab:
        return power_ab(args)
    if args.changes:  # reads saved runs only: no torch
        return power_changes(args)
    from bench.power.compare import LEVELS, collect, tables
    from bench.power.detection import fast_profile_job, format_detection

    runs = positive_int("--runs", args.runs)
    workers = positive_int("--workers", args.workers)
    if runs < 8:
        raise BenchInputError(
            f"--runs {runs}: need at least 8 (5 runs of history before the first trial, and more)"
        )
    job = fast_profile_job()
    started = time.perf_counter()
    with progress_bar("run") as update:
        update(0, runs)
        measured = collect(option_defaults(), job, runs, workers, 1, LEVELS, lambda done: update(done, runs))
    result = {
        "job": job.describe(),
        "workers": workers,
        "rounds_per_worker": job.rounds,
        "runs": runs,
        "seconds": time.perf_counter() - started,
        "alpha": args.alpha,
        "min_effect": args.min_effect,
        "tables": tables(measured, args.alpha, args.min_effect),
        "values": [{str(level): v.__dict__ for level, v in run.items()} for run in measured],
    }
    for name, table in result["tables"].items():
        print(f"baseline {name}:\n{format_detection(table)}\n")
    if args.save:
        replace_atomically(Path(args.save), json.dumps(result, indent=1).encode())
    return 0


def rule_looks(args: argparse.Namespace, sessions: int, seed: int) -> int:
    """`power --rule --looks K`: ab's sampling until decided, on seeded same-code sessions."""
    from bench.power.rule import LOOKS_DESIGNS, format_looks, simulate_looks
    from bench.verdicts.sequential import spend

    looks = positive_int("--looks", args.looks)
    spend(args.alpha, looks)  # refused here where out of range
    results = [
        simulate_looks(sessions, seed, looks, args.alpha, args.min_effect, design) for design in LOOKS_DESIGNS
    ]
    print("\n".join(format_looks(result) for result in results))
    if args.save:
        replace_atomically(Path(args.save), json.dumps(results, indent=1).encode())
    return 0


def slowdown_levels(flag: str, text: str) -> tuple[float, ...]:
    """Injected slowdowns as fractions of a round's time: each above 0 and at most 1, none twice."""
    try:
        levels = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise BenchInputError(
            f"{flag} {text}: expected fractions separated by commas, e.g. 0.03,0.05"
        ) from None
    if not all(0 < level <= 1 for level in levels) or len(set(levels)) != len(levels):
        raise BenchInputError(f"{flag} {text}: each level must be above 0 and at most 1, and given once")
    return tuple(sorted(levels))


def power_ab(args: argparse.Namespace) -> int:
    """`power --ab`: trials of `bench ab` on one benchmark, same code on both sides, with a known
    slowdown injected into the candidate; saved after every trial (an interrupted measurement
    keeps what it measured)."""
    from bench.power.ab import AB_CASES, AB_COLUMNS, SELF_TEST, ABPower
    from bench.power.detection import format_detection

    if args.case not in (*AB_CASES, SELF_TEST):
        raise BenchInputError(f"--case {args.case!r}: expected one of {', '.join((*AB_CASES, SELF_TEST))}")
    check_thresholds(args.alpha, args.min_effect)
    levels = slowdown_levels("--levels", args.levels)
    measurement = ABPower(
        args.case,
        positive_int("--null-trials", args.null_trials),
        positive_int("--trials", args.trials),
        positive_int("--processes", args.processes),
        positive_float("--seconds", args.seconds),
        args.alpha,
        args.min_effect,
        (0.0, *levels),
    )

    if args.resume and not args.save:
        raise BenchInputError("--resume: needs --save FILE, the measurement to go on with")
    save = Path(args.save) if args.save else None
    with progress_bar("trial") as update:
        result = measurement.run(option_defaults(), save, update, args.resume)
    print(
        f"{result['job']}, {measurement.processes} processes per side, {measurement.seconds:g} s a benchmark"
    )
    print(format_detection({float(k): v for k, v in result["table"].items()}, AB_COLUMNS))
    return 0


def power_changes(args: argparse.Namespace) -> int:
    """`power --changes`: how soon `changes` finds a step, and its false steps, on saved runs."""
    from bench.power.changes import WINDOW, format_power, measure
    from bench.verdicts.changes import check_settings

    check_settings(args.alpha, args.min_effect, args.min_runs)
    runs = load_runs(Path(args.results), warn)
    history = positive_int("--history", args.history)
    result = measure(
        runs,
        history=history,
        alpha=args.alpha,
        min_effect=args.min_effect,
        min_runs=args.min_runs,
        progress=lambda name: print(f"measuring {name}", file=sys.stderr),
    )
    if not result["benchmarks"]:
        raise BenchInputError(
            f"--results {args.results}: no benchmark has {history + WINDOW} same-code runs in one series "
            f"({history} before a step, --history, and {WINDOW} after it)"
        )
    print(format_power(result))
    if args.save:
        replace_atomically(Path(args.save), json.dumps(result, indent=1).encode())
    return 0

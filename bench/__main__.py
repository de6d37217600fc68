"""`python -m bench train|prepare|report|compare|changes|ab|power|presets`: the harness without pytest.

python -m bench train --max-epochs 1 --record results/train.jsonl [run options]
torchrun --nproc-per-node 8 -m bench train ...
python -m bench compare --fail-on-regression
python -m bench changes
python -m bench ab --baseline-ref origin/main -m fast --fail-on-regression
python -m bench presets
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import io
import json
import os
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

from bench.errors import BenchInputError
from bench.options import CONVERGENCE_OPTIONS, OPTIONS, as_given


def add_run_options(parser: argparse.ArgumentParser) -> None:
    for opt in (*OPTIONS, *CONVERGENCE_OPTIONS):
        parser.add_argument(
            opt.flag, dest=opt.dest, default=opt.value_from_env(), help=f"{opt.help} [${opt.env}]"
        )


def train(args: argparse.Namespace) -> int:
    from bench.device import use_threads
    from bench.distributed import close_world, init_world
    from bench.runner import DATA_PATHS, append_record, run_training, stop_rules
    from bench.spec import build_spec, positive_float, positive_int

    run_options = {opt.dest: getattr(args, opt.dest) for opt in OPTIONS}
    if args.data_path not in DATA_PATHS:
        raise BenchInputError(f"--data-path {args.data_path!r}: expected one of {', '.join(DATA_PATHS)}")
    if args.max_steps is not None and args.max_steps <= 0:
        raise BenchInputError(f"--max-steps {args.max_steps}: must be positive")
    stop = stop_rules(args.target_acc, args.time_budget, args.patience)
    lr = positive_float("--lr", args.lr)
    spec = build_spec(**run_options)
    use_threads(spec.threads)
    world, device = init_world(spec.device)
    spec = dataclasses.replace(spec, device=device)
    try:
        record = run_training(
            spec,
            world,
            positive_int("--max-epochs", args.max_epochs) or 1,
            args.data_path,
            reshuffle=not args.flagperf_sampler,
            max_steps=args.max_steps,
            lr=lr,
            stop=stop,
            progress=True,
        )
    finally:
        close_world(world)
    if world.is_main:
        summary = {
            k: record.get(k)
            for k in (
                "status",
                "error",
                "time_to_target_s",
                "world_size",
                "global_batch",
                "p_whole",
                "p_train",
                "p_core",
                "mfu",
                "eval_accuracy",
            )
        }
        print(json.dumps(summary, indent=2))
        if args.record:
            append_record(Path(args.record), record)
    return 0 if record["finished"] else 1


def prepare(args: argparse.Namespace) -> int:
    from bench.prepare import check, prepare

    if args.check:
        for split, stats in check(
            Path(args.check), args.model_dir and Path(args.model_dir), "--check"
        ).items():
            print(f"{split}: " + json.dumps(stats))
        return 0
    missing = [
        flag
        for flag, value in (("--raw", args.raw), ("--tokenizer", args.tokenizer), ("--out", args.out))
        if value is None
    ]
    if missing:
        raise BenchInputError(f"prepare needs {', '.join(missing)} (or --check DIR)")
    if args.block_len is not None and args.block_len <= 0:
        raise BenchInputError(f"--block-len {args.block_len}: must be positive")
    manifest = prepare(Path(args.raw), Path(args.tokenizer), Path(args.out), args.block_len, args.overwrite)
    print(json.dumps(manifest, indent=2))
    return 0


def report(args: argparse.Namespace) -> int:
    from bench.report import write_report

    storage = Path(args.results)
    if not storage.is_dir():
        raise BenchInputError(f"--results {storage}: directory does not exist")
    out = Path(args.out) if args.out else storage / "report.html"
    charts = write_report(storage, out, warn=lambda message: print(f"warning: {message}", file=sys.stderr))
    print(f"{out} ({charts} trend charts)")
    return 0


def compare(args: argparse.Namespace) -> int:
    from bench.compare import as_json, compare, format_table
    from bench.pairs import find_pair
    from bench.verdict import any_regression

    pair = find_pair(Path(args.latest)) if args.latest and Path(args.latest).exists() else None
    if args.ab or pair:
        return compare_pair(args, pair)

    base_runs, latest, rows = compare(
        Path(args.results),
        args.latest,
        args.baseline,
        args.alpha,
        args.min_effect,
        args.force,
        warn=lambda message: print(f"warning: {message}", file=sys.stderr),
        process_spread=args.process_spread,
    )
    print(
        as_json(base_runs, latest, rows)
        if args.json
        else format_table(
            base_runs, latest, rows, args.alpha, args.min_effect, args.force, args.process_spread
        )
    )
    return 1 if args.fail_on_regression and any_regression(rows) else 0


def changes(args: argparse.Namespace) -> int:
    from bench.changes import as_json, changes, format_changes

    found = changes(
        Path(args.results),
        args.alpha,
        args.min_effect,
        args.min_runs,
        args.benchmark,
        warn=lambda message: print(f"warning: {message}", file=sys.stderr),
    )
    print(as_json(found) if args.json else format_changes(found, args.alpha, args.min_effect, args.min_runs))
    return 0


# pytest options that would fight the A/B session: it saves its own pair and needs benchmarks on
AB_REFUSED = (
    "--benchmark-disable",
    "--benchmark-autosave",
    "--benchmark-save",
    "--benchmark-json",
    "--benchmark-skip",
)


def ab(args: argparse.Namespace) -> int:
    from bench.ab import BASELINE, CANDIDATE, assignments, check_python, checkout_state, commit_of, worktree
    from bench.options import OPTIONS, positive_float, positive_int
    from bench.sampling import Side

    processes = positive_int("--processes", args.processes)
    if processes < 2:
        raise BenchInputError(f"--processes {processes}: need at least 2 per side (the test needs a spread)")
    seconds = positive_float("--seconds", args.seconds)
    check_thresholds(args.alpha, args.min_effect)
    slowdown = args.inject_slowdown
    if slowdown is not None and slowdown < 0:
        raise BenchInputError(f"--inject-slowdown {slowdown}: must be >= 0")
    if not (args.baseline_python or args.baseline_ref or args.baseline_env or args.baseline_option):
        raise BenchInputError(
            "ab needs a baseline: --baseline-ref REF, --baseline-python PATH, --baseline-env VAR=VALUE "
            "or --baseline-option NAME=VALUE"
        )
    env = assignments("--baseline-env", args.baseline_env)
    options = assignments("--baseline-option", args.baseline_option, {opt.dest for opt in OPTIONS})
    for arg in args.pytest_args:
        if arg.split("=")[0] in AB_REFUSED:
            raise BenchInputError(f"{arg}: not with ab (it saves both sides under --results itself)")
    python = check_python(args.baseline_python) if args.baseline_python else sys.executable
    # resolved once, before anything runs: the ref may move while the session runs
    baseline_commit = commit_of(args.baseline_ref) if args.baseline_ref else None
    here = checkout_state()  # the candidate's, as it starts
    results = Path(args.results)
    with contextlib.ExitStack() as stack:
        root = stack.enter_context(worktree(args.baseline_ref)) if args.baseline_ref else None
        baseline = Side(BASELINE, python, root or Side().root, env, options, args.baseline_ref)
        candidate = Side(CANDIDATE)
        code, plugin, candidate_json = run_ab_session(args, baseline, candidate, processes, seconds, slowdown)
    if code != 0:
        print(f"ab: the pytest session ended with exit code {code}; nothing saved", file=sys.stderr)
        return int(code)
    pairs = {name: (pair.jobs, pair.samples) for name, pair in plugin.pool.recorded.items()}
    if not pairs:
        raise BenchInputError("ab: no sampled benchmark was selected (check -m / -k)")
    session = f"{datetime.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    sides = {
        BASELINE: {
            **plugin.pool.stacks[BASELINE],
            "interpreter": baseline.python,  # as given: a wrapper script's path, not what it execs
            "ref": args.baseline_ref,
            **({"commit": baseline_commit, "dirty": False} if args.baseline_ref else here),
            "env": env,
            "options": options,
        },
        CANDIDATE: {
            **plugin.pool.stacks[CANDIDATE],
            "interpreter": candidate.python,
            "ref": None,
            **here,
            "env": {},
            "options": {},
        },
    }
    info = {
        "session": session,
        "sides": sides,
        "processes": processes,
        "servers_per_side": plugin.pool.servers_per_side,
        "seconds_per_benchmark": seconds,
        "candidate_slowdown": slowdown or 0.0,
    }
    return judge_and_save(args, results, session, info, pairs, plugin.threads, candidate_json)


def run_ab_session(args, baseline, candidate, processes, seconds, slowdown):
    """pytest in this process, its sampled benchmarks on both sides. The session is shown as bars
    on stderr (fixtures/ab.py); pytest's own output is held back, and then printed whole where the
    session failed, else its summary alone (skip reasons, counts)."""
    import pytest

    from fixtures.ab import ABPlugin
    from fixtures.options import joined_values

    # the terminal as it is now: pytest captures fd 2 while its tests run
    out = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
    plugin = ABPlugin(baseline, candidate, processes, seconds, slowdown, out)
    held = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp, out:
        report = Path(tmp) / "candidate.json"
        pytest_args = [
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::pytest.PytestAssertRewriteWarning",  # this command imported the plugin first
            "--benchmark-quiet",  # not "Wrote benchmark data in" a temporary file
            *joined_values(args.pytest_args),
            f"--benchmark-json={report}",
        ]
        started = time.perf_counter()
        with contextlib.redirect_stdout(held):
            code = pytest.main(pytest_args, plugins=[plugin])
        text = held.getvalue()
        print(text if code else pytest_summary(text), file=out)
        print(f"ab: the session took {time.perf_counter() - started:.0f} s", file=out)
        candidate_json = json.loads(report.read_text()) if report.exists() else {}
    return code, plugin, candidate_json


def pytest_summary(text: str) -> str:
    """pytest's output from its short test summary on (skip reasons and counts), or its last line."""
    marker = text.rfind(" short test summary info ")
    start = text.rfind("\n", 0, marker) + 1 if marker >= 0 else text.rstrip().rfind("\n") + 1
    return text[start:].rstrip()


def judge_and_save(args, results, session, info, pairs, threads, candidate_json) -> int:
    from bench.pairs import format_pair, judge_saved, pair_json, save_pair, side_json
    from bench.verdict import any_regression

    saved = {
        side: side_json(candidate_json, side, pairs, threads, info) for side in ("baseline", "candidate")
    }
    where = save_pair(results, session, saved)
    rows = judge_saved(saved, args.alpha, args.min_effect)
    print(
        pair_json(saved, rows, where)
        if args.json
        else format_pair(saved, rows, args.alpha, args.min_effect, where)
    )
    return 1 if args.fail_on_regression and any_regression(rows) else 0


def check_thresholds(alpha: float, min_effect: float) -> None:
    if not 0 < alpha < 1:
        raise BenchInputError(f"--alpha {alpha}: must be between 0 and 1")
    if min_effect < 0:
        raise BenchInputError(f"--min-effect {min_effect}: must be >= 0")


def compare_pair(args: argparse.Namespace, pair: Path | None) -> int:
    """A saved A/B pair, judged with the in-session test (both sides of one time window)."""
    from bench.pairs import format_pair, judge_saved, load_pair, newest_pair, pair_json
    from bench.verdict import any_regression

    check_thresholds(args.alpha, args.min_effect)
    if pair is None:
        wanted = Path(args.ab) if args.ab != "newest" else None
        pair = newest_pair(Path(args.results)) if wanted is None else find_pair_or_fail(wanted)
    saved = load_pair(pair)
    rows = judge_saved(saved, args.alpha, args.min_effect)
    print(
        pair_json(saved, rows, pair)
        if args.json
        else format_pair(saved, rows, args.alpha, args.min_effect, pair)
    )
    return 1 if args.fail_on_regression and any_regression(rows) else 0


def find_pair_or_fail(path: Path) -> Path:
    from bench.pairs import find_pair

    pair = find_pair(path) if path.exists() else None
    if pair is None:
        raise BenchInputError(f"--ab {path}: not an A/B pair folder (baseline.json and candidate.json)")
    return pair


def power(args: argparse.Namespace) -> int:
    if args.scores:  # reads saved pairs only: no torch
        from bench.scores import format_scores, measure, null_summary, power_table

        folders = [Path(p) for p in args.scores]
        alpha = 0.01 if args.alpha is None else args.alpha
        print(format_scores(measure(folders), len(folders)))
        print()
        print(power_table(folders, (0.02, 0.03, 0.05, 0.10), alpha, args.min_effect))
        print()
        print(null_summary(folders, alpha, args.min_effect))
        return 0
    if args.alpha is None:
        args.alpha = 0.001 if args.changes else 0.01
    if args.ab:
        return power_ab(args)
    if args.changes:  # reads saved runs only: no torch
        return power_changes(args)
    from bench.history import replace_atomically
    from bench.options import option_defaults, positive_int
    from bench.power import LEVELS, collect, fast_profile_job, format_detection, tables

    runs = positive_int("--runs", args.runs)
    workers = positive_int("--workers", args.workers)
    if runs < 8:
        raise BenchInputError(
            f"--runs {runs}: need at least 8 (5 runs of history before the first trial, and more)"
        )
    job = fast_profile_job()
    started = time.perf_counter()

    def progress(done: int) -> None:
        print(
            f"\r{done}/{runs} runs, {time.perf_counter() - started:.0f} s",
            end="",
            file=sys.stderr,
            flush=True,
        )

    measured = collect(option_defaults(), job, runs, workers, 1, LEVELS, progress)
    print(file=sys.stderr)
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


def power_ab(args: argparse.Namespace) -> int:
    """`power --ab`: trials of `bench ab` on one benchmark, same code on both sides, with a known
    slowdown injected into the candidate; saved after every trial (an interrupted measurement
    keeps what it measured)."""
    from bench.options import option_defaults, positive_float, positive_int
    from bench.power import AB_CASES, AB_COLUMNS, SELF_TEST, ABPower, format_detection

    if args.case not in (*AB_CASES, SELF_TEST):
        raise BenchInputError(f"--case {args.case!r}: expected one of {', '.join((*AB_CASES, SELF_TEST))}")
    check_thresholds(args.alpha, args.min_effect)
    measurement = ABPower(
        args.case,
        positive_int("--null-trials", args.null_trials),
        positive_int("--trials", args.trials),
        positive_int("--processes", args.processes),
        positive_float("--seconds", args.seconds),
        args.alpha,
        args.min_effect,
    )

    def progress(done: int, planned: int) -> None:
        print(f"\r{done}/{planned} trials", end="", file=sys.stderr, flush=True)

    if args.resume and not args.save:
        raise BenchInputError("--resume: needs --save FILE, the measurement to go on with")
    save = Path(args.save) if args.save else None
    result = measurement.run(option_defaults(), save, progress, args.resume)
    print(file=sys.stderr)
    print(
        f"{result['job']}, {measurement.processes} processes per side, {measurement.seconds:g} s a benchmark"
    )
    print(format_detection({float(k): v for k, v in result["table"].items()}, AB_COLUMNS))
    return 0


def power_changes(args: argparse.Namespace) -> int:
    """`power --changes`: how soon `changes` finds a step, and its false steps, on saved runs."""
    from bench.changes import check_settings
    from bench.history import load_runs, replace_atomically
    from bench.options import positive_int
    from bench.step_power import WINDOW, format_power, measure

    check_settings(args.alpha, args.min_effect, args.min_runs)
    runs = load_runs(Path(args.results), lambda message: print(f"warning: {message}", file=sys.stderr))
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


def presets(_: argparse.Namespace) -> int:
    from bench.presets import PRESETS

    for preset in PRESETS.values():
        published = ", ".join(f"{k} {v}" for k, v in preset.published.items() if v is not None) or "none"
        print(f"{preset.name}: global batch {preset.global_batch}; A100 fp32 published: {published}")
        print(f"  {preset.command()}")
    return 0


def command(commands, name: str, handler, summary: str, *examples: str, more: str = "", **kwargs):
    """A subcommand whose --help starts with its one line and ends with examples."""
    parser = commands.add_parser(
        name,
        help=summary,
        description=f"{summary}.\n\n{textwrap.fill(more, 90)}" if more else f"{summary}.",
        epilog="examples:\n" + "\n".join(f"  {example}" for example in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )
    parser.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0], allow_abbrev=False
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = command(
        commands,
        "train",
        train,
        "train and write a throughput record (torchrun-aware)",
        "python -m bench train --max-epochs 1 --record results/train.jsonl",
        "torchrun --nproc-per-node 8 -m bench train --model-dir longformer_train/model",
    )
    add_run_options(run)
    run.add_argument("--max-steps", type=int, default=None, help="cut every epoch after this many steps")
    run.add_argument("--data-path", default="device", help="device (the suite's) or flagperf (DataLoader)")
    run.add_argument(
        "--flagperf-sampler",
        action="store_true",
        help="never call set_epoch: every epoch repeats one order, as FlagPerf does",
    )
    run.add_argument("--lr", default="5e-5", help="peak learning rate (default 5e-5, FlagPerf's)")
    run.add_argument("--record", default=None, help="append the run's record to this JSON-lines file")
    build = command(
        commands,
        "prepare",
        prepare,
        "raw text -> FlagPerf's npz files; or --check a folder",
        "python -m bench prepare --raw wikitext-103-raw --tokenizer longformer_train/model --out data",
        "python -m bench prepare --check longformer_train/dataset --model-dir longformer_train/model",
    )
    build.add_argument("--raw", help="folder with wiki.train.raw and wiki.valid.raw")
    build.add_argument("--tokenizer", help="local tokenizer folder (e.g. longformer_train/model)")
    build.add_argument("--out", help="folder to write train_dataset.npz, eval_dataset.npz, manifest.json")
    build.add_argument("--block-len", type=int, default=None, help="default: min(model_max_length, 1024)")
    build.add_argument("--overwrite", action="store_true", help="replace data already in --out")
    build.add_argument("--check", metavar="DIR", help="validate a data folder and print its statistics")
    build.add_argument("--model-dir", help="with --check: the model whose vocabulary the ids must fit")
    show = command(
        commands,
        "report",
        report,
        "trend charts per benchmark and one HTML page",
        "python -m bench report",
        "python -m bench report --results results --out /tmp/report.html",
    )
    show.add_argument("--results", default="results", help="the history folder (default results)")
    show.add_argument("--out", default=None, help="the HTML file (default RESULTS/report.html)")
    diff = command(
        commands,
        "compare",
        compare,
        "the latest saved run against a baseline: change, interval, verdict",
        "python -m bench compare --fail-on-regression",
        "python -m bench compare --baseline last:5 --json",
        "python -m bench compare --ab   # the newest saved A/B pair",
    )
    diff.add_argument("--results", default="results", help="the history folder (default results)")
    diff.add_argument(
        "--latest", default=None, help="run to judge: file, name or number (default the newest)"
    )
    diff.add_argument(
        "--baseline",
        default="previous",
        help="previous (default: the run before it in its series), last:N (the N before it, pooled), "
        "or a run's file, name or number",
    )
    diff.add_argument(
        "--alpha", type=float, default=0.01, help="significance level of the test (default 0.01)"
    )
    diff.add_argument(
        "--min-effect",
        type=float,
        default=0.02,
        help="smallest change that counts, as a fraction (default 0.02)",
    )
    diff.add_argument("--fail-on-regression", action="store_true", help="exit 1 when any benchmark regressed")
    diff.add_argument(
        "--force",
        action="store_true",
        help="compare runs of different series (hardware or run configuration)",
    )
    diff.add_argument(
        "--process-spread",
        action="store_true",
        help="give verdicts before 5 earlier runs exist, on the spread between processes alone "
        "(blind to drift between runs: on a shared machine it flags same-code runs now and then)",
    )
    diff.add_argument("--json", action="store_true", help="print the comparison as JSON")
    diff.add_argument(
        "--ab",
        nargs="?",
        const="newest",
        default=None,
        metavar="PAIR",
        help="judge a saved A/B pair (default the newest under RESULTS/ab) with the in-session test; "
        "--latest PAIR does the same",
    )
    steps = command(
        commands,
        "changes",
        changes,
        "where each benchmark's level stepped and stayed over the saved runs, and what changed there",
        "python -m bench changes",
        "python -m bench changes --benchmark train_step --json",
    )
    steps.add_argument("--results", default="results", help="the history folder (default results)")
    steps.add_argument("--alpha", type=float, default=0.001, help="significance of a step (default 0.001)")
    steps.add_argument(
        "--min-effect", type=float, default=0.02, help="smallest step that counts (default 0.02)"
    )
    steps.add_argument(
        "--min-runs", type=int, default=3, help="runs a level must hold on each side of a step (default 3)"
    )
    steps.add_argument("--benchmark", default=None, help="only benchmarks whose name contains this")
    steps.add_argument("--json", action="store_true", help="print the series and their steps as JSON")
    abp = command(
        commands,
        "ab",
        ab,
        "baseline and candidate sampled side by side in one session: change, interval, verdict",
        "python -m bench ab --baseline-ref origin/main -m fast --fail-on-regression   # the PR check",
        "python -m bench ab --baseline-python ~/venvs/torch-old/bin/python -m fast    # a torch upgrade",
        "python -m bench ab --baseline-option attention=hf -k train_step_fast",
        more="It samples the benchmarks that pytest's selection picks on a baseline side and on this "
        "checkout as it is; every argument ab does not know goes to pytest. Without -m or -k that is "
        "every benchmark pytest collects, the slow ones included (hours): give -m fast for the PR check.",
        allow_abbrev=False,
    )
    abp.add_argument("--baseline-ref", help="a git ref of this repository: its checkout, this interpreter")
    abp.add_argument("--baseline-python", help="another interpreter (a venv's python or a wrapper script)")
    abp.add_argument("--baseline-env", action="append", default=[], metavar="VAR=VALUE", help="repeatable")
    abp.add_argument(
        "--baseline-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a run option, repeatable",
    )
    abp.add_argument("--processes", default="10", help="worker processes per side (default 10)")
    abp.add_argument(
        "--seconds", default="20", help="timed seconds per benchmark, both sides together (default 20)"
    )
    abp.add_argument("--alpha", type=float, default=0.01, help="significance level (default 0.01)")
    abp.add_argument(
        "--min-effect", type=float, default=0.02, help="smallest change that counts (default 0.02)"
    )
    abp.add_argument(
        "--results", default="results", help="pairs are saved under RESULTS/ab/ (default results)"
    )
    abp.add_argument(
        "--json", action="store_true", help="print the verdicts as JSON (pytest's output to stderr)"
    )
    abp.add_argument("--fail-on-regression", action="store_true", help="exit 1 when any benchmark regressed")
    abp.add_argument("--inject-slowdown", type=float, default=None, help=argparse.SUPPRESS)  # self-tests only
    check = command(
        commands,
        "power",
        power,
        "how often compare, changes or ab find injected slowdowns, and how often they cry wolf",
        "python -m bench power --runs 40   # compare on fresh runs (minutes)",
        "python -m bench power --ab --case train-step --null-trials 10 --trials 10 --save power.json",
        "python -m bench power --changes   # changes on the saved runs (seconds)",
        "python -m bench power --scores results/ab/*   # the scores' intervals on saved pairs",
    )
    check.add_argument("--runs", default="40", help="runs, each with fresh worker processes (default 40)")
    check.add_argument(
        "--workers", default="3", help="worker processes per run (default 3, the fast profile's)"
    )
    check.add_argument("--alpha", type=float, default=None, help="default 0.01 (0.001 with --changes)")
    check.add_argument("--min-effect", type=float, default=0.02)
    check.add_argument(
        "--changes",
        action="store_true",
        help="measure `bench changes` on the saved runs in --results instead (seconds, no benchmarks run)",
    )
    check.add_argument("--results", default="results", help="with --changes: the history folder")
    check.add_argument("--min-runs", type=int, default=3, help="with --changes: as `changes --min-runs`")
    check.add_argument(
        "--history", default="10", help="with --changes: same-code runs before each step (default 10)"
    )
    check.add_argument("--save", default=None, help="write tables and values to this JSON file")
    check.add_argument("--ab", action="store_true", help="measure `bench ab` instead of history compare")
    check.add_argument(
        "--scores",
        nargs="+",
        metavar="PAIR",
        help="saved A/B pair folders: each score's interval widths and same-code calibration",
    )
    check.add_argument(
        "--case",
        default="hf-w32-L512",
        help="with --ab: hf-w32-L512, blocked-w128-L2048, epoch-slice, train-step, or self-test "
        "(tests/test_ab.py's)",
    )
    check.add_argument("--null-trials", default="200", help="with --ab: same-code trials (default 200)")
    check.add_argument("--trials", default="40", help="with --ab: trials per injected level (default 40)")
    check.add_argument("--processes", default="10", help="with --ab: processes per side (default 10, as ab)")
    check.add_argument("--seconds", default="20", help="with --ab: seconds per benchmark (default 20, as ab)")
    check.add_argument(
        "--resume",
        action="store_true",
        help="with --ab: go on from the trials in --save FILE up to the counts asked for",
    )
    command(commands, "presets", presets, "FlagPerf's cases and their commands", "python -m bench presets")
    argv = sys.argv[1:] if argv is None else argv
    args, unknown = parser.parse_known_args(argv)
    if args.command == "ab":
        args.pytest_args = unknown
    elif unknown:  # with the command's own usage, which lists what it takes
        commands.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.handler(args)
    except BenchInputError as err:
        print(f"error: {as_given(str(err), argv)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

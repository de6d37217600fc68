"""`python -m bench train|prepare|report|compare|power|presets`: the harness without pytest.

python -m bench train --epochs 1 --record results/train.jsonl [run options]
torchrun --nproc-per-node 8 -m bench train ...
python -m bench compare --fail-on-regression
python -m bench presets
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from bench.errors import BenchInputError
from bench.options import CONVERGENCE_OPTIONS, OPTIONS


def add_run_options(parser: argparse.ArgumentParser) -> None:
    for opt in (*OPTIONS, *CONVERGENCE_OPTIONS):
        parser.add_argument(
            opt.flag, dest=opt.dest, default=opt.value_from_env(), help=f"{opt.help} [${opt.env}]"
        )


def train(args: argparse.Namespace) -> int:
    from bench.device import use_threads
    from bench.distributed import close_world, init_world
    from bench.runner import DATA_PATHS, append_record, run_training, stop_rules
    from bench.spec import build_spec, positive_int

    run_options = {opt.dest: getattr(args, opt.dest) for opt in OPTIONS}
    if args.data_path not in DATA_PATHS:
        raise BenchInputError(f"--data-path {args.data_path!r}: expected one of {', '.join(DATA_PATHS)}")
    if args.max_steps is not None and args.max_steps <= 0:
        raise BenchInputError(f"--max-steps {args.max_steps}: must be positive")
    stop = stop_rules(args.target_acc, args.time_budget, args.patience)
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
            lr=args.lr,
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
        for split, stats in check(Path(args.check), args.model_dir and Path(args.model_dir)).items():
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

    storage = Path(args.storage)
    if not storage.is_dir():
        raise BenchInputError(f"--storage {storage}: directory does not exist")
    out = Path(args.out) if args.out else storage / "report.html"
    charts = write_report(storage, out, warn=lambda message: print(f"warning: {message}", file=sys.stderr))
    print(f"{out} ({charts} trend charts)")
    return 0


def compare(args: argparse.Namespace) -> int:
    from bench.compare import any_regression, as_json, compare, format_table

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
        else format_table(base_runs, latest, rows, args.alpha, args.min_effect)
    )
    return 1 if args.fail_on_regression and any_regression(rows) else 0


def power(args: argparse.Namespace) -> int:
    from bench.history import replace_atomically
    from bench.options import option_defaults
    from bench.power import LEVELS, collect, fast_profile_job, format_detection, tables
    from bench.spec import positive_int

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


def presets(_: argparse.Namespace) -> int:
    from bench.presets import PRESETS

    for preset in PRESETS.values():
        published = ", ".join(f"{k} {v}" for k, v in preset.published.items() if v is not None) or "none"
        print(f"{preset.name}: global batch {preset.global_batch}; A100 fp32 published: {published}")
        print(f"  {preset.command()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("train", help="train and write a throughput record (torchrun-aware)")
    add_run_options(run)
    run.add_argument("--max-steps", type=int, default=None, help="cut every epoch after this many steps")
    run.add_argument("--data-path", default="device", help="device (the suite's) or flagperf (DataLoader)")
    run.add_argument(
        "--flagperf-sampler",
        action="store_true",
        help="never call set_epoch: every epoch repeats one order, as FlagPerf does",
    )
    run.add_argument("--lr", type=float, default=5e-5)
    run.add_argument("--record", default=None, help="append the run's record to this JSON-lines file")
    run.set_defaults(handler=train)
    build = commands.add_parser("prepare", help="raw text -> FlagPerf's npz files; or --check a folder")
    build.add_argument("--raw", help="folder with wiki.train.raw and wiki.valid.raw")
    build.add_argument("--tokenizer", help="local tokenizer folder (e.g. longformer_train/model)")
    build.add_argument("--out", help="folder to write train_dataset.npz, eval_dataset.npz, manifest.json")
    build.add_argument("--block-len", type=int, default=None, help="default: min(model_max_length, 1024)")
    build.add_argument("--overwrite", action="store_true", help="replace data already in --out")
    build.add_argument("--check", metavar="DIR", help="validate a data folder and print its statistics")
    build.add_argument("--model-dir", help="with --check: the model whose vocabulary the ids must fit")
    build.set_defaults(handler=prepare)
    show = commands.add_parser("report", help="trend charts per benchmark and one HTML page")
    show.add_argument("--storage", default="results", help="the history folder (default results)")
    show.add_argument("--out", default=None, help="the HTML file (default STORAGE/report.html)")
    show.set_defaults(handler=report)
    diff = commands.add_parser("compare", help="the latest run against a baseline: change, interval, verdict")
    diff.add_argument("--results", default="results", help="the history folder (default results)")
    diff.add_argument(
        "--latest", default=None, help="run to judge: file, name or number (default the newest)"
    )
    diff.add_argument(
        "--baseline",
        default="previous",
        help="previous (default: the run before it, same fingerprint), last:N (the N before it, pooled), "
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
    diff.add_argument("--force", action="store_true", help="compare runs from different fingerprints")
    diff.add_argument(
        "--process-spread",
        action="store_true",
        help="give verdicts before 5 earlier runs exist, on the spread between processes alone "
        "(blind to drift between runs: on a shared machine it flags same-code runs now and then)",
    )
    diff.add_argument("--json", action="store_true", help="print the comparison as JSON")
    diff.set_defaults(handler=compare)
    check = commands.add_parser("power", help="how often compare finds injected slowdowns (minutes)")
    check.add_argument("--runs", default="40", help="runs, each with fresh worker processes (default 40)")
    check.add_argument(
        "--workers", default="3", help="worker processes per run (default 3, the fast profile's)"
    )
    check.add_argument("--alpha", type=float, default=0.01)
    check.add_argument("--min-effect", type=float, default=0.02)
    check.add_argument("--save", default=None, help="write tables and values to this JSON file")
    check.set_defaults(handler=power)
    commands.add_parser("presets", help="FlagPerf's cases and their commands").set_defaults(handler=presets)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except BenchInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

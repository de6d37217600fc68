"""`python -m bench train`: one training run to a record, on one device or torchrun's ranks."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from bench.base.errors import BenchInputError
from bench.harness.options import CONVERGENCE_OPTIONS, OPTIONS

NAME = "train"
SUMMARY = "train and write a throughput record (torchrun-aware)"
EXAMPLES = (
    "python -m bench train --max-epochs 1 --record results/train.jsonl",
    "torchrun --nproc-per-node 8 -m bench train --model-dir longformer_train/model",
)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    for opt in (*OPTIONS, *CONVERGENCE_OPTIONS):
        parser.add_argument(
            opt.flag, dest=opt.dest, default=opt.value_from_env(), help=f"{opt.help} [${opt.env}]"
        )


def setup(parser: argparse.ArgumentParser) -> None:
    add_run_options(parser)
    parser.add_argument("--max-steps", type=int, default=None, help="cut every epoch after this many steps")
    parser.add_argument("--data-path", default="device", help="device (the suite's) or flagperf (DataLoader)")
    parser.add_argument(
        "--flagperf-sampler",
        action="store_true",
        help="never call set_epoch: every epoch repeats one order, as FlagPerf does",
    )
    parser.add_argument("--lr", default="5e-5", help="peak learning rate (default 5e-5, FlagPerf's)")
    parser.add_argument("--record", default=None, help="append the run's record to this JSON-lines file")


def run(args: argparse.Namespace) -> int:
    from bench.harness.device import use_threads
    from bench.harness.distributed import close_world, init_world
    from bench.harness.runner import DATA_PATHS, append_record, run_training, stop_rules
    from bench.harness.spec import build_spec, positive_float, positive_int

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

"""`python -m bench prepare`: FlagPerf's npz files from raw text, or a check of a data folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.base.errors import BenchInputError

NAME = "prepare"
SUMMARY = "raw text -> FlagPerf's npz files; or --check a folder"
EXAMPLES = (
    "python -m bench prepare --raw wikitext-103-raw --tokenizer longformer_train/model --out data",
    "python -m bench prepare --check longformer_train/dataset --model-dir longformer_train/model",
)


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raw", help="folder with wiki.train.raw and wiki.valid.raw")
    parser.add_argument("--tokenizer", help="local tokenizer folder (e.g. longformer_train/model)")
    parser.add_argument("--out", help="folder to write train_dataset.npz, eval_dataset.npz, manifest.json")
    parser.add_argument("--block-len", type=int, default=None, help="default: min(model_max_length, 1024)")
    parser.add_argument("--overwrite", action="store_true", help="replace data already in --out")
    parser.add_argument("--check", metavar="DIR", help="validate a data folder and print its statistics")
    parser.add_argument("--model-dir", help="with --check: the model whose vocabulary the ids must fit")


def run(args: argparse.Namespace) -> int:
    from bench.harness.prepare import check, prepare

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

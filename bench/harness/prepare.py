"""FlagPerf's data preparation: raw text -> the train/eval npz files, and a checker for any folder.

create_train_eval_data.py reads WikiText-2 raw line by line (a blank line becomes ''), tokenizes every
line on its own (special tokens included), concatenates the lines in groups of 1000, cuts each group
into blocks of min(model_max_length, 1024) tokens and drops each group's remainder. No padding, so
the attention mask is all ones.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from bench.base.errors import BenchInputError
from bench.base.history import replace_atomically
from bench.harness.data import KEYS, load_dataset

LINES_PER_GROUP = 1000
# FlagPerf's dtypes; any integer dtype is accepted on load.
DTYPES = {"input_ids": np.int32, "attention_mask": np.int8, "special_tokens_mask": np.int8}


def group_into_blocks(
    input_ids: Sequence[Sequence[int]],
    special_tokens_mask: Sequence[Sequence[int]],
    block_len: int,
    lines_per_group: int = LINES_PER_GROUP,
) -> dict[str, np.ndarray]:
    """Per-line token rows -> {key: (N, block_len) array} exactly as FlagPerf groups them."""
    if block_len <= 0:
        raise ValueError(f"block_len {block_len} must be positive")
    ids_blocks: list[np.ndarray] = []
    special_blocks: list[np.ndarray] = []
    for start in range(0, len(input_ids), lines_per_group):
        stop = start + lines_per_group
        ids = np.fromiter((t for row in input_ids[start:stop] for t in row), dtype=np.int64)
        special = np.fromiter((t for row in special_tokens_mask[start:stop] for t in row), dtype=np.int64)
        usable = len(ids) // block_len * block_len
        ids_blocks.append(ids[:usable].reshape(-1, block_len))
        special_blocks.append(special[:usable].reshape(-1, block_len))
    ids_all = np.concatenate(ids_blocks) if ids_blocks else np.zeros((0, block_len), np.int64)
    special_all = np.concatenate(special_blocks) if special_blocks else np.zeros((0, block_len), np.int64)
    return {
        "input_ids": ids_all.astype(DTYPES["input_ids"]),
        "attention_mask": np.ones_like(ids_all, dtype=DTYPES["attention_mask"]),
        "special_tokens_mask": special_all.astype(DTYPES["special_tokens_mask"]),
    }


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez, but byte-for-byte reproducible (fixed zip timestamps) and atomic."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array))
    replace_atomically(path, buffer.getvalue())


MANIFEST = "manifest.json"
RAW_FILES = {"train_dataset.npz": "wiki.train.raw", "eval_dataset.npz": "wiki.valid.raw"}
MAX_BLOCK_LEN = 1024  # FlagPerf: min(tokenizer.model_max_length, 1024)
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def read_rows(path: Path) -> list[str]:
    """The rows HF's wikitext loader yields: each line with its newline; blank lines become ''."""
    if not path.is_file():
        raise BenchInputError(f"{path}: file does not exist")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise BenchInputError(f"{path}: line {line} is not valid UTF-8 ({err.reason})") from None
    rows = ["" if not line.strip() else line for line in io.StringIO(text, newline=None)]
    if not any(rows):
        raise BenchInputError(f"{path}: holds no text")
    return rows


def load_tokenizer(tokenizer_dir: Path):
    """A local tokenizer folder: tokenizer.json, or vocab.json and merges.txt (RoBERTa's BPE)."""
    tokenizer_dir = Path(tokenizer_dir)
    if not tokenizer_dir.is_dir():
        raise BenchInputError(f"--tokenizer {tokenizer_dir}: directory does not exist")
    has = {name for name in TOKENIZER_FILES if (tokenizer_dir / name).is_file()}
    if "tokenizer.json" not in has and not {"vocab.json", "merges.txt"} <= has:
        missing = sorted({"vocab.json", "merges.txt"} - has)
        raise BenchInputError(
            f"--tokenizer {tokenizer_dir}: missing {', '.join(missing)} (and no tokenizer.json)"
        )
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        raise BenchInputError(f"--tokenizer {tokenizer_dir}: cannot load a tokenizer ({err})") from None


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tokenizer_hash(tokenizer_dir: Path) -> str:
    """One digest over the tokenizer files present, by name and content."""
    digest = hashlib.sha256()
    for name in TOKENIZER_FILES:
        if (Path(tokenizer_dir) / name).is_file():
            digest.update(name.encode() + b"\0" + (Path(tokenizer_dir) / name).read_bytes())
    return digest.hexdigest()


def tokenize_split(
    rows: list[str], tokenizer, block_len: int, desc: str, lines_per_group: int = LINES_PER_GROUP
) -> dict[str, np.ndarray]:
    """Tokenize a group of rows at a time (each row on its own, special tokens added), then block."""
    ids: list[list[int]] = []
    special: list[list[int]] = []
    for start in tqdm(range(0, len(rows), lines_per_group), desc=desc, unit="group", leave=False):
        # verbose=False: rows longer than the model's maximum are expected, they are cut into blocks
        encoded = tokenizer(
            rows[start : start + lines_per_group], return_special_tokens_mask=True, verbose=False
        )
        ids += encoded["input_ids"]
        special += encoded["special_tokens_mask"]
    return group_into_blocks(ids, special, block_len, lines_per_group)


def prepare(
    raw_dir: Path,
    tokenizer_dir: Path,
    out_dir: Path,
    block_len: int | None = None,
    overwrite: bool = False,
    lines_per_group: int = LINES_PER_GROUP,
) -> dict:
    """Build FlagPerf's train/eval npz files and a manifest from raw WikiText-style text.

    Everything is written to a temporary folder beside `out_dir` first and moved in only when all of
    it succeeded, so a failure or an interrupt leaves nothing half-written.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if not raw_dir.is_dir():
        raise BenchInputError(f"--raw {raw_dir}: directory does not exist")
    existing = [name for name in (*RAW_FILES, MANIFEST) if (out_dir / name).exists()]
    if existing and not overwrite:
        raise BenchInputError(
            f"--out {out_dir}: already holds {', '.join(existing)}; pass --overwrite to replace them"
        )
    sources = {out: raw_dir / raw for out, raw in RAW_FILES.items()}
    rows = {out: read_rows(path) for out, path in sources.items()}  # bad text fails before any work
    tokenizer = load_tokenizer(tokenizer_dir)
    length = block_len or min(tokenizer.model_max_length, MAX_BLOCK_LEN)
    if length <= 0:
        raise BenchInputError(f"--block-len {length}: must be positive")
    manifest: dict = {
        "block_len": length,
        "lines_per_group": lines_per_group,
        "tokenizer": {
            "dir": str(tokenizer_dir),
            "sha256": tokenizer_hash(tokenizer_dir),
            "size": len(tokenizer),
        },
        "splits": {},
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.", dir=out_dir.parent) as tmp:
        for name, source in sources.items():
            arrays = tokenize_split(rows[name], tokenizer, length, source.name, lines_per_group)
            if arrays["input_ids"].size == 0:
                raise BenchInputError(f"{source}: too little text for one block of {length} tokens")
            write_npz(Path(tmp) / name, arrays)
            manifest["splits"][name] = {
                "source": source.name,
                "source_sha256": sha256_file(source),
                "rows": len(rows[name]),
                "samples": int(arrays["input_ids"].shape[0]),
                "tokens": int(arrays["input_ids"].size),
                "sha256": sha256_file(Path(tmp) / name),
            }
        (Path(tmp) / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in (*RAW_FILES, MANIFEST):
            os.replace(Path(tmp) / name, out_dir / name)
    return manifest


def check(data_dir: Path, model_dir: Path | None = None, flag: str = "--data-dir") -> dict[str, dict]:
    """Validate a data folder as the fixtures do, and describe each split; errors name `flag`."""
    vocab_size = None
    if model_dir is not None:
        from bench.harness.model import load_config

        vocab_size = load_config(Path(model_dir)).vocab_size
    stats = {}
    for name, blocks in load_dataset(Path(data_dir), vocab_size, flag).items():
        ids = blocks.input_ids
        stats[name] = {
            "file": blocks.source.name,
            "samples": blocks.n_samples,
            "seq_len": blocks.seq_len,
            "tokens": int(ids.size),
            "special_token_share": float(blocks.special_tokens_mask.mean()),
            "padding_share": float(1 - blocks.attention_mask.mean()),
            "id_range": [int(ids.min()), int(ids.max())],
            "distinct_ids": int(np.unique(ids).size),
            "dtypes": {key: str(getattr(blocks, key).dtype) for key in KEYS},
            "vocab_size": vocab_size,
        }
    return stats

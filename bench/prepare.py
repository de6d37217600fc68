"""FlagPerf's rule for turning tokenized lines into fixed-length blocks.

create_train_eval_data.py tokenizes every line on its own (special tokens included), concatenates
the lines in groups of 1000, cuts each group into blocks of `block_len` tokens and drops each group's
remainder. No padding, so the attention mask is all ones.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

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
    """np.savez, but byte-for-byte reproducible (fixed zip timestamps) and atomic (temp + rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
            for key, array in arrays.items():
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                with archive.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.ascontiguousarray(array))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

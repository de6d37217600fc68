"""Load and validate FlagPerf's npz data folders, and move them onto the device as tensors.

This is the one validation of a data folder: the fixtures and the command line both call it.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.base.errors import BenchInputError

SPLIT_FILES = {"train": "train_dataset.npz", "eval": "eval_dataset.npz"}
KEYS = ("input_ids", "attention_mask", "special_tokens_mask")


class Blocks:
    """N samples of L tokens each, wherever they live."""

    input_ids: np.ndarray | torch.Tensor

    @property
    def n_samples(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.input_ids.shape[1])


@dataclass(frozen=True)
class TokenBlocks(Blocks):
    """One split as FlagPerf stores it: N blocks of L token ids, no padding, no masking yet."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    special_tokens_mask: np.ndarray
    source: Path


def load_split(path: Path, vocab_size: int | None = None) -> TokenBlocks:
    """Read one npz file and reject anything the training loop would silently mis-handle."""
    path = Path(path)
    if not path.is_file():
        raise BenchInputError(f"{path}: file does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in KEYS if key not in npz.files]
            if missing:
                raise BenchInputError(
                    f"{path}: missing key(s) {', '.join(missing)}; FlagPerf's files hold {', '.join(KEYS)}"
                )
            arrays = {key: npz[key] for key in KEYS}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        if isinstance(err, BenchInputError):
            raise
        if "Object arrays" in str(err):
            raise BenchInputError(
                f"{path}: holds a ragged (object) array; rows must all have one length"
            ) from None
        raise BenchInputError(f"{path}: not a readable npz file ({err})") from None
    for key, array in arrays.items():
        if not np.issubdtype(array.dtype, np.integer):
            raise BenchInputError(f"{path}: {key} has dtype {array.dtype}, expected an integer dtype")
        if array.ndim != 2:
            raise BenchInputError(f"{path}: {key} has shape {array.shape}, expected (samples, seq_len)")
    shapes = {key: array.shape for key, array in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise BenchInputError(f"{path}: arrays have different shapes {shapes}")
    ids = arrays["input_ids"]
    if ids.size == 0:
        raise BenchInputError(f"{path}: holds no tokens (shape {ids.shape})")
    if ids.min() < 0:
        raise BenchInputError(f"{path}: input_ids has a negative id {ids.min()}")
    if vocab_size is not None and ids.max() >= vocab_size:
        raise BenchInputError(
            f"{path}: input_ids has id {ids.max()}, outside the model's vocabulary "
            f"(vocab_size {vocab_size}); was it tokenized with another tokenizer?"
        )
    for key in ("attention_mask", "special_tokens_mask"):
        if not np.isin(arrays[key], (0, 1)).all():
            raise BenchInputError(f"{path}: {key} holds values other than 0 and 1")
    return TokenBlocks(source=path, **arrays)


def load_dataset(
    data_dir: Path, vocab_size: int | None = None, flag: str = "--data-dir"
) -> dict[str, TokenBlocks]:
    """Both splits of a FlagPerf dataset folder (`longformer_train/dataset` in their tarball);
    errors about the folder name `flag`, the option that gave it."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise BenchInputError(f"{flag} {data_dir}: directory does not exist")
    splits = {name: load_split(data_dir / file, vocab_size) for name, file in SPLIT_FILES.items()}
    if splits["train"].seq_len != splits["eval"].seq_len:
        raise BenchInputError(
            f"{flag} {data_dir}: train blocks are {splits['train'].seq_len} tokens long, "
            f"eval blocks {splits['eval'].seq_len}"
        )
    return splits


def reblock(blocks: TokenBlocks, seq_len: int) -> TokenBlocks:
    """Cut stored blocks into shorter ones of `seq_len` tokens, keeping every token."""
    if seq_len == blocks.seq_len:
        return blocks
    if seq_len > blocks.seq_len or blocks.seq_len % seq_len:
        raise BenchInputError(
            f"--seq-len {seq_len}: {blocks.source} holds blocks of {blocks.seq_len} tokens; "
            "the sequence length must divide it"
        )
    arrays = {key: getattr(blocks, key).reshape(-1, seq_len) for key in KEYS}
    return TokenBlocks(source=blocks.source, **arrays)


def head(blocks: TokenBlocks, n_samples: int) -> TokenBlocks:
    """The first `n_samples` blocks (all of them when there are fewer)."""
    arrays = {key: getattr(blocks, key)[:n_samples] for key in KEYS}
    return TokenBlocks(source=blocks.source, **arrays)


@dataclass(frozen=True)
class DeviceSplit(Blocks):
    """A split resident on the device, so the training loop never waits on host copies."""

    input_ids: torch.Tensor  # int64 (N, L)
    attention_mask: torch.Tensor  # int64 (N, L)
    special_tokens_mask: torch.Tensor  # bool (N, L)


def to_device(blocks: TokenBlocks, device: torch.device) -> DeviceSplit:
    """Widen to the dtypes the model takes once, at load, instead of every step."""
    return DeviceSplit(
        input_ids=torch.from_numpy(blocks.input_ids.astype(np.int64)).to(device),
        attention_mask=torch.from_numpy(blocks.attention_mask.astype(np.int64)).to(device),
        special_tokens_mask=torch.from_numpy(blocks.special_tokens_mask.astype(bool)).to(device),
    )

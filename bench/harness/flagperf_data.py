"""FlagPerf's data path, as a baseline: DataLoader workers, HF's collator on the host, host->device.

FlagPerf masks on the host in worker processes (respawned every epoch), copies each batch to the
device, and reads the loss with `.item()` every step. The suite's own path (train.device_batches)
masks on the device instead; measuring both side by side shows what the data path costs.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from transformers import AutoTokenizer, DataCollatorForLanguageModeling

from bench.harness.data import TokenBlocks
from bench.harness.distributed import World
from bench.harness.train import Batch

FLAGPERF_WORKERS = 8


class NpzRows(Dataset):
    """Rows of a FlagPerf npz split, as the collator expects them."""

    def __init__(self, blocks: TokenBlocks) -> None:
        self.blocks = blocks

    def __len__(self) -> int:
        return self.blocks.n_samples

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": torch.as_tensor(self.blocks.input_ids[index], dtype=torch.long),
            "attention_mask": torch.as_tensor(self.blocks.attention_mask[index], dtype=torch.long),
            "special_tokens_mask": torch.as_tensor(self.blocks.special_tokens_mask[index], dtype=torch.long),
        }


@cache
def collator(model_dir: Path) -> DataCollatorForLanguageModeling:
    """HF's MLM collator with the directory's tokenizer, built once (FlagPerf builds it at setup)."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    return DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)


def flagperf_batches(
    blocks: TokenBlocks,
    model_dir: Path,
    order: list[int],
    batch_size: int,
    world: World,
    workers: int = FLAGPERF_WORKERS,
) -> Iterator[Batch]:
    """Host batches in this rank's sampler order (`order` from train.epoch_order), masked by workers."""
    loader = DataLoader(
        NpzRows(blocks),
        batch_size=batch_size,
        sampler=order[world.rank :: world.size],
        collate_fn=collator(Path(model_dir)),
        num_workers=workers,
        pin_memory=False,
        persistent_workers=False,
    )
    for batch in loader:
        yield Batch(batch["input_ids"], batch["attention_mask"], batch["labels"])

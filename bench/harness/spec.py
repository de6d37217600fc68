"""One validated description of what a run trains on, built before anything is timed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import LongformerConfig

from bench.base.errors import BenchInputError
from bench.harness.attention import IMPLEMENTATIONS
from bench.harness.compiled import check_compile_mode
from bench.harness.data import TokenBlocks, load_dataset, reblock
from bench.harness.device import Precision, resolve_device, resolve_precision
from bench.harness.fingerprint import machine_fingerprint
from bench.harness.model import (
    INITS,
    check_sequence_length,
    load_config,
    mask_token_id,
    weights_file,
)
from bench.harness.options import positive_float, positive_int


@dataclass(frozen=True)
class RunSpec:
    """Every choice a benchmark depends on, each already checked against the others."""

    device: torch.device
    precision: Precision
    model_dir: Path
    data_dir: Path
    init: str
    seq_len: int
    batch_size: int
    seed: int
    config: LongformerConfig
    train: TokenBlocks
    eval: TokenBlocks
    mask_token_id: int
    attention: str = "hf"
    peak_tflops: float | None = None
    threads: int | None = None
    workers: int = 3
    compile: str = "off"

    @property
    def worker_threads(self) -> int:
        """Sampled benchmarks compute with one thread unless told: with torch's default two on a
        2-core CPU, per-process timings split into a fast and a slow mode by process."""
        return self.threads or 1

    def run_config(self) -> dict:
        """What a run measures besides the machine: with the hardware, the series its timings belong
        to (bench/base/history.py). Paths are left out: the same model and data elsewhere compare."""
        config = self.config
        return {
            "model": {
                "vocab_size": config.vocab_size,
                "hidden_size": config.hidden_size,
                "layers": config.num_hidden_layers,
                "heads": config.num_attention_heads,
                "intermediate_size": config.intermediate_size,
                "attention_window": max(config.attention_window),
            },
            "init": self.init,
            "seq_len": self.seq_len,
            "batch_size": self.batch_size,
            "attention": self.attention,
            "workers": self.workers,
            "train_samples": self.train.n_samples,
            "eval_samples": self.eval.n_samples,
            # compiled and eager runs never share a series; eager runs' series stay what they were
            **({"compile": self.compile} if self.compile != "off" else {}),
        }

    def fingerprint(self) -> dict:
        """This machine with this run's configuration (bench/harness/fingerprint.py): what a saved run
        records, and the series it is filed under."""
        return machine_fingerprint(self.device, self.precision.name, self.worker_threads, self.run_config())

    @property
    def peak_flops_per_s(self) -> float | None:
        return self.peak_tflops * 1e12 if self.peak_tflops else None

    def header(self) -> list[str]:
        """What a run's output says first: where it computes, on what model and data."""
        return [
            f"longformer-bench: device {self.device}, dtype {self.precision.name}, init {self.init}, "
            f"batch {self.batch_size} x seq {self.seq_len}, window {max(self.config.attention_window)}, "
            f"attention {self.attention}",
            f"  compile {self.compile} ({'eager' if self.compile == 'off' else 'torch.compile, inductor'})",
            f"  model {self.model_dir}",
            f"  data  {self.data_dir} ({self.train.n_samples} train / {self.eval.n_samples} eval blocks)",
        ]


def build_spec(
    *,
    device: str,
    model_dir: Path,
    data_dir: Path,
    init: str,
    dtype: str,
    seq_len: int | str | None,
    batch_size: int | str,
    attention_window: int | str | None,
    seed: int | str,
    attention: str = "hf",
    peak_tflops: str | float | None = None,
    threads: str | int | None = None,
    workers: str | int = 3,
    compile: str = "off",
) -> RunSpec:
    """Validate the options in the order a user would fix them, and load the data once."""
    torch_device = resolve_device(device)
    precision = resolve_precision(dtype, torch_device)
    if init not in INITS:
        raise BenchInputError(f"--init {init!r}: expected one of {', '.join(INITS)}")
    window = positive_int("--attention-window", attention_window)
    config = load_config(Path(model_dir), window)
    if init == "pretrained":
        weights_file(Path(model_dir))
    check_attention(attention, torch_device, config)
    check_compile_mode(compile)
    splits = load_dataset(Path(data_dir), config.vocab_size)
    length = positive_int("--seq-len", seq_len) or splits["train"].seq_len
    check_sequence_length(config, length)
    batch = positive_int("--batch-size", batch_size)
    if batch is None:
        raise BenchInputError("--batch-size: a value is required")
    try:
        seed_value = int(seed)
    except (TypeError, ValueError):
        raise BenchInputError(f"--seed {seed!r}: not an integer") from None
    return RunSpec(
        device=torch_device,
        precision=precision,
        model_dir=Path(model_dir),
        data_dir=Path(data_dir),
        init=init,
        seq_len=length,
        batch_size=batch,
        seed=seed_value,
        mask_token_id=mask_token_id(Path(model_dir)),
        attention=attention,
        peak_tflops=positive_float("--peak-tflops", peak_tflops),
        threads=positive_int("--threads", threads),
        workers=positive_int("--workers", workers) or 3,
        compile=compile,
        config=config,
        train=reblock(splits["train"], length),
        eval=reblock(splits["eval"], length),
    )


def check_attention(name: str, device: torch.device, config: LongformerConfig) -> None:
    """The implementations that cannot train here say so before anything runs."""
    if name not in IMPLEMENTATIONS:
        raise BenchInputError(f"--attention {name!r}: expected one of {', '.join(IMPLEMENTATIONS)}")
    if name == "flex" and device.type != "cuda":
        raise BenchInputError("--attention flex: flex_attention has no backward on the CPU; use blocked")
    if name == "flex" and config.attention_probs_dropout_prob:
        raise BenchInputError(
            f"--attention flex: flex_attention has no attention dropout, and the model's "
            f"attention_probs_dropout_prob is {config.attention_probs_dropout_prob}; use blocked"
        )

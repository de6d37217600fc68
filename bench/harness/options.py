"""The run options, shared by the pytest plugin and `python -m bench`: one table, no torch import.

Each option is also an environment variable; a given option wins over the environment, which wins
over the default. The defaults describe the embedded tiny model and data shipped in fixtures/.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.base.errors import BenchInputError

EMBEDDED = Path(__file__).resolve().parents[2] / "fixtures" / "embedded"
EMBEDDED_MODEL_DIR = EMBEDDED / "model"
EMBEDDED_DATA_DIR = EMBEDDED / "dataset"


@dataclass(frozen=True)
class Option:
    flag: str
    env: str
    default: str | None
    help: str

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def value_from_env(self) -> str | None:
        return os.environ.get(self.env, self.default)


OPTIONS = (
    Option("--device", "LFBENCH_DEVICE", "auto", "auto (cuda if available, else cpu), cpu, cuda or cuda:N"),
    Option(
        "--model-dir",
        "LFBENCH_MODEL_DIR",
        str(EMBEDDED_MODEL_DIR),
        "local Hugging Face Longformer directory, e.g. FlagPerf's longformer_train/model",
    ),
    Option(
        "--data-dir",
        "LFBENCH_DATA_DIR",
        str(EMBEDDED_DATA_DIR),
        "folder with train_dataset.npz and eval_dataset.npz, e.g. longformer_train/dataset",
    ),
    Option(
        "--init",
        "LFBENCH_INIT",
        "random",
        "random (FlagPerf: config only, seeded init) or pretrained (load the weights)",
    ),
    Option("--dtype", "LFBENCH_DTYPE", "fp32", "fp32, tf32 (CUDA), bf16 or fp16"),
    Option(
        "--seq-len",
        "LFBENCH_SEQ_LEN",
        None,
        "tokens per sample; must divide the stored block length (default: the data's)",
    ),
    Option("--batch-size", "LFBENCH_BATCH_SIZE", "16", "samples per step on each device"),
    Option(
        "--attention-window",
        "LFBENCH_ATTENTION_WINDOW",
        None,
        "override the attention window of every layer (default: the config's)",
    ),
    Option("--seed", "LFBENCH_SEED", "42", "seed for init, sampling and masking"),
    Option(
        "--attention",
        "LFBENCH_ATTENTION",
        "hf",
        "self-attention of the model under test: hf (transformers'), blocked (exact, faster), "
        "flex (CUDA, no dropout) or dense (full attention, a different function)",
    ),
    Option(
        "--compile",
        "LFBENCH_COMPILE",
        "off",
        "train under torch.compile in this mode: off, default, reduce-overhead, max-autotune or "
        "max-autotune-no-cudagraphs (inductor; part of the run's series)",
    ),
    Option(
        "--threads",
        "LFBENCH_THREADS",
        None,
        "CPU threads torch computes with: in the worker processes 1 unless given, elsewhere torch's choice; "
        "part of the run's fingerprint",
    ),
    Option(
        "--workers",
        "LFBENCH_WORKERS",
        "3",
        "worker processes each sampled benchmark is timed in, one after another (bench/measure/sampling.py)",
    ),
    Option(
        "--peak-tflops",
        "LFBENCH_PEAK_TFLOPS",
        None,
        "the device's peak TFLOP/s at --dtype, for MFU (default: a table of known GPUs)",
    ),
)


# How a convergence run ends; unset, each case's own values apply (bench/benchmarks/test_convergence.py).
CONVERGENCE_OPTIONS = (
    Option("--target-acc", "LFBENCH_TARGET_ACC", None, "eval MLM accuracy that counts as converged"),
    Option("--max-epochs", "LFBENCH_MAX_EPOCHS", None, "stop after this many epochs"),
    Option("--time-budget", "LFBENCH_TIME_BUDGET", None, "seconds of training, checked after each epoch"),
    Option("--patience", "LFBENCH_PATIENCE", None, "stop after this many evaluations without a new best"),
)


def option_defaults() -> dict[str, str | None]:
    """The options as they are when nothing is given: the embedded default."""
    return {opt.dest: opt.default for opt in OPTIONS}


def from_environment(args: list[str]) -> dict[str, str]:
    """{flag: environment variable} for each option whose value comes from the environment: the
    variable is set and `args` (the command line) does not give the flag."""
    given = {arg.split("=", 1)[0] for arg in args}
    return {
        opt.flag: opt.env
        for opt in (*OPTIONS, *CONVERGENCE_OPTIONS)
        if opt.env in os.environ and opt.flag not in given
    }


def as_given(message: str, args: list[str]) -> str:
    """An error message that starts with an option's flag, naming the environment variable instead
    when that is where the value came from (`$LFBENCH_DTYPE 'fp64': ...`)."""
    for flag, env in from_environment(args).items():
        if message.startswith((f"{flag} ", f"{flag}:")):
            return f"${env}{message[len(flag) :]}"
    return message


def positive_number(option: str, value: float | str | None, cast: type = int) -> int | float | None:
    """Parse a positive option value (None when unset), naming the option when it is not one."""
    if value is None or value == "":
        return None
    try:
        number = cast(value)
    except (TypeError, ValueError):
        kind = "an integer" if cast is int else "a number"
        raise BenchInputError(f"{option} {value!r}: not {kind}") from None
    if not number > 0:
        raise BenchInputError(f"{option} {number}: must be positive")
    return number


def positive_int(option: str, value: int | str | None) -> int | None:
    return positive_number(option, value, int)


def positive_float(option: str, value: float | str | None) -> float | None:
    return positive_number(option, value, float)

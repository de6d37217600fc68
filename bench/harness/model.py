"""Load and validate a local Longformer directory, and build the model to train from it."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import LongformerConfig, LongformerForMaskedLM

from bench.base.errors import BenchInputError

INITS = ("random", "pretrained")
# The weight files from_pretrained reads, in the order it prefers them.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# Position ids start after the padding index (RoBERTa's offset of 2), so two positions are unusable.
POSITION_OFFSET = 2


def load_config(model_dir: Path, attention_window: int | None = None) -> LongformerConfig:
    """Read config.json, insist it is a Longformer, and apply a window override to every layer."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise BenchInputError(f"--model-dir {model_dir}: directory does not exist")
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise BenchInputError(f"--model-dir {model_dir}: no config.json in it")
    try:
        raw = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BenchInputError(f"{config_path}: not valid JSON ({err})") from None
    if not isinstance(raw, dict) or raw.get("model_type") != "longformer":
        found = raw.get("model_type") if isinstance(raw, dict) else type(raw).__name__
        raise BenchInputError(
            f"{config_path}: model_type is {found!r}, not 'longformer'; "
            "this suite benchmarks Longformer checkpoints only"
        )
    config = LongformerConfig.from_pretrained(model_dir, local_files_only=True)
    windows = config.attention_window
    if isinstance(windows, int):
        windows = [windows] * config.num_hidden_layers
    if attention_window is not None:
        windows = [attention_window] * config.num_hidden_layers
    if len(windows) != config.num_hidden_layers:
        raise BenchInputError(
            f"{config_path}: attention_window has {len(windows)} entries "
            f"for {config.num_hidden_layers} layers"
        )
    for window in windows:
        if window <= 0 or window % 2:
            source = "--attention-window" if attention_window is not None else str(config_path)
            raise BenchInputError(
                f"{source}: attention window {window} must be a positive even number "
                "(each token sees window/2 tokens on each side)"
            )
    config.attention_window = list(windows)
    return config


def check_sequence_length(config: LongformerConfig, seq_len: int) -> None:
    """HF pads any other length up to a window multiple, which would time work nobody asked for."""
    window = max(config.attention_window)
    if seq_len <= 0 or seq_len % window:
        raise BenchInputError(
            f"--seq-len {seq_len}: must be a positive multiple of the attention window ({window})"
        )
    longest = config.max_position_embeddings - POSITION_OFFSET
    if seq_len > longest:
        raise BenchInputError(
            f"--seq-len {seq_len}: exceeds the model's longest sequence, "
            f"max_position_embeddings - {POSITION_OFFSET} = {longest}"
        )


def weights_file(model_dir: Path) -> Path:
    """The checkpoint file from_pretrained will read; a clear error where there is none."""
    for name in WEIGHT_FILES:
        if (Path(model_dir) / name).is_file():
            return Path(model_dir) / name
    raise BenchInputError(
        f"--init pretrained: {model_dir} holds no weights (looked for {', '.join(WEIGHT_FILES)}); "
        "use --init random to train from the config alone, as FlagPerf does"
    )


def build_model(model_dir: Path, config: LongformerConfig, init: str, seed: int) -> LongformerForMaskedLM:
    """FlagPerf trains from a seeded random init; fine-tuning starts from the shipped weights."""
    if init not in INITS:
        raise BenchInputError(f"--init {init!r}: expected one of {', '.join(INITS)}")
    if init == "random":
        torch.manual_seed(seed)
        return LongformerForMaskedLM(config)
    path = weights_file(model_dir)
    try:
        model, info = LongformerForMaskedLM.from_pretrained(
            model_dir,
            config=config,
            dtype=torch.float32,
            local_files_only=True,
            output_loading_info=True,
        )
    except (RuntimeError, OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0]
        raise BenchInputError(f"{path}: weights do not fit {model_dir / 'config.json'} ({reason})") from None
    problems = {k: v for k, v in info.items() if k != "unexpected_keys" and v}
    if problems:
        raise BenchInputError(f"{path}: weights do not fit {model_dir / 'config.json'}: {problems}")
    return model


def mask_token_id(model_dir: Path, token: str = "<mask>") -> int:
    """The id of <mask> from the directory's tokenizer files (tokenizer.json, else vocab.json)."""
    model_dir = Path(model_dir)
    tokenizer_json, vocab_json = model_dir / "tokenizer.json", model_dir / "vocab.json"
    try:
        if tokenizer_json.is_file():
            spec = json.loads(tokenizer_json.read_text())
            for added in spec.get("added_tokens", []):
                if added.get("content") == token:
                    return int(added["id"])
            if token in spec.get("model", {}).get("vocab", {}):
                return int(spec["model"]["vocab"][token])
        if vocab_json.is_file():
            vocab = json.loads(vocab_json.read_text())
            if token in vocab:
                return int(vocab[token])
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
        raise BenchInputError(f"--model-dir {model_dir}: unreadable tokenizer file ({err})") from None
    raise BenchInputError(
        f"--model-dir {model_dir}: no {token} token in tokenizer.json or vocab.json; "
        "masked-language modelling needs one"
    )


def roberta_style_config(
    vocab_size: int, hidden: int, layers: int, heads: int, ffn: int, window: int, max_len: int
) -> LongformerConfig:
    """A Longformer config with RoBERTa's special-token ids, as longformer-base-4096's is."""
    return LongformerConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=ffn,
        attention_window=[window] * layers,
        max_position_embeddings=max_len + POSITION_OFFSET,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
        sep_token_id=2,
    )

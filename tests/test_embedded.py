"""The embedded default is a real Hugging Face Longformer directory and FlagPerf-format data."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, LongformerForMaskedLM
from transformers.models.longformer.modeling_longformer import LongformerSelfAttention

from bench.harness.data import KEYS, load_dataset
from fixtures import EMBEDDED, EMBEDDED_DATA_DIR, EMBEDDED_MODEL_DIR
from fixtures.make_embedded import DATA_FILES, MODEL_FILES, generate

LOCK = Path(__file__).resolve().parents[1] / "requirements.lock"
GENERATOR_PACKAGES = ("torch", "transformers", "tokenizers", "numpy", "safetensors")


def version_mismatches() -> list[str]:
    """Packages whose installed version differs from the lock the shipped bytes were made with."""
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", LOCK.read_text(), re.M))
    out = []
    for name in GENERATOR_PACKAGES:
        installed = importlib.metadata.version(name).split("+")[0]
        if installed != pins[name]:
            out.append(f"{name} {installed} (lock: {pins[name]})")
    return out


def test_checkpoint_round_trips_through_from_pretrained():
    model = LongformerForMaskedLM.from_pretrained(EMBEDDED_MODEL_DIR, local_files_only=True)
    saved = load_file(EMBEDDED_MODEL_DIR / "model.safetensors")
    state = model.state_dict()
    for name, tensor in saved.items():
        assert torch.equal(state[name], tensor), name
    layers = [m for m in model.modules() if isinstance(m, LongformerSelfAttention)]
    assert len(layers) == model.config.num_hidden_layers
    window = max(model.config.attention_window)
    assert window % 2 == 0 and 256 % window == 0


def test_tokenizer_is_byte_level_bpe_with_roberta_specials():
    tokenizer = AutoTokenizer.from_pretrained(EMBEDDED_MODEL_DIR, local_files_only=True)
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")}
    assert ids == {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": len(tokenizer) - 1}
    encoded = tokenizer(" héllo wörld \n")["input_ids"]
    assert encoded[0] == 0 and encoded[-1] == 2  # <s> ... </s>, as FlagPerf tokenizes each line
    assert tokenizer.decode(encoded, skip_special_tokens=True) == " héllo wörld \n"  # byte-level: lossless


def test_data_is_in_flagperf_format():
    for name in DATA_FILES:
        with np.load(EMBEDDED_DATA_DIR / name) as npz:
            assert sorted(npz.files) == sorted(KEYS)
            shapes = {npz[key].shape for key in KEYS}
            assert len(shapes) == 1 and next(iter(shapes))[1] == 256
            assert npz["input_ids"].dtype == np.int32
            assert (npz["attention_mask"] == 1).all()  # FlagPerf's blocks are never padded
    splits = load_dataset(EMBEDDED_DATA_DIR, vocab_size=1253)
    first = splits["train"].input_ids[0]
    assert first[0] == 0  # a block starts at a line boundary: <s>


def test_data_tokens_match_the_tokenizer():
    tokenizer = AutoTokenizer.from_pretrained(EMBEDDED_MODEL_DIR, local_files_only=True)
    splits = load_dataset(EMBEDDED_DATA_DIR, vocab_size=len(tokenizer))
    for blocks in splits.values():
        special = np.isin(blocks.input_ids, tokenizer.all_special_ids)
        assert np.array_equal(special, blocks.special_tokens_mask.astype(bool))


def test_generator_reproduces_the_shipped_bytes(tmp_path):
    mismatches = version_mismatches()
    if mismatches:
        pytest.skip(
            "the shipped files were generated with the locked versions; here " + ", ".join(mismatches)
        )
    generate(tmp_path)
    for sub, names in (("model", MODEL_FILES), ("dataset", DATA_FILES)):
        for name in names:
            shipped = (EMBEDDED / sub / name).read_bytes()
            assert (tmp_path / sub / name).read_bytes() == shipped, f"{sub}/{name} differs"


def test_base_sized_stand_in_passes_validation(tmp_path):
    """fixtures/make_base.py: longformer-base's shape and FlagPerf's format, for full-size timing."""
    from bench.harness.options import option_defaults
    from bench.harness.spec import build_spec
    from fixtures.make_base import generate

    generate(tmp_path, train_samples=4, eval_samples=2)
    spec = build_spec(
        **{
            **option_defaults(),
            "device": "cpu",
            "model_dir": tmp_path / "model",
            "data_dir": tmp_path / "dataset",
        }
    )
    assert spec.seq_len == 1024 and spec.config.hidden_size == 768 and spec.mask_token_id == 50264
    assert spec.train.n_samples == 4 and spec.config.attention_window == [512] * 12
    ids, special = spec.train.input_ids, spec.train.special_tokens_mask.astype(bool)
    assert np.isin(ids[special], [0, 2]).all() and not np.isin(ids[~special], [0, 1, 2, 3, 50264]).any()

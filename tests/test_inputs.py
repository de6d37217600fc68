"""Every bad input gives a clear error naming the option or file, raised before any timing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.base.errors import BenchInputError
from bench.harness.data import load_dataset, load_split, reblock
from bench.harness.device import resolve_device, resolve_precision
from bench.harness.model import build_model, check_sequence_length, load_config, mask_token_id
from bench.harness.options import option_defaults
from bench.harness.spec import build_spec
from fixtures import EMBEDDED_DATA_DIR, EMBEDDED_MODEL_DIR

GOOD = {**option_defaults(), "device": "cpu"}


def spec_error(**changes) -> str:
    with pytest.raises(BenchInputError) as err:
        build_spec(**{**GOOD, **changes})
    return str(err.value)


def write_split(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.fixture
def good_arrays() -> dict[str, np.ndarray]:
    with np.load(EMBEDDED_DATA_DIR / "eval_dataset.npz") as npz:
        return {key: npz[key] for key in npz.files}


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EMBEDDED_MODEL_DIR, tmp_path / "model"))


def test_defaults_are_valid():
    spec = build_spec(**GOOD)
    assert spec.seq_len == spec.train.seq_len == 256
    assert spec.mask_token_id == spec.config.vocab_size - 1


def test_options_shape_the_run_spec():
    default = build_spec(**GOOD)
    spec = build_spec(**{**GOOD, "dtype": "bf16", "seq_len": "128", "attention_window": "64"})
    assert spec.seq_len == spec.train.seq_len == 128
    assert spec.train.n_samples == 2 * default.train.n_samples  # every token kept
    assert spec.config.attention_window == [64, 64]
    assert spec.precision.autocast_dtype is torch.bfloat16
    tuned = build_spec(**{**GOOD, "threads": "1", "peak_tflops": "400"})
    assert tuned.threads == 1 and tuned.peak_flops_per_s == 400e12


def test_missing_model_dir(tmp_path):
    assert "--model-dir" in spec_error(model_dir=tmp_path / "nope")
    assert "does not exist" in spec_error(model_dir=tmp_path / "nope")


def test_missing_config(tmp_path):
    assert "no config.json" in spec_error(model_dir=tmp_path)


def test_config_not_longformer(model_copy):
    config = json.loads((model_copy / "config.json").read_text())
    config["model_type"] = "bert"
    (model_copy / "config.json").write_text(json.dumps(config))
    message = spec_error(model_dir=model_copy)
    assert "config.json" in message and "'bert'" in message and "longformer" in message


def test_config_not_json(model_copy):
    (model_copy / "config.json").write_text("{not json")
    assert "not valid JSON" in spec_error(model_dir=model_copy)


def test_pretrained_without_weights(model_copy):
    (model_copy / "model.safetensors").unlink()
    message = spec_error(model_dir=model_copy, init="pretrained")
    assert "--init pretrained" in message and "holds no weights" in message


def test_unknown_init():
    assert "--init 'warm'" in spec_error(init="warm")


def test_missing_data_dir(tmp_path):
    assert "--data-dir" in spec_error(data_dir=tmp_path / "nope")


def test_missing_npz_file(tmp_path):
    shutil.copy(EMBEDDED_DATA_DIR / "train_dataset.npz", tmp_path)
    message = spec_error(data_dir=tmp_path)
    assert "eval_dataset.npz" in message and "does not exist" in message


def test_npz_missing_key(tmp_path, good_arrays):
    del good_arrays["special_tokens_mask"]
    path = write_split(tmp_path / "x.npz", **good_arrays)
    with pytest.raises(BenchInputError, match=r"x\.npz: missing key\(s\) special_tokens_mask"):
        load_split(path)


def test_npz_float_dtype(tmp_path, good_arrays):
    good_arrays["input_ids"] = good_arrays["input_ids"].astype(np.float32)
    path = write_split(tmp_path / "x.npz", **good_arrays)
    with pytest.raises(BenchInputError, match="input_ids has dtype float32, expected an integer"):
        load_split(path)


def test_npz_mismatched_shapes(tmp_path, good_arrays):
    good_arrays["attention_mask"] = good_arrays["attention_mask"][:, :128]
    path = write_split(tmp_path / "x.npz", **good_arrays)
    with pytest.raises(BenchInputError, match="arrays have different shapes"):
        load_split(path)


def test_npz_not_two_dimensional(tmp_path, good_arrays):
    arrays = {key: value.ravel() for key, value in good_arrays.items()}
    path = write_split(tmp_path / "x.npz", **arrays)
    with pytest.raises(BenchInputError, match=r"expected \(samples, seq_len\)"):
        load_split(path)


def test_npz_empty(tmp_path, good_arrays):
    arrays = {key: value[:0] for key, value in good_arrays.items()}
    path = write_split(tmp_path / "x.npz", **arrays)
    with pytest.raises(BenchInputError, match="holds no tokens"):
        load_split(path)


def test_npz_ids_outside_vocab(tmp_path, good_arrays):
    good_arrays["input_ids"] = good_arrays["input_ids"].copy()
    good_arrays["input_ids"][3, 7] = 1253
    path = write_split(tmp_path / "x.npz", **good_arrays)
    with pytest.raises(BenchInputError, match="id 1253, outside the model's vocabulary"):
        load_split(path, vocab_size=1253)


def test_npz_mask_not_binary(tmp_path, good_arrays):
    good_arrays["attention_mask"] = good_arrays["attention_mask"] * 2
    path = write_split(tmp_path / "x.npz", **good_arrays)
    with pytest.raises(BenchInputError, match="attention_mask holds values other than 0 and 1"):
        load_split(path)


def test_npz_not_a_zip(tmp_path):
    path = tmp_path / "x.npz"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(BenchInputError, match=r"x\.npz: not a readable npz file"):
        load_split(path)


def test_train_and_eval_lengths_differ(tmp_path, good_arrays):
    write_split(tmp_path / "train_dataset.npz", **good_arrays)
    write_split(tmp_path / "eval_dataset.npz", **{k: v.reshape(-1, 128) for k, v in good_arrays.items()})
    with pytest.raises(BenchInputError, match="train blocks are 256 tokens long, eval blocks 128"):
        load_dataset(tmp_path)


def test_seq_len_not_a_window_multiple():
    message = spec_error(seq_len="48")
    assert "--seq-len 48" in message and "multiple of the attention window (32)" in message


def test_seq_len_beyond_position_embeddings():
    config = load_config(EMBEDDED_MODEL_DIR)
    with pytest.raises(BenchInputError, match=r"--seq-len 512: .*max_position_embeddings - 2 = 256"):
        check_sequence_length(config, 512)


def test_seq_len_must_divide_blocks():
    splits = load_dataset(EMBEDDED_DATA_DIR)
    with pytest.raises(BenchInputError, match=r"--seq-len 96: .* blocks of 256 tokens"):
        reblock(splits["train"], 96)


def test_seq_len_not_an_integer():
    assert "--seq-len 'long'" in spec_error(seq_len="long")


def test_batch_size_not_positive():
    assert "--batch-size 0: must be positive" in spec_error(batch_size="0")


def test_odd_attention_window():
    assert "--attention-window" in spec_error(attention_window="33")
    assert "positive even number" in spec_error(attention_window="33")


def test_unknown_dtype():
    message = spec_error(dtype="fp8")
    assert "--dtype 'fp8'" in message and "fp32, tf32, bf16, fp16" in message


def test_threads_workers_and_peak_must_be_positive():
    assert "--threads 0: must be positive" in spec_error(threads="0")
    assert "--workers 0: must be positive" in spec_error(workers="0")
    assert "--workers 'two': not an integer" in spec_error(workers="two")
    assert "--peak-tflops 'fast': not a number" in spec_error(peak_tflops="fast")


def test_unknown_attention():
    assert "--attention 'sparse': expected one of hf, blocked, flex, dense" in spec_error(attention="sparse")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU, where flex can train")
def test_flex_attention_cannot_train_on_cpu():
    assert "--attention flex: flex_attention has no backward on the CPU" in spec_error(attention="flex")


def test_tf32_needs_cuda():
    with pytest.raises(BenchInputError, match="--dtype tf32 needs a CUDA device"):
        resolve_precision("tf32", torch.device("cpu"))


@pytest.mark.parametrize("name", ["tpu", "gpu0", "mps"])
def test_unknown_device(name):
    with pytest.raises(BenchInputError, match=f"--device {name!r}"):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU, so cuda is valid here")
def test_cuda_without_gpu():
    with pytest.raises(BenchInputError, match="--device 'cuda': CUDA is not available on this machine"):
        resolve_device("cuda")


def test_auto_device_picks_what_torch_sees():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_weights_that_do_not_fit_the_config(model_copy):
    config = json.loads((model_copy / "config.json").read_text())
    config["intermediate_size"] = 256
    (model_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(BenchInputError, match="weights do not fit"):
        build_model(model_copy, load_config(model_copy), "pretrained", seed=42)


def test_no_mask_token(model_copy):
    (model_copy / "tokenizer.json").unlink()
    vocab = json.loads((model_copy / "vocab.json").read_text())
    del vocab["<mask>"]
    (model_copy / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(BenchInputError, match="no <mask> token"):
        mask_token_id(model_copy)


def test_command_line_errors_name_what_the_user_gave(tmp_path, monkeypatch, capsys):
    """`python -m bench`: a bad value from the environment is named by its variable, a misspelt
    option gets the command's own usage, --lr and --check are checked like every other option."""
    from bench.__main__ import main

    monkeypatch.setenv("LFBENCH_BATCH_SIZE", "0")
    assert main(["train"]) == 2
    assert "error: $LFBENCH_BATCH_SIZE 0: must be positive" in capsys.readouterr().err
    assert main(["train", "--batch-size", "0"]) == 2  # given on the command line: the flag
    assert "error: --batch-size 0: must be positive" in capsys.readouterr().err
    monkeypatch.delenv("LFBENCH_BATCH_SIZE")
    assert main(["train", "--lr", "-1"]) == 2
    assert "error: --lr -1.0: must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--epochs", "1"])
    err = capsys.readouterr().err
    assert "usage: python -m bench train" in err and "unrecognized arguments: --epochs 1" in err
    assert main(["prepare", "--check", str(tmp_path / "missing")]) == 2
    err = " ".join(capsys.readouterr().err.split())  # errors wrap at 100 columns
    assert f"error: --check {tmp_path / 'missing'}: directory does not exist" in err

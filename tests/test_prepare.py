"""`python -m bench prepare` builds FlagPerf's files exactly, and refuses bad input cleanly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

import bench.harness.prepare
from bench.__main__ import main
from bench.base.errors import BenchInputError
from bench.harness.prepare import MANIFEST, check, prepare, sha256_file
from fixtures import EMBEDDED_DATA_DIR, EMBEDDED_MODEL_DIR

SAMPLE = Path(__file__).parent / "data" / "english"  # original WikiText-style English prose


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(EMBEDDED_MODEL_DIR, local_files_only=True)


def straightforward(raw: Path, tokenizer, block_len: int, group: int) -> tuple[list, list]:
    """FlagPerf's rule written out plainly: one line at a time, groups of `group` lines."""
    with open(raw, encoding="utf-8") as lines:
        rows = [line if line.strip() else "" for line in lines]
    blocks, specials = [], []
    for start in range(0, len(rows), group):
        ids: list[int] = []
        for row in rows[start : start + group]:
            ids += tokenizer(row)["input_ids"]
        for at in range(0, len(ids) - block_len + 1, block_len):
            block = ids[at : at + block_len]
            blocks.append(block)
            specials.append([int(t in tokenizer.all_special_ids) for t in block])
    return blocks, specials


@pytest.mark.parametrize("group", [1000, 7])
def test_output_equals_a_straightforward_computation(tmp_path, tokenizer, group):
    manifest = prepare(SAMPLE, EMBEDDED_MODEL_DIR, tmp_path / "out", lines_per_group=group)
    assert manifest["block_len"] == 256  # min(model_max_length 256, 1024)
    for name, raw in bench.harness.prepare.RAW_FILES.items():
        want_ids, want_special = straightforward(SAMPLE / raw, tokenizer, 256, group)
        with np.load(tmp_path / "out" / name) as npz:
            assert npz["input_ids"].tolist() == want_ids
            assert npz["special_tokens_mask"].tolist() == want_special
            assert (npz["attention_mask"] == 1).all()
            assert [npz[k].dtype for k in ("input_ids", "attention_mask", "special_tokens_mask")] == [
                np.int32,
                np.int8,
                np.int8,
            ]
        split = manifest["splits"][name]
        assert split["sha256"] == sha256_file(tmp_path / "out" / name)
        assert split["source_sha256"] == sha256_file(SAMPLE / raw)
        assert split["samples"] == len(want_ids)
    assert json.loads((tmp_path / "out" / MANIFEST).read_text()) == manifest


def test_same_input_same_bytes(tmp_path):
    prepare(SAMPLE, EMBEDDED_MODEL_DIR, tmp_path / "a")
    prepare(SAMPLE, EMBEDDED_MODEL_DIR, tmp_path / "b")
    for name in (*bench.harness.prepare.RAW_FILES, MANIFEST):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_block_len_override_and_the_result_loads(tmp_path):
    prepare(SAMPLE, EMBEDDED_MODEL_DIR, tmp_path / "out", block_len=64)
    stats = check(tmp_path / "out", EMBEDDED_MODEL_DIR)
    assert stats["train"]["seq_len"] == 64 and stats["train"]["samples"] > 0
    assert stats["train"]["id_range"][1] < stats["train"]["vocab_size"]


@pytest.fixture
def raw(tmp_path) -> Path:
    return Path(shutil.copytree(SAMPLE, tmp_path / "raw"))


def refused(
    raw_dir: Path, out: Path, message: str, tokenizer_dir: Path = EMBEDDED_MODEL_DIR, **kwargs
) -> None:
    with pytest.raises(BenchInputError, match=message):
        prepare(raw_dir, tokenizer_dir, out, **kwargs)
    assert not any(p.name.endswith(".npz") for p in out.parent.rglob("*")), "something was half-written"


def test_missing_raw_file(raw, tmp_path):
    (raw / "wiki.valid.raw").unlink()
    refused(raw, tmp_path / "out", r"wiki\.valid\.raw: file does not exist")


def test_empty_input(raw, tmp_path):
    (raw / "wiki.train.raw").write_text("\n \n\n")
    refused(raw, tmp_path / "out", r"wiki\.train\.raw: holds no text")


def test_line_that_is_not_utf8(raw, tmp_path):
    lines = (raw / "wiki.train.raw").read_bytes().split(b"\n")
    lines[4] = lines[4] + b" \xff\xfe caf\xe9"
    (raw / "wiki.train.raw").write_bytes(b"\n".join(lines))
    refused(raw, tmp_path / "out", r"wiki\.train\.raw: line 5 is not valid UTF-8")


def test_tokenizer_folder_missing_a_file(raw, tmp_path):
    tok = Path(shutil.copytree(EMBEDDED_MODEL_DIR, tmp_path / "tok"))
    (tok / "tokenizer.json").unlink()
    (tok / "merges.txt").unlink()
    refused(raw, tmp_path / "out", r"--tokenizer .*tok: missing merges\.txt", tokenizer_dir=tok)


def test_too_little_text_for_a_block_leaves_nothing(raw, tmp_path):
    (raw / "wiki.valid.raw").write_text(" A short line . \n")
    refused(raw, tmp_path / "out", r"wiki\.valid\.raw: too little text for one block of 256 tokens")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_output_folder_with_data_is_not_overwritten_unless_asked(tmp_path):
    out = tmp_path / "out"
    prepare(SAMPLE, EMBEDDED_MODEL_DIR, out, block_len=64)
    before = (out / "train_dataset.npz").read_bytes()
    with pytest.raises(BenchInputError, match=r"already holds train_dataset\.npz.*--overwrite"):
        prepare(SAMPLE, EMBEDDED_MODEL_DIR, out)
    assert (out / "train_dataset.npz").read_bytes() == before
    prepare(SAMPLE, EMBEDDED_MODEL_DIR, out, overwrite=True)
    assert (out / "train_dataset.npz").read_bytes() != before


def test_check_rejects_ragged_rows(tmp_path):
    shutil.copy(EMBEDDED_DATA_DIR / "eval_dataset.npz", tmp_path)
    ragged = np.array([[1, 2, 3], [4, 5]], dtype=object)
    np.savez(
        tmp_path / "train_dataset.npz", input_ids=ragged, attention_mask=ragged, special_tokens_mask=ragged
    )
    with pytest.raises(BenchInputError, match=r"train_dataset\.npz: holds a ragged \(object\) array"):
        check(tmp_path)


def test_check_against_a_smaller_vocabulary(tmp_path):
    model = Path(shutil.copytree(EMBEDDED_MODEL_DIR, tmp_path / "model"))
    config = json.loads((model / "config.json").read_text())
    config["vocab_size"] = 100
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(BenchInputError, match=r"outside the model's vocabulary \(vocab_size 100\)"):
        check(EMBEDDED_DATA_DIR, model)


def test_command_line_check_and_usage_errors(capsys, tmp_path):
    assert main(["prepare", "--check", str(EMBEDDED_DATA_DIR), "--model-dir", str(EMBEDDED_MODEL_DIR)]) == 0
    out = capsys.readouterr().out
    assert '"samples": 255' in out and '"special_token_share"' in out
    assert main(["prepare", "--raw", str(SAMPLE)]) == 2
    assert "prepare needs --tokenizer, --out" in capsys.readouterr().err
    assert main(["prepare", "--check", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "none: directory does not exist" in " ".join(err.split())  # errors wrap at 100 columns
    assert max(len(line) for line in err.splitlines()) <= 100


def test_rows_longer_than_the_model_are_tokenized_without_a_warning(tokenizer):
    """They are cut into blocks afterwards, so transformers' "Token indices sequence length is
    longer than the specified maximum" would only alarm the user."""
    import logging

    from bench.harness.prepare import tokenize_split

    rows = ["a line of prose " * 200, "a short line"]  # the first is longer than model_max_length
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        blocks = tokenize_split(rows, tokenizer, 256, "train", lines_per_group=1)
    finally:
        logger.removeHandler(handler)
    assert blocks["input_ids"].shape[0] >= 3  # the long row became blocks
    assert not [r for r in records if "Token indices sequence length" in r.getMessage()]

"""The on-device masking has DataCollatorForLanguageModeling's semantics and is reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, DataCollatorForLanguageModeling

from bench.harness.data import load_split, to_device
from bench.harness.masking import IGNORE_INDEX, MLMMasker
from bench.harness.model import mask_token_id
from fixtures import EMBEDDED_DATA_DIR, EMBEDDED_MODEL_DIR

DRAWS = 40
TOLERANCE = 0.006  # about 5 standard errors of each fraction over DRAWS draws of the eval set


@pytest.fixture(scope="module")
def blocks():
    return to_device(load_split(EMBEDDED_DATA_DIR / "eval_dataset.npz"), torch.device("cpu"))


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(EMBEDDED_MODEL_DIR, local_files_only=True)


def make_masker(tokenizer, device: torch.device, seed: int = 42) -> MLMMasker:
    return MLMMasker(mask_token_id(EMBEDDED_MODEL_DIR), len(tokenizer), device, seed)


def fractions(ids, special, masked, labels, mask_id) -> dict[str, float]:
    """What a collator did to one batch: selection rate and the 80/10/10 split of the selected."""
    selected = labels != IGNORE_INDEX
    n_selected = selected.sum().item()
    return {
        "selected": n_selected / (~special).sum().item(),
        "masked": ((masked == mask_id) & selected).sum().item() / n_selected,
        "changed": ((masked != mask_id) & (masked != ids) & selected).sum().item() / n_selected,
        "kept": ((masked == ids) & selected).sum().item() / n_selected,
    }


def mean_fractions(draw, ids, special, mask_id) -> dict[str, float]:
    rows = [fractions(ids, special, *draw(), mask_id) for _ in range(DRAWS)]
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}


def test_statistics_match_hf_collator(blocks, tokenizer):
    ids, special = blocks.input_ids, blocks.special_tokens_mask
    mask_id = tokenizer.mask_token_id
    masker = make_masker(tokenizer, ids.device)
    ours = mean_fractions(lambda: masker(ids, special), ids, special, mask_id)

    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, return_tensors="pt")
    torch.manual_seed(0)
    examples = [
        {"input_ids": row, "special_tokens_mask": s} for row, s in zip(ids, special.long(), strict=True)
    ]

    def hf_draw():
        batch = collator(examples)
        return batch["input_ids"], batch["labels"]

    theirs = mean_fractions(hf_draw, ids, special, mask_id)
    vocab = len(tokenizer)
    expected = {"selected": 0.15, "masked": 0.8, "changed": 0.1 * (1 - 1 / vocab), "kept": 0.1 + 0.1 / vocab}
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, abs=TOLERANCE), (key, ours)
        assert ours[key] == pytest.approx(theirs[key], abs=TOLERANCE), (key, ours, theirs)


def test_special_tokens_never_selected_and_labels_right(blocks, tokenizer):
    ids, special = blocks.input_ids, blocks.special_tokens_mask
    masker = make_masker(tokenizer, ids.device)
    for _ in range(5):
        masked, labels = masker(ids, special)
        selected = labels != IGNORE_INDEX
        assert not (selected & special).any()
        assert torch.equal(labels[selected], ids[selected])
        assert torch.equal(masked[~selected], ids[~selected])
        assert masked.dtype == ids.dtype and masked.shape == ids.shape
        assert int(masked.min()) >= 0 and int(masked.max()) < len(tokenizer)


def test_inputs_are_not_modified(blocks, tokenizer):
    ids = blocks.input_ids.clone()
    make_masker(tokenizer, ids.device)(blocks.input_ids, blocks.special_tokens_mask)
    assert torch.equal(ids, blocks.input_ids)


def test_same_seed_same_masks_other_seed_other_masks(blocks, tokenizer):
    ids, special = blocks.input_ids, blocks.special_tokens_mask
    first = [make_masker(tokenizer, ids.device, seed=7)(ids, special) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(*first, strict=True))
    other = make_masker(tokenizer, ids.device, seed=8)(ids, special)
    assert not torch.equal(first[0][1], other[1])


def test_successive_draws_differ(blocks, tokenizer):
    masker = make_masker(tokenizer, blocks.input_ids.device)
    _, first = masker(blocks.input_ids, blocks.special_tokens_mask)
    _, second = masker(blocks.input_ids, blocks.special_tokens_mask)
    assert not torch.equal(first, second)


@pytest.mark.parametrize("kwargs", [{"mlm_probability": 0.0}, {"mask_replace_prob": 0.95}])
def test_rejects_impossible_probabilities(kwargs):
    with pytest.raises(ValueError):
        MLMMasker(4, 10, torch.device("cpu"), 0, **kwargs)


@pytest.mark.gpu
def test_masking_on_cuda_has_the_same_statistics(blocks, tokenizer):
    device = torch.device("cuda")
    ids, special = blocks.input_ids.to(device), blocks.special_tokens_mask.to(device)
    masker = make_masker(tokenizer, device)
    got = mean_fractions(lambda: masker(ids, special), ids, special, tokenizer.mask_token_id)
    assert got["selected"] == pytest.approx(0.15, abs=TOLERANCE)
    assert got["masked"] == pytest.approx(0.8, abs=TOLERANCE)

"""torchrun with 2 CPU processes (gloo) trains like one process on the same global batch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures import EMBEDDED_MODEL_DIR

ROOT = Path(__file__).resolve().parents[1]
LOSS_TOLERANCE = 1e-3  # relative; DDP averages per-rank mean losses, one process the global mean
STEPS = 5


def no_dropout_model(tmp_path: Path) -> Path:
    """Dropout draws differ between one process and two; without it the runs are comparable."""
    model_dir = Path(shutil.copytree(EMBEDDED_MODEL_DIR, tmp_path / "model"))
    config = json.loads((model_dir / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (model_dir / "config.json").write_text(json.dumps(config))
    return model_dir


def train(launcher: list[str], model_dir: Path, batch: int, record: Path) -> dict:
    args = ["--device", "cpu", "--model-dir", str(model_dir), "--batch-size", str(batch)]
    args += ["--max-steps", str(STEPS), "--lr", "1e-3", "--record", str(record)]
    result = subprocess.run(
        [*launcher, "-m", "bench", "train", *args],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = record.read_text().splitlines()
    assert len(lines) == 1, f"{len(lines)} records written; only rank 0 may write"
    return json.loads(lines[0])


@pytest.mark.distributed
def test_two_cpu_ranks_match_one_process_on_the_same_global_batch(tmp_path):
    model_dir = no_dropout_model(tmp_path)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    ddp = train(torchrun, model_dir, batch=4, record=tmp_path / "ddp.jsonl")
    single = train([sys.executable], model_dir, batch=8, record=tmp_path / "single.jsonl")

    assert ddp["finished"] and single["finished"]
    assert ddp["world_size"] == 2 and ddp["global_batch"] == single["global_batch"] == 8
    assert ddp["params_in_sync"]
    assert ddp["samples"] == single["samples"] == STEPS * 8
    assert ddp["p_core"] > 0 and ddp["p_train"] > 0 and ddp["p_whole"] > 0
    # The same rows and the same masks on both sides: evaluation covers the same masked positions.
    assert ddp["eval_masked_positions"] == single["eval_masked_positions"]
    ddp_losses, single_losses = ddp["epochs"][0]["losses"], single["epochs"][0]["losses"]
    assert len(ddp_losses) == len(single_losses) == STEPS
    assert single_losses[-1] < single_losses[0]  # it trains
    for a, b in zip(ddp_losses, single_losses, strict=True):
        assert a == pytest.approx(b, rel=LOSS_TOLERANCE)

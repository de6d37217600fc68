"""scripts/gpu_check.sh --cpu: every stage selects what it should, and the summary is written.

The GPU script's -m/-k selections and its summary are what no CPU test ran before its first GPU run.
Here the script runs in its CPU mode (about 80 s of CPU: six pytest sessions each import torch; five
only collect their selection, epoch-fp32 runs at batch 2 x 128 tokens in one worker so that the
figures step reads a real JSON), and once more with one stage's selection emptied (about 10 s).
The selections are listed exactly: a test added to a stage's selection changes the stage's time on
the GPU, so this test fails until the stage's limit (reasoned in the script's comment) is revisited.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"
ATTENTION = "bench/benchmarks/test_attention_step.py::"
STEPS = "bench/benchmarks/test_train_step.py::"
SLICE = "bench/benchmarks/test_epoch_throughput.py::test_epoch_slice_throughput"
SELECTED = {
    "gpu-tests": [
        "tests/test_attention.py::test_implementations_match_hf_on_cuda[blocked]",
        "tests/test_attention.py::test_implementations_match_hf_on_cuda[flex]",
        "tests/test_fixtures.py::test_cuda_fixtures_place_everything_on_the_gpu",
        "tests/test_masking.py::test_masking_on_cuda_has_the_same_statistics",
    ],
    "attention-bf16": [
        *(
            f"{ATTENTION}test_attention_step_gpu[w512-L4096-b1-{implementation}-{passes}]"
            for implementation in ("hf", "blocked", "flex", "dense")
            for passes in ("forward", "forward_backward")
        ),
        f"{ATTENTION}test_attention_speedup_at_base_dims[blocked]",
        f"{ATTENTION}test_attention_speedup_at_base_dims[flex]",
    ],
    "attention-fp32": [f"{ATTENTION}test_attention_speedup_at_base_dims[blocked]"],
    "epoch-bf16": [SLICE, f"{STEPS}test_train_step_fast"],
    "convergence": [
        "bench/benchmarks/test_convergence.py::test_convergence",
        "bench/benchmarks/test_convergence.py::test_embedded_convergence_is_deterministic",
    ],
    "compiled-bf16": [f"{STEPS}test_train_step_fast"],
}
RUN = "epoch-fp32"  # the stage the CPU mode runs: its benchmarks, by name, in its JSON
RUN_BENCHMARKS = ["test_epoch_slice_throughput", "test_train_step_fast", "test_train_step[blocked]"]
STAGES = [
    "gpu-tests",
    "attention-bf16",
    "attention-fp32",
    "epoch-fp32",
    "epoch-bf16",
    "convergence",
    "compiled-bf16",
]


def gpu_check(out: Path, *args: str) -> subprocess.CompletedProcess:
    """The script, with this interpreter and none of the suite's options from the environment."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LFBENCH_")}
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        cwd=ROOT,
        env={**env, "OUT": str(out), "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=900,
    )


def collected(log: str) -> dict[str, list[str]]:
    """Each stage's listed test ids, by the `===== NAME` line that starts its part of log.txt."""
    stages: dict[str, list[str]] = {}
    for part in re.split(r"^===== ", log, flags=re.MULTILINE)[1:]:
        name, _, body = part.partition(" ")
        stages[name] = re.findall(r"^(\S+::\S+)$", body, flags=re.MULTILINE)
    return stages


def test_cpu_mode_runs_every_stage_and_writes_the_summary(tmp_path):
    result = gpu_check(tmp_path, "--cpu")
    summary = (tmp_path / "summary.txt").read_text()
    assert result.returncode == 0, summary + (tmp_path / "log.txt").read_text()[-3000:]
    exits = re.findall(r"^(\S+): exit (\d+) in \d+ s \(limit 300 s\)$", summary, flags=re.MULTILINE)
    assert exits == [(stage, "0") for stage in STAGES]
    stages = collected((tmp_path / "log.txt").read_text())
    assert {name: ids for name, ids in stages.items() if name != RUN} == SELECTED
    assert stages[RUN] == []  # it ran: -q lists no ids
    run = json.loads((tmp_path / f"{RUN}.json").read_text())
    assert [b["name"] for b in run["benchmarks"]] == RUN_BENCHMARKS
    for name in RUN_BENCHMARKS:  # the figures step: each benchmark's median, then its figures
        assert re.search(rf"^  {re.escape(name)}: median \d+\.\d{{6}} s$", summary, flags=re.MULTILINE)
        assert re.search(rf"^  {re.escape(name)}$", summary, flags=re.MULTILINE)
    assert "p_whole" in summary and "samples/s" in summary
    assert summary.splitlines()[-1].endswith("stages that did not exit 0: none")
    assert max(len(line) for line in summary.splitlines()) <= 100


def test_a_selection_that_selects_nothing_fails_the_check(tmp_path):
    result = gpu_check(tmp_path, "--cpu", "--stages", "convergence", "--", "-k", "no_such_test")
    summary = (tmp_path / "summary.txt").read_text()
    assert result.returncode == 1, summary
    stage_lines = [line for line in summary.splitlines() if ": exit " in line]
    assert len(stage_lines) == 1
    assert re.fullmatch(
        r"convergence: exit 5 in \d+ s \(limit 300 s\): its selection selected no test", stage_lines[0]
    )
    assert summary.splitlines()[-1].endswith("stages that did not exit 0: convergence")


def test_the_limits_fit_nine_minutes_and_a_half_by_construction():
    """The stages' own limits and the setup before them (about 20 s: the script's comment) stay
    under 9 min 30 s, inside the device tool's 10 a command, so the summary is always written."""
    script = SCRIPT.read_text()
    limits = [int(n) for n in re.findall(r"^stage \S+ (\d+) ", script, flags=re.MULTILINE)]
    assert len(limits) == len(STAGES) and 20 + sum(limits) < 9 * 60 + 30, limits
    assert "timeout -s INT" in script  # pytest, interrupted, still writes what finished


@pytest.mark.parametrize(
    "args, problem",
    [
        (["--bogus"], "unknown option --bogus"),
        (["--stages"], "--stages needs a list of stages"),
        (["--stages", "epoch-fp32,epoch"], f"--stages: no stage epoch; the stages: {','.join(STAGES)}"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(tmp_path, args, problem):
    result = gpu_check(tmp_path, *args)
    assert result.returncode == 2
    assert result.stderr == f"gpu_check.sh: {problem} (options: --cpu, --stages NAME,..., -- PYTEST_ARGS)\n"
    assert not (tmp_path / "summary.txt").exists()

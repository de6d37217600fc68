"""`python -m bench runs`: the saved runs by series, as --latest and --baseline name them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.base.history import Run

FINGERPRINT = {
    "device": "cpu",
    "cpu_model": "Test CPU",
    "torch_threads": 2,
    "dtype": "fp32",
    "torch": "2.13.0",
    "transformers": "5.24.0",
    "run": {"attention": "hf", "batch_size": 16, "seq_len": 256},
}


def save(results: Path, number: int, machine: dict, benchmarks: int = 2, commit: str | None = None) -> None:
    folder = results / f"cpu-Test_CPU-2t-{machine['dtype']}-0123abcd"
    folder.mkdir(parents=True, exist_ok=True)
    run = {
        "machine_info": {"longformer_bench": machine, "python_version": "3.11.7"},
        "datetime": f"2026-11-28T10:{number:02d}:00",
        "benchmarks": [{"fullname": f"b.py::test_{i}", "name": f"test_{i}"} for i in range(benchmarks)],
    }
    if commit:
        run["commit_info"] = {"id": commit * 40, "dirty": number == 2}
    (folder / f"{number:04d}_{commit or 'x'}_20261128_uncommitted-changes.json").write_text(json.dumps(run))


def history(results: Path) -> None:
    """fp32: runs 1 and 2 on torch 2.13.0, run 4 (of one benchmark) on 2.14.0; bf16: run 3."""
    save(results, 1, FINGERPRINT, commit="a")
    save(results, 2, FINGERPRINT, commit="b")
    save(results, 3, {**FINGERPRINT, "dtype": "bf16"}, commit="b")
    save(results, 4, {**FINGERPRINT, "torch": "2.14.0"}, benchmarks=1)


def test_runs_are_listed_by_series_with_their_stacks_by_letter(tmp_path, capsys):
    history(tmp_path)
    assert main(["runs", "--results", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "series: cpu Test CPU; 2 threads; fp32; attention hf; batch 16 x 256 tokens",
        "  3 runs in cpu-Test_CPU-2t-fp32-0123abcd",
        "  run  when              commit            benchmarks  stack",
        "  #1   2026-11-28 10:01  aaaaaaaaaa        2           A",
        "  #2   2026-11-28 10:02  bbbbbbbbbb+dirty  2           A",
        "  #4   2026-11-28 10:04  -                 1           B",
        "  stack A: python 3.11.7, torch 2.13.0, transformers 5.24.0",
        "  stack B: python 3.11.7, torch 2.14.0, transformers 5.24.0",
        "",
        "series: cpu Test CPU; 2 threads; bf16; attention hf; batch 16 x 256 tokens",
        "  1 run in cpu-Test_CPU-2t-bf16-0123abcd",
        "  run  when              commit      benchmarks  stack",
        "  #3   2026-11-28 10:03  bbbbbbbbbb  2           A",
        "  stack A: python 3.11.7, torch 2.13.0, transformers 5.24.0",
    ]


def test_a_partial_run_is_marked_where_history_records_it(tmp_path, capsys, monkeypatch):
    """`partial` is read from the Run where it has the property (a `-k` selection's run)."""
    history(tmp_path)
    monkeypatch.setattr(Run, "partial", property(lambda run: run.path.name.startswith("0004")), raising=False)
    assert main(["runs", "--results", str(tmp_path), "--series", "FP32"]) == 0
    out = capsys.readouterr().out
    assert "  #4   2026-11-28 10:04  -                 1 partial   B" in out.splitlines()
    assert "bf16" not in out  # the other series left out
    assert main(["runs", "--results", str(tmp_path), "--json"]) == 0
    fp32, bf16 = json.loads(capsys.readouterr().out)
    assert [r["partial"] for r in fp32["runs"]] == [False, False, True]
    assert fp32["runs"][0]["name"] == "cpu-Test_CPU-2t-fp32-0123abcd/0001_a_20261128_uncommitted-changes.json"
    assert bf16["configuration"] == "cpu Test CPU; 2 threads; bf16; attention hf; batch 16 x 256 tokens"
    assert [r["number"] for r in bf16["runs"]] == [3] and bf16["runs"][0]["benchmarks"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--series", "fp64"], "error: --series fp64: matches none of the 2 series saved under {tmp}"),
        (["--results", "{tmp}/cpu"], "error: --results {tmp}/cpu: no saved runs (NNNN_*.json in a folder"),
    ],
    ids=["series", "results"],
)
def test_a_filter_or_folder_that_matches_nothing_is_an_error(tmp_path, capsys, args, message):
    history(tmp_path)
    (tmp_path / "cpu" / "empty").mkdir(parents=True)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["runs", "--results", str(tmp_path), *args]) == 2
    assert message.replace("{tmp}", str(tmp_path)) in " ".join(capsys.readouterr().err.split())


def test_a_series_is_said_in_words_from_every_key_of_its_fingerprint():
    """The GPU and the host it sits in, and any key the words do not know, as `key value`: two
    series never read the same; the software (which labels runs, not series) is left out."""
    from bench.verdicts.notation import describe_series

    gpu = {
        **FINGERPRINT,
        "device": "cuda",
        "gpu_name": "NVIDIA H200",
        "gpu_count": 8,
        "gpu_driver": "550.54",
        "cpu_count": 16,
        "worker_threads": 1,
        "dtype": "bf16",
        "run": {
            **FINGERPRINT["run"],
            "model": {"layers": 12, "hidden_size": 768, "new_key": 1},
            "workers": 3,
        },
        "future": "x",
    }
    assert describe_series(gpu) == (
        "cuda 8 x NVIDIA H200 on Test CPU (16 CPUs); 2 threads, 1 a worker; bf16; model 12 layers, "
        "hidden 768, new_key 1; attention hf; batch 16 x 256 tokens; 3 workers; future x"
    )
    assert describe_series({}) == ""

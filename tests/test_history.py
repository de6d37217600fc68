"""Saved runs land in their series' folder, whole or not at all, and never over each other; a series
is the hardware and run configuration, software versions label its runs."""

from __future__ import annotations

import json
import os
import threading
from types import SimpleNamespace

import pytest

from bench.base.history import (
    SELECTION_KEY,
    Run,
    by_series,
    label_changes,
    load_runs,
    series_folder,
    series_id,
    write_new_file,
)
from fixtures.storage import SeriesStorage, selection

FINGERPRINT = {
    "device": "cuda",
    "gpu_name": "NVIDIA H100 80GB HBM3",
    "cpu_model": "AMD EPYC 9654",
    "torch_threads": 16,
    "torch": "2.11.0+cu128",
    "dtype": "bf16",
}


def test_folder_name_is_readable_safe_and_keyed_by_the_series():
    name = series_folder(FINGERPRINT)
    assert name == f"cuda-NVIDIA_H100_80GB_HBM3-16t-bf16-{series_id(FINGERPRINT)[:8]}"
    assert series_folder({**FINGERPRINT, "dtype": "fp32"}) != name
    model = {"run": {"model": {"hidden_size": 768, "layers": 12}, "batch_size": 16}}
    assert series_folder({**FINGERPRINT, **model}) != name  # the model's shape: another series


def test_software_versions_label_a_series_instead_of_splitting_it(tmp_path):
    upgraded = {**FINGERPRINT, "torch": "2.12.0+cu128", "transformers": "5.30.0", "gpu_driver": "580.1"}
    assert series_id(upgraded) == series_id(FINGERPRINT)
    assert series_id({**FINGERPRINT, "gpu_count": 8}) != series_id(FINGERPRINT)
    before = Run(tmp_path / "old-folder" / "0001_a.json", saved_run(FINGERPRINT, "a" * 40, "2026-11-01"))
    after = Run(tmp_path / "new-folder" / "0001_b.json", saved_run(upgraded, "b" * 40, "2026-11-02"))
    foreign = Run(tmp_path / "plain" / "0001_c.json", {"benchmarks": [], "datetime": "2026-11-03"})
    # runs saved under an older per-stack folder join their series by their own fingerprint
    assert list(by_series([before, after, foreign]).values()) == [[before, after], [foreign]]
    assert label_changes(before, after) == [
        f"commit {'a' * 10} -> {'b' * 10}",
        "torch 2.11.0+cu128 -> 2.12.0+cu128",
        "transformers None -> 5.30.0",
        "gpu_driver None -> 580.1",
    ]


def saved_run(fingerprint: dict, commit: str, day: str) -> dict:
    return {
        "machine_info": {"longformer_bench": fingerprint},
        "commit_info": {"id": commit},
        "datetime": f"{day}T10:00:00",
        "benchmarks": [],
    }


def test_concurrent_writers_never_overwrite_each_other(tmp_path):
    payloads = [json.dumps({"writer": i}).encode() for i in range(8)]
    start = threading.Barrier(len(payloads))

    def write(payload: bytes) -> None:
        start.wait()
        write_new_file(tmp_path, lambda n: f"{n:04d}_run.json", payload)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == [f"{n:04d}_run.json" for n in range(1, 9)]
    assert sorted(json.loads(f.read_text())["writer"] for f in files) == list(range(8))


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def broken_link(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "link", broken_link)
    with pytest.raises(OSError, match="disk full"):
        write_new_file(tmp_path, lambda n: f"{n:04d}_run.json", b"{}")
    assert list(tmp_path.iterdir()) == []


def test_numbers_continue_after_existing_runs(tmp_path):
    (tmp_path / "0007_old.json").write_text("{}")
    path = write_new_file(tmp_path, lambda n: f"{n:04d}_new.json", b"{}")
    assert path.name == "0008_new.json"


def session_config(tmp_path, *args: str, keyword: str = "", deselect=None, markers: str = "fast"):
    """What fixtures.storage.selection reads of a pytest config, for a session started in tmp_path."""
    (tmp_path / "bench" / "benchmarks").mkdir(parents=True, exist_ok=True)
    return SimpleNamespace(
        rootpath=tmp_path,
        invocation_params=SimpleNamespace(dir=tmp_path),
        args=list(args) or ["tests", "bench/benchmarks"],
        option=SimpleNamespace(keyword=keyword, deselect=deselect, lf=False, markexpr=markers),
    )


@pytest.mark.parametrize(
    ("args", "options", "partial"),
    [
        ((), {}, False),  # the testpaths: the profile whole
        ((".",), {}, False),
        (("bench",), {"markers": "pr"}, False),  # another profile, whole
        ((), {"keyword": "hf"}, True),
        ((), {"deselect": ["bench/benchmarks/test_x.py::test_y"]}, True),
        (("bench/benchmarks/test_train_step.py",), {}, True),
        (("bench/benchmarks/test_train_step.py::test_train_step_fast",), {}, True),
        (("tests",), {}, True),
    ],
)
def test_a_partial_selection_is_told_from_the_whole_profile(tmp_path, args, options, partial):
    chosen = selection(session_config(tmp_path, *args, **options))
    assert chosen["partial"] is partial
    assert chosen["markers"] == options.get("markers", "fast")


def test_a_partial_run_is_saved_apart_and_marked(tmp_path):
    """pytest-benchmark's --benchmark-compare reads the series folder alone: a -k run there would
    become the "latest" a full run is compared with."""
    storage = SeriesStorage(tmp_path, logger=SimpleNamespace(info=print), default_machine_id="cpu-x")
    storage.partial = True
    storage.save({"benchmarks": [], SELECTION_KEY: {"partial": True}}, "run")
    storage.partial = False
    storage.save({"benchmarks": []}, "run")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.json")) == [
        "cpu-x-partial/0001_run.json",
        "cpu-x/0001_run.json",
    ]
    assert [p.name for p in storage.query("[0-9][0-9][0-9][0-9]_*")] == [
        "0001_run.json"
    ]  # --benchmark-compare's
    assert [run.partial for run in load_runs(tmp_path, print)] == [True, False]

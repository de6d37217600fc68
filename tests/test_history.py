"""Saved runs land in a fingerprint folder, whole or not at all, and never over each other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bench.history import fingerprint_folder, write_new_file

FINGERPRINT = {
    "device": "cuda",
    "gpu_name": "NVIDIA H100 80GB HBM3",
    "cpu_model": "AMD EPYC 9654",
    "torch_threads": 16,
    "torch": "2.11.0+cu128",
    "dtype": "bf16",
}


def test_folder_name_is_readable_safe_and_keyed_by_the_digest():
    name = fingerprint_folder(FINGERPRINT, "0123456789abcdef")
    assert name == "cuda-NVIDIA_H100_80GB_HBM3-16t-torch2.11.0+cu128-bf16-01234567"
    assert fingerprint_folder({**FINGERPRINT, "dtype": "fp32"}, "fedcba9876543210") != name


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


def test_pytest_benchmark_compare_reads_the_folder_and_skips_a_truncated_file(tmp_path):
    """A saved run plus a truncated one: pytest-benchmark's own command warns and goes on."""
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-m",
            "fast",
            "-k",
            "train_step and hf",
            "--benchmark-autosave",
            f"--benchmark-storage={tmp_path}",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert folder.name.startswith("cpu-") or folder.name.startswith("cuda-")
    (saved,) = folder.glob("0001_*.json")
    (folder / "0002_truncated.json").write_text(saved.read_text()[:200])
    compare = subprocess.run(
        [sys.executable, "-m", "pytest_benchmark", "--storage", str(tmp_path), "compare", "--columns=median"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert compare.returncode == 0, compare.stdout + compare.stderr
    assert "test_train_step[hf]" in compare.stdout
    assert (
        "Failed to load" in compare.stdout + compare.stderr
        and "0002_truncated.json" in compare.stdout + compare.stderr
    )

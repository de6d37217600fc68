"""Saved runs land in a fingerprint folder, whole or not at all, and never over each other."""

from __future__ import annotations

import json
import os
import threading

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

"""The saved history: one folder per hardware/software fingerprint, files that are never half-written.

No torch import here: reading and writing history must stay fast and work anywhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path


def fingerprint_folder(fingerprint: dict, digest: str) -> str:
    """A readable, filesystem-safe folder name that still changes with anything in the fingerprint."""
    hardware = fingerprint.get("gpu_name") or fingerprint.get("cpu_model") or "unknown"
    parts = [
        fingerprint.get("device", "cpu"),
        hardware,
        f"{fingerprint.get('torch_threads')}t",
        f"w{fingerprint['worker_threads']}t" if fingerprint.get("worker_threads") else "",
        f"torch{fingerprint.get('torch')}",
        fingerprint.get("dtype", ""),
        digest[:8],
    ]
    name = "-".join(str(part) for part in parts if part)
    return re.sub(r"[^A-Za-z0-9.+_-]+", "_", name)


@contextlib.contextmanager
def temporary_copy(tmp: Path, payload: bytes) -> Iterator[Path]:
    """`payload` in the file `tmp`, on disk; `tmp` is gone on exit (moved, linked or abandoned)."""
    try:
        with open(tmp, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def replace_atomically(path: Path, payload: bytes) -> None:
    """Write `path` whole or not at all: a temporary file beside it, then an atomic rename."""
    path = Path(path)
    with temporary_copy(path.with_name(f".{path.name}.tmp-{os.getpid()}"), payload) as tmp:
        os.replace(tmp, path)


def write_new_file(folder: Path, name_for: Callable[[int], str], payload: bytes) -> Path:
    """Write `payload` under the first free name `name_for(n)`, n = 1, 2, ..., atomically.

    The bytes go to a temporary file first and are linked into place only when complete; the link
    fails if another writer took the name meanwhile, and the next number is tried. So a crash leaves
    no partial file and two runs saving at once never overwrite each other.
    """
    folder.mkdir(parents=True, exist_ok=True)
    taken = [int(m.group(1)) for p in folder.iterdir() if (m := re.match(r"(\d+)_", p.name))]
    number = max(taken, default=0) + 1
    with temporary_copy(folder / f".tmp-{os.getpid()}-{id(payload)}", payload) as tmp:
        while True:
            target = folder / name_for(number)
            try:
                os.link(tmp, target)
                return target
            except FileExistsError:
                number += 1


RUN_FILE = re.compile(r"^(\d{4})_.*\.json$")


def read_runs(folder: Path, warn: Callable[[str], None]) -> list[tuple[str, dict]]:
    """The saved runs of one fingerprint folder, oldest first, as (file name, parsed JSON).

    A truncated or malformed file is skipped, and `warn` is told its name and what is wrong.
    """
    runs = []
    for path in sorted(p for p in folder.iterdir() if RUN_FILE.match(p.name)):
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(run.get("benchmarks"), list):
                raise ValueError("no 'benchmarks' list")
        except (OSError, ValueError, AttributeError) as err:
            warn(f"skipped {path}: {err}")
            continue
        runs.append((path.name, run))
    return runs

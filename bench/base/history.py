"""The saved history: runs, the series each belongs to, the labels on them; files never half-written.

A series is one hardware and run configuration (device, CPU/GPU model and count, threads, dtype, the
model's shape, batch, sequence length: everything in the fingerprint but the software). The software
stack (torch, transformers, CUDA, cuDNN, driver) and the commit label the runs of a series instead of
splitting it, so that an upgrade is judged like any other change. New runs are saved in one folder per
series; the series of a saved run is read from its own fingerprint, never from its folder's name, so
runs saved under the older per-stack folders join their series where they lie (nothing is moved).

Within a series, one benchmark's rows are compared only where they measured the same work
(`WORK_KEYS`: a fast plan's batch or slice, the rounds a process timed), and a run of a partial
selection (`-k`, named tests) is marked so in what it saves (`SELECTION_KEY`) and saved apart, in
`<series folder>-partial`, so that neither `compare` nor pytest-benchmark's --benchmark-compare takes
it for the baseline of a full run.

No torch import here: reading and writing history must stay fast and work anywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.base.errors import BenchInputError

# What labels the runs of a series rather than splitting it.
SOFTWARE_KEYS = ("torch", "transformers", "cuda", "cudnn", "gpu_driver")

# What a benchmark's extra_info says of the work one value measured: two rows of one benchmark
# compare only where these agree (the fast plans size the training step's batch and the epoch
# slice; the sampler records the rounds). A key one side did not record is not compared.
WORK_KEYS = (
    "batch_size",
    "batch",
    "seq_len",
    "window",
    "max_samples",
    "eval_samples",
    "rounds_per_worker",
    "warmup_rounds_per_worker",
)

# The top-level key of a saved run that says what was selected (conftest.py writes it), and the
# suffix of the folder partial runs are saved in beside their series' folder.
SELECTION_KEY = "longformer_bench_selection"
PARTIAL_SUFFIX = "-partial"


def series_config(fingerprint: dict) -> dict:
    """The hardware and run configuration: the fingerprint without the software versions."""
    return {key: value for key, value in fingerprint.items() if key not in SOFTWARE_KEYS}


def digest(value: dict) -> str:
    """A short stable digest of a JSON-able dict (its keys sorted): equal digests, equal dicts."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def series_id(fingerprint: dict) -> str:
    """The digest of the series configuration: equal ids, one series."""
    return digest(series_config(fingerprint))


def series_folder(fingerprint: dict) -> str:
    """A readable, filesystem-safe folder name that still changes with anything in the series."""
    hardware = fingerprint.get("gpu_name") or fingerprint.get("cpu_model") or "unknown"
    parts = [
        fingerprint.get("device", "cpu"),
        hardware,
        f"{fingerprint.get('torch_threads')}t",
        f"w{fingerprint['worker_threads']}t" if fingerprint.get("worker_threads") else "",
        fingerprint.get("dtype", ""),
        series_id(fingerprint)[:8],
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
    """The saved runs in one folder, oldest first, as (file name, parsed JSON).

    A truncated or malformed file is skipped, and `warn` is told its name and what is wrong.
    """
    runs = []
    for path in sorted(p for p in folder.iterdir() if RUN_FILE.match(p.name)):
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(run.get("benchmarks"), list):
                raise ValueError("no 'benchmarks' list")
        except (OSError, ValueError, AttributeError) as err:
            warn(f"skipped {folder.name}/{path.name}: {err}")
            continue
        runs.append((path.name, run))
    return runs


@dataclass(frozen=True)
class Run:
    """One saved run (pytest-benchmark's JSON) and what history knows of it."""

    path: Path
    saved: dict

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"

    @property
    def fingerprint(self) -> dict:
        return self.saved.get("machine_info", {}).get("longformer_bench", {})

    @property
    def series(self) -> str:
        """The series id; a run saved without the suite's fingerprint is a series of its folder."""
        return series_id(self.fingerprint) if self.fingerprint else f"folder:{self.path.parent.name}"

    @property
    def series_name(self) -> str:
        """The series as a person reads it (the folder name new runs of it are saved under)."""
        return series_folder(self.fingerprint) if self.fingerprint else self.path.parent.name

    @property
    def when(self) -> str:
        return self.saved.get("datetime", "")

    @property
    def labels(self) -> dict[str, str | None]:
        """What labels a run within its series: the commit and the software versions."""
        commit = self.saved.get("commit_info") or {}
        sha = commit.get("id")
        labels = {"commit": (sha[:10] + ("+dirty" if commit.get("dirty") else "")) if sha else None}
        labels["python"] = self.saved.get("machine_info", {}).get("python_version")
        labels.update({key: self.fingerprint.get(key) for key in SOFTWARE_KEYS})
        return labels

    @property
    def partial(self) -> bool:
        """Whether the run measured a partial selection (`-k`, named tests): never a full one's baseline."""
        return bool((self.saved.get(SELECTION_KEY) or {}).get("partial"))

    def benchmarks(self) -> dict[str, dict]:
        return {b["fullname"]: b for b in self.saved["benchmarks"] if "fullname" in b}

    def work(self, fullname: str) -> dict:
        """The work this run's row of `fullname` measured ({} where it has no such row)."""
        return work_of(self.benchmarks().get(fullname, {}).get("extra_info") or {})


def work_of(extra: dict) -> dict:
    """The WORK_KEYS a benchmark's extra_info recorded."""
    return {key: extra[key] for key in WORK_KEYS if extra.get(key) is not None}


def work_differences(a: dict, b: dict) -> list[str]:
    """The work keys two rows both recorded and disagree on, as `batch_size 4 vs 8`."""
    return [f"{key} {a[key]} vs {b[key]}" for key in WORK_KEYS if key in a and key in b and a[key] != b[key]]


def same_work(runs: list[Run], fullname: str, work: dict) -> list[Run]:
    """The runs whose row of `fullname` measured `work` (rows that did not record it count as the same)."""
    return [run for run in runs if not work_differences(run.work(fullname), work)]


def label_changes(before: Run, after: Run) -> list[str]:
    """What differs between two runs' labels, as `torch 2.12.0 -> 2.13.0`."""
    a, b = before.labels, after.labels
    return [f"{key} {a[key]} -> {b[key]}" for key in a if a[key] != b[key]]


def software_differences(before: Run, after: Run) -> list[str]:
    """What differs between two runs' software (python, torch, transformers, CUDA, ...), not commits:
    where it does, the calibration may have moved with it (bench/verdicts/verdict.py)."""
    return [change for change in label_changes(before, after) if not change.startswith("commit ")]


def flat(config: dict, prefix: str = "") -> dict:
    """A nested configuration as one level, `run.model.layers`: a difference names its own key."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_differences(a: dict, b: dict) -> list[str]:
    """The series configuration keys two fingerprints disagree on, with both values (the keys of
    the run's nested settings each on their own: `run.batch_size 16 vs 4`, not two dicts)."""
    a, b = flat(series_config(a)), flat(series_config(b))
    keys = sorted(set(a) | set(b))
    return [f"{key} {a.get(key)} vs {b.get(key)}" for key in keys if a.get(key) != b.get(key)]


def saved_runs(results: Path, warn: Callable[[str], None]) -> list[Run]:
    """Every saved run under results/<folder>/, oldest first (none where there are none: a series'
    first run); broken files skipped with a warning."""
    runs = (
        [
            Run(folder / name, saved)
            for folder in sorted(p for p in results.iterdir() if p.is_dir())
            for name, saved in read_runs(folder, warn)
        ]
        if results.is_dir()
        else []
    )
    return sorted(runs, key=lambda run: (run.when, run.name))


def load_runs(results: Path, warn: Callable[[str], None]) -> list[Run]:
    """`saved_runs` for a command that reads history: a folder that holds none is an error that
    says so."""
    if not results.is_dir():
        what = "is a file, not a folder" if results.exists() else "folder does not exist"
        raise BenchInputError(f"--results {results}: {what}")
    runs = saved_runs(results, warn)
    if not runs:
        raise BenchInputError(
            f"--results {results}: no saved runs (NNNN_*.json in a folder under it); "
            "save some with `make bench`"
        )
    return runs


def earlier_runs(runs: list[Run], latest: Run) -> list[Run]:
    """The runs of `latest`'s series saved before it, oldest first."""
    return [r for r in runs if r.series == latest.series and (r.when, r.name) < (latest.when, latest.name)]


def by_work(runs: list[Run], fullname: str) -> dict[str, list[Run]]:
    """The runs that measured `fullname`, grouped by the work they measured (oldest first within each),
    keyed by what sets each group apart (`max_samples 16`), or '' where all measured the same."""
    groups: dict[str, list[Run]] = {}
    works = {}
    for run in runs:
        if fullname in run.benchmarks():
            key = json.dumps(run.work(fullname), sort_keys=True)
            works[key] = run.work(fullname)
            groups.setdefault(key, []).append(run)
    varying = [key for key in WORK_KEYS if len({str(w.get(key)) for w in works.values()}) > 1]
    return {
        ", ".join(f"{key} {works[group].get(key)}" for key in varying): members
        for group, members in groups.items()
    }


def comparable_runs(runs: list[Run], latest: Run) -> list[Run]:
    """The earlier runs of `latest`'s series that may be its baseline: a full run's never include a
    partial one (its own `-k` subset, measured apart from the rest), a partial run's may."""
    earlier = earlier_runs(runs, latest)
    return earlier if latest.partial else [run for run in earlier if not run.partial]


def by_series(runs: list[Run]) -> dict[str, list[Run]]:
    """The runs grouped by series (oldest first within each), series in order of their first run."""
    grouped: dict[str, list[Run]] = {}
    for run in runs:
        grouped.setdefault(run.series, []).append(run)
    return grouped

"""A/B pairs: both sides of one session saved as pytest-benchmark JSON, and their verdicts.

A pair lives in `results/ab/NNNN_<session>/` as `baseline.json` and `candidate.json`, each a
pytest-benchmark JSON (so `pytest-benchmark compare` reads them) with an `ab` block naming the
session, the side, and both sides' python, torch, transformers, ref, variables and options. The
folder appears whole or not at all. The files are not runs of the history (their names do not
match `NNNN_*.json`), so history comparisons never mix them in.

The verdict is the in-session test: Welch's t-test on the logs of the per-process values of the
two sides (processes are the independent unit; the rounds of both sides interleaved in one time
window cancel the drift that makes saved runs incomparable), on the score that the detection
table measured as the stronger (`SCORE`). No torch import here.
"""

from __future__ import annotations

import copy
import json
import os
import re
import statistics
import tempfile
from pathlib import Path

from pytest_benchmark.stats import Stats

from bench.ab import BASELINE, CANDIDATE
from bench.compare import format_seconds
from bench.errors import BenchInputError
from bench.sampling import Job, ProcessSample, summary
from bench.stats import REGRESSION, Change, Row, Values, log_ratio_change, verdict

SIDES = (BASELINE, CANDIDATE)
# The score the verdict is decided on: the machine-normalized per-process medians (each round over
# the calibration round after it); see the README's A/B detection table for why.
SCORE = "normalized"
PAIR_FOLDER = re.compile(r"^(\d{4})_")


def side_stats(samples: list[ProcessSample]) -> dict:
    """pytest-benchmark's statistics of every round of every process, with the data."""
    stats = Stats()
    for sample in samples:
        for seconds in sample.seconds:
            stats.update(seconds)
    return {**stats.as_dict(), "data": stats.data, "iterations": 1}


def side_json(
    candidate_json: dict,
    side: str,
    pairs: dict[str, tuple[dict[str, Job], dict[str, list[ProcessSample]]]],
    threads: int,
    ab: dict,
) -> dict:
    """One side's pytest-benchmark JSON: the candidate's session as pytest-benchmark wrote it,
    its benchmarks reduced to the paired ones, each with this side's rounds and sampling summary."""
    out = copy.deepcopy(candidate_json)
    stack = ab["sides"][side]
    fingerprint = out.setdefault("machine_info", {}).setdefault("longformer_bench", {})
    fingerprint.update(torch=stack.get("torch"), transformers=stack.get("transformers"))
    out["ab"] = {**ab, "side": side}
    benchmarks = []
    for entry in candidate_json.get("benchmarks", []):
        if entry.get("fullname") not in pairs:
            continue
        jobs, samples = pairs[entry["fullname"]]
        entry = copy.deepcopy(entry)
        entry["stats"] = side_stats(samples[side])
        sampled = summary(samples[side], jobs[side], threads)
        entry["extra_info"] = sampled if side == "baseline" else {**entry.get("extra_info", {}), **sampled}
        entry["extra_info"]["ab_side"] = side
        benchmarks.append(entry)
    out["benchmarks"] = benchmarks
    return out


def save_pair(results: Path, session: str, sides: dict[str, dict]) -> Path:
    """Write `results/ab/NNNN_<session>/{baseline,candidate}.json` whole or not at all: both files
    go to a temporary folder beside it, which is renamed into place."""
    folder = results / "ab"
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
    try:
        for side, payload in sides.items():
            with open(staging / f"{side}.json", "w", encoding="utf-8") as out:
                json.dump(payload, out, indent=2)
                out.flush()
                os.fsync(out.fileno())
        taken = [int(m.group(1)) for p in folder.iterdir() if (m := PAIR_FOLDER.match(p.name))]
        number = max(taken, default=0) + 1
        while True:
            target = folder / f"{number:04d}_{session}"
            try:
                os.rename(staging, target)  # fails if another writer took the name
                return target
            except OSError:
                if not target.exists():
                    raise
                number += 1
    finally:
        if staging.exists():
            for leftover in staging.iterdir():
                leftover.unlink()
            staging.rmdir()


def find_pair(path: Path) -> Path | None:
    """The pair folder that `path` is (or a file of), or None when it is no A/B pair."""
    folder = path if path.is_dir() else path.parent
    if all((folder / f"{side}.json").is_file() for side in SIDES):
        return folder
    return None


def newest_pair(results: Path) -> Path:
    folder = results / "ab"
    pairs = sorted(p for p in folder.iterdir() if PAIR_FOLDER.match(p.name)) if folder.is_dir() else []
    if not pairs:
        raise BenchInputError(
            f"--results {results}: no A/B pairs saved under {folder}; run `python -m bench ab`"
        )
    return pairs[-1]


def load_pair(folder: Path) -> dict[str, dict]:
    loaded = {}
    for side in SIDES:
        path = folder / f"{side}.json"
        try:
            loaded[side] = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(loaded[side].get("benchmarks"), list):
                raise ValueError("no 'benchmarks' list")
        except (OSError, ValueError) as err:
            raise BenchInputError(f"{path}: not a saved A/B side ({err})") from None
    return loaded


def judge_pair(name: str, baseline: Values, candidate: Values, alpha: float, min_effect: float) -> Row:
    """The in-session verdict of one benchmark: candidate / baseline on `SCORE`, Welch's test."""
    confidence = 1.0 - alpha
    raw = log_ratio_change(baseline.process, candidate.process, confidence)
    normalized = log_ratio_change(baseline.normalized, candidate.normalized, confidence)
    calibration = log_ratio_change(baseline.calibration, candidate.calibration, confidence)
    chosen = {"raw": raw, "normalized": normalized}[SCORE]
    note = "" if chosen else "needs 2+ processes on each side (--processes)"
    return Row(
        name,
        statistics.median(baseline.process) if baseline.process else None,
        statistics.median(candidate.process) if candidate.process else None,
        raw,
        normalized,
        calibration,
        SCORE,
        verdict(chosen, alpha, min_effect),
        note,
    )


def judge_saved(pair: dict[str, dict], alpha: float, min_effect: float) -> list[Row]:
    base = {b["fullname"]: b for b in pair["baseline"]["benchmarks"] if "fullname" in b}
    rows = []
    for entry in pair["candidate"]["benchmarks"]:
        name = entry.get("fullname")
        if name in base:
            rows.append(
                judge_pair(
                    name,
                    Values.from_extra_info(base[name].get("extra_info", {})),
                    Values.from_extra_info(entry.get("extra_info", {})),
                    alpha,
                    min_effect,
                )
            )
    return rows


def describe_side(side: dict) -> str:
    parts = [
        f"python {side.get('python')}",
        f"torch {side.get('torch')}",
        f"transformers {side.get('transformers')}",
    ]
    dirty = " + uncommitted changes" if side.get("dirty") else ""
    if side.get("ref"):
        parts.append(f"ref {side['ref']} ({str(side.get('commit'))[:10]})")
    elif side.get("commit"):
        parts.append(f"commit {str(side['commit'])[:10]}{dirty}")
    parts += [f"{k}={v}" for k, v in {**side.get("env", {}), **side.get("options", {})}.items()]
    return ", ".join(parts)


def format_change(change: Change | None) -> str:
    if change is None:
        return "-"
    return f"{change.ratio:.4f} [{change.low:.4f}, {change.high:.4f}]"


def format_pair(ab: dict, rows: list[Row], alpha: float, min_effect: float, where: Path | None) -> str:
    header = ("benchmark", "baseline", "candidate", f"ratio [{100 * (1 - alpha):g}% CI]", "p", "verdict")
    lines = [
        (
            row.benchmark.split("::")[-1],
            format_seconds(row.baseline_seconds),
            format_seconds(row.latest_seconds),
            format_change(row.decided),
            f"{row.decided.p_value:.2g}" if row.decided else "-",
            row.verdict + (f" ({row.note})" if row.note else ""),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    sides = ab.get("sides", {})
    text = [
        f"A/B session {ab.get('session')}" + (f", saved in {where}" if where else ""),
        *(f"  {side:<9} {describe_side(sides.get(side, {}))}" for side in SIDES),
        f"  {ab.get('processes')} processes per side, rounds interleaved in pairs; "
        f"ratio = candidate / baseline of the {SCORE} per-process medians; Welch's t-test;",
        f"  a verdict needs p < {alpha:g} and a change of at least {100 * min_effect:g}%",
        "",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        *("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines),
    ]
    if ab.get("candidate_slowdown"):
        text.append(
            f"note: a self-test session: {ab['candidate_slowdown']:.0%} slowdown injected into the candidate"
        )
    counts = {v: sum(r.verdict == v for r in rows) for v in dict.fromkeys(r.verdict for r in rows)}
    text += ["", ", ".join(f"{n} {v}" for v, n in counts.items()) or "no paired benchmarks"]
    return "\n".join(text)


def pair_json(ab: dict, rows: list[Row], where: Path | None) -> str:
    def change(c: Change | None) -> dict | None:
        return None if c is None else c.__dict__

    benchmarks = []
    for row in rows:
        chosen = row.decided  # the SCORE's change: judge_pair decides by it
        benchmarks.append(
            {
                "benchmark": row.benchmark,
                "ratio": chosen.ratio if chosen else None,
                "low": chosen.low if chosen else None,
                "high": chosen.high if chosen else None,
                "p_value": chosen.p_value if chosen else None,
                "verdict": row.verdict,
                "score": SCORE,
                "baseline_seconds": row.baseline_seconds,
                "candidate_seconds": row.latest_seconds,
                "raw": change(row.raw),
                "normalized": change(row.normalized),
                "calibration": change(row.calibration),
                "note": row.note,
            }
        )
    return json.dumps(
        {
            "session": ab.get("session"),
            "pair": str(where) if where else None,
            "sides": ab.get("sides"),
            "benchmarks": benchmarks,
        },
        indent=2,
    )


def any_regression(rows: list[Row]) -> bool:
    return any(row.verdict == REGRESSION for row in rows)

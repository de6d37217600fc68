"""A/B pairs: both sides of one session saved as pytest-benchmark JSON, and their verdicts.

A pair lives in `results/ab/NNNN_<session>/` as `baseline.json` and `candidate.json`, each a
pytest-benchmark JSON (so `pytest-benchmark compare` reads them) with an `ab` block naming the
session, the side, and both sides' python, torch, transformers, ref, variables and options. The
folder appears whole or not at all. The files are not runs of the history (their names do not
match `NNNN_*.json`), so history comparisons never mix them in.

The verdict is the in-session test: Welch's t-test on the logs of the per-process values of the
two sides (processes are the independent unit; the rounds of both sides interleaved in one time
window cancel the drift that makes saved runs incomparable), on raw time or, where the calibration
did not move between the sides, on the calibrated score, every row of a session judged together
(bench/verdicts/verdict.py). No torch import here.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import statistics
import tempfile
from pathlib import Path

from pytest_benchmark.stats import Stats

from bench.base.errors import BenchInputError
from bench.measure.ab import BASELINE, CANDIDATE, Pair
from bench.measure.sampling import Job, ProcessSample, summary
from bench.verdicts.attribution import NONE, Attribution, as_json, attributions
from bench.verdicts.exact import NO_GATE, Compared, ExactSection, Gate, counts_of
from bench.verdicts.sequential import Plan, boundary, extra_until, judge_looks, looks_taken
from bench.verdicts.stats import (
    Change,
    Values,
    controlled_change,
    log_ratio_change,
    rounds_factor,
    within_process_slope,
)
from bench.verdicts.verdict import CALIBRATED, INCONCLUSIVE, RAW, Row, choose_score

SIDES = (BASELINE, CANDIDATE)
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
    looks: dict[str, list[int]] | None = None,
) -> dict:
    """One side's pytest-benchmark JSON: the candidate's session as pytest-benchmark wrote it,
    its benchmarks reduced to the paired ones, each with this side's rounds and sampling summary
    (and, by benchmark, its processes after each look where `ab` sampled it again)."""
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
        sampled = summary(
            samples[side], jobs[side], threads, entry["fullname"], (looks or {}).get(entry["fullname"])
        )
        entry["extra_info"] = sampled if side == "baseline" else {**entry.get("extra_info", {}), **sampled}
        entry["extra_info"]["ab_side"] = side
        exact = Pair(jobs, samples).exact(entry["fullname"])
        if exact:  # both sides' counts in each side's file: either file says what changed
            entry["extra_info"]["exact"] = exact
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


def stack_differences(sides: dict) -> list[str]:
    """What differs between the sides' software (interpreter, torch, transformers, the workers'
    threads, variables): where anything does, the calibration may have moved with it, so raw time
    decides. (Pairs saved before the sides reported their threads had the same on both.)"""
    base, cand = sides.get(BASELINE, {}), sides.get(CANDIDATE, {})
    out = [
        f"{key} {base.get(key)} vs {cand.get(key)}"
        for key in ("interpreter", "executable", "python", "torch", "transformers", "threads")
        if base.get(key) != cand.get(key)
    ]
    for name in sorted({*base.get("env", {}), *cand.get("env", {})}):
        if base.get("env", {}).get(name) != cand.get("env", {}).get(name):
            out.append(f"${name}")
    return out


def judge_pair(name: str, baseline: Values, candidate: Values, confidence: float, differs: list[str]) -> Row:
    """One benchmark's changes, candidate / baseline: raw, controlled by the calibration, and the
    calibration's own; which decides (bench/verdicts/verdict.py). The verdict comes from `finish`."""
    raw = log_ratio_change(baseline.process, candidate.process, confidence)
    calibrated, slope = controlled_change(baseline, candidate, confidence)
    calibration = log_ratio_change(baseline.calibration, candidate.calibration, confidence)
    if raw is None:
        return Row(name, None, None, None, None, None, "-", "needs 2+ processes on each side (--processes)")
    score, reason = choose_score(calibration, differs)
    if score == CALIBRATED and calibrated is None:  # a pair saved without its rounds
        score, reason = RAW, "no rounds saved to control by the calibration"
    return Row(
        name,
        statistics.median(baseline.process),
        statistics.median(candidate.process),
        raw,
        calibrated,
        calibration,
        score,
        reason,
        slope=None if calibrated is None else slope,
    )


def paired_extra_info(pair: dict[str, dict]) -> list[tuple[str, dict, dict]]:
    """(benchmark, the baseline's extra_info, the candidate's) for every benchmark both sides ran,
    in the candidate's order."""
    base = {b["fullname"]: b for b in pair[BASELINE]["benchmarks"] if "fullname" in b}
    return [
        (entry["fullname"], base[entry["fullname"]].get("extra_info", {}), entry.get("extra_info", {}))
        for entry in pair[CANDIDATE]["benchmarks"]
        if entry.get("fullname") in base
    ]


def pair_stack_differences(pair: dict[str, dict]) -> list[str]:
    return stack_differences(pair[CANDIDATE].get("ab", {}).get("sides", {}))


def judge_saved(pair: dict[str, dict], alpha: float, min_effect: float) -> list[Row]:
    """Every benchmark of a saved pair, judged together (Holm over the session's rows), look by
    look as `ab` judged them (bench/verdicts/sequential.py: the plan in the `ab` block, each
    benchmark's processes after each look in its extra_info; one look where neither is saved)."""
    differs = pair_stack_differences(pair)
    plan = Plan.saved(pair[CANDIDATE].get("ab", {}).get("looks"), alpha)
    paired = [(name, base, cand, cand.get("looks")) for name, base, cand in paired_extra_info(pair)]

    def rows_at(k: int, alpha_k: float) -> list[Row]:
        return [
            judge_pair(
                name,
                Values.from_extra_info(extra_until(base, boundary(looks, k))),
                Values.from_extra_info(extra_until(cand, boundary(looks, k))),
                1.0 - alpha_k,
                differs,
            )
            for name, base, cand, looks in paired
        ]

    return judge_looks(plan, looks_taken([looks for *_, looks in paired]), rows_at, min_effect)


def sweep_seconds(pair: dict[str, dict], name: str) -> float:
    """Wall time of one sweep of a benchmark: every process's round and calibration round, both sides."""
    total = 0.0
    for side in SIDES:
        for entry in pair[side]["benchmarks"]:
            if entry.get("fullname") == name:
                extra = entry.get("extra_info", {})
                total += sum(extra.get("process_medians", [])) + sum(extra.get("calibration_medians", []))
    return total


def score_rounds(side: Values, score: str, slope: float) -> list[list[float]]:
    """A side's log rounds by process on the score that decided (raw, or controlled by `slope`)."""
    if score == CALIBRATED:
        return [
            [math.log(t / c**slope) for t, c in zip(rounds, calibration, strict=True)]
            for rounds, calibration in zip(side.rounds, side.calibration_rounds, strict=True)
        ]
    return [[math.log(t) for t in rounds] for rounds in side.rounds]


def needed_seconds(pair: dict[str, dict], row: Row) -> float | None:
    """An estimate of the --seconds that would decide an inconclusive row: its sweeps so far times
    how many times the rounds it would take (stats.rounds_factor); None where no number of rounds
    would (`decides_with` says why)."""
    if row.needed_factor is None:
        return None
    extras = shared_extra(pair, row.benchmark)
    factor = rounds_multiple([Values.from_extra_info(extra) for extra in extras], row)
    if factor is None:
        return None
    sweeps = extras[1].get("rounds_per_worker") or 0
    return factor * sweeps * sweep_seconds(pair, row.benchmark)


def rounds_multiple(sides: list[Values], row: Row) -> float | None:
    """How many times its rounds an inconclusive row would need (stats.rounds_factor on the score
    that decided it); None where no number of rounds would, only more processes (or, on the edge,
    nothing)."""
    if row.needed_factor is None:
        return None
    if any(len(v.rounds) < 2 or any(len(r) < 2 for r in v.rounds) for v in sides):
        return row.needed_factor  # no rounds saved: all of the spread taken for the rounds'
    slope = within_process_slope(sides) or 0.0
    return rounds_factor([score_rounds(v, row.decided_by, slope) for v in sides], row.needed_factor)


def decides_with(pair: dict[str, dict], row: Row) -> str:
    """What would decide an inconclusive row: `est. ~N s` (the --seconds, an estimate), `more
    processes` (the spread between processes dominates: more rounds do not narrow it), or `on the
    edge` (the estimate sits at the minimum effect: nothing does)."""
    if row.needed_factor is None:
        return "on the edge"
    seconds = needed_seconds(pair, row)
    return "more processes" if seconds is None else f"est. ~{seconds:.0f} s"


def shared_extra(pair: dict[str, dict], name: str) -> tuple[dict, dict]:
    """One benchmark's extra_info on each side ({} where a side lacks it)."""
    return next(((base, cand) for n, base, cand in paired_extra_info(pair) if n == name), ({}, {}))


def exact_section(pair: dict[str, dict], gate: Gate = NO_GATE) -> ExactSection:
    """Each paired benchmark's exact counts, candidate against baseline: each side's own, saved in
    its extra_info (or both sides' in one dict by side: `side_counts`)."""
    compared = [
        Compared(name, side_counts(base, cand, BASELINE), side_counts(cand, base, CANDIDATE))
        for name, base, cand in paired_extra_info(pair)
    ]
    return ExactSection(compared, gate, SIDES)


def side_counts(own: dict, other: dict, side: str) -> dict[str, int] | None:
    """A side's exact counts: from its own extra_info, or from the other side's where that holds
    both sides' by name (the candidate's file keeps the facts its pytest session recorded)."""
    found = counts_of(own, side)
    nested = other.get("exact")
    if found is None and isinstance(nested, dict) and isinstance(nested.get(side), dict):
        return counts_of(other, side)
    return found


def explain_mode(pair: dict[str, dict]) -> str:
    """The --explain a pair was sampled with (`none` for pairs saved before it)."""
    return pair[CANDIDATE].get("ab", {}).get("explain", NONE)


def pair_attributions(
    pair: dict[str, dict], rows: list[Row], alpha: float, mode: str | None = None
) -> dict[str, Attribution | str]:
    """Where the time went, for the rows `mode` shows (default the pair's own --explain;
    bench/verdicts/attribution.py)."""
    profiles = {
        name: (base.get("profile"), cand.get("profile")) for name, base, cand in paired_extra_info(pair)
    }
    return attributions(profiles, rows, alpha, mode or explain_mode(pair))


def pair_json(
    pair: dict[str, dict],
    rows: list[Row],
    where: Path | None,
    exact: ExactSection | None = None,
    explained: dict[str, Attribution | str] | None = None,
) -> str:
    ab = pair[CANDIDATE].get("ab", {})
    exact = exact or exact_section(pair)

    def change(c: Change | None) -> dict | None:
        return None if c is None else c.__dict__

    benchmarks = []
    for row in rows:
        chosen = row.decided
        benchmarks.append(
            {
                "benchmark": row.benchmark,
                "verdict": row.verdict,
                "decided_by": row.decided_by,
                "reason": row.reason,
                "ratio": chosen.ratio if chosen else None,
                "low": chosen.low if chosen else None,
                "high": chosen.high if chosen else None,
                "p_value": chosen.p_value if chosen else None,
                "p_adjusted": row.p_adjusted,
                "needed_seconds": needed_seconds(pair, row),  # an estimate
                "decides_with": decides_with(pair, row) if row.verdict == INCONCLUSIVE else None,
                "baseline_seconds": row.baseline_seconds,
                "candidate_seconds": row.latest_seconds,
                "raw": change(row.raw),
                "calibrated": change(row.calibrated),
                "calibration": change(row.calibration),
                "slope": row.slope,
                "look": row.look,  # the look that decided (None: one look planned)
                "exact": exact.as_json(row.benchmark),
                "attribution": as_json((explained or {}).get(row.benchmark)),
            }
        )
    return json.dumps(
        {
            "session": ab.get("session"),
            "pair": str(where) if where else None,
            "sides": ab.get("sides"),
            "processes": ab.get("processes"),
            "servers_per_side": ab.get("servers_per_side"),  # absent in pairs saved before it was kept
            "benchmarks": benchmarks,
            "exact_gate": exact.gate_json(),
        },
        indent=2,
    )

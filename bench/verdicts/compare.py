"""`python -m bench compare`: the latest saved run against a baseline, with a verdict per benchmark.

Reads results/ alone (no torch import: it answers in about a second). For each benchmark the change
is tested on the raw per-process medians, on the calibrated ones (each round over the calibration
round after it) and on the calibration itself. Once 5 earlier runs of the benchmark exist, each
change is tested against how much that score wandered from run to run; the calibrated score decides
only where the calibration did not move and the software is the same, and it is the steadier
(bench/verdicts/verdict.py, the rule `ab` and `changes` share); before that only the spread between
processes is known, which misses drift between runs, so the verdict waits (`cannot tell`) unless
--process-spread asks. Every row of one comparison is judged together (Holm).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

from bench.base.errors import BenchInputError
from bench.base.history import (
    Run,
    comparable_runs,
    config_differences,
    label_changes,
    load_runs,
    same_work,
    software_differences,
    work_differences,
)
from bench.verdicts.exact import NO_GATE, Compared, ExactSection, Gate, counts_of
from bench.verdicts.notation import plural, run_name
from bench.verdicts.stats import Change, Values, log_ratio_change, run_change, run_level, run_to_run_sd
from bench.verdicts.verdict import CALIBRATED, RAW, Row, choose_score, finish

# The run-to-run spread is measured over the last HISTORY_RUNS earlier runs, once there are at least
# MIN_HISTORY_RUNS (4 successive differences): fewer make its estimate, and the choice of score, a guess.
HISTORY_RUNS, MIN_HISTORY_RUNS = 20, 5


def find_run(runs: list[Run], wanted: str, prefer_folder: Path | None = None, flag: str = "--latest") -> Run:
    """A run by path, by file name, or by its number (`7`, `#7` or `0007`), nearest the preferred
    folder; `flag` names the option in the error where none or several match."""
    path = Path(wanted)
    matches = [r for r in runs if path.exists() and r.path.resolve() == path.resolve()]
    if not matches:
        number = wanted.removeprefix("#")
        key = f"{int(number):04d}_" if number.isdigit() else wanted
        matches = [r for r in runs if r.path.name.startswith(key) or r.name == wanted]
    if len(matches) > 1 and prefer_folder is not None:
        matches = [r for r in matches if r.path.parent == prefer_folder] or matches
    if not matches:
        numbers = sorted(int(r.path.name[:4]) for r in runs)
        raise BenchInputError(
            f"{flag} {wanted}: no saved run matches it (a run's number, file or file name; "
            f"the saved runs are numbered {numbers[0]} to {numbers[-1]}: python -m bench runs)"
        )
    if len(matches) > 1:
        raise BenchInputError(
            f"{flag} {wanted}: matches {len(matches)} runs, in "
            + ", ".join(sorted({r.path.parent.name for r in matches}))
            + ": name one by its folder/file"
        )
    return matches[0]


def select(
    runs: list[Run], latest: str | None, baseline: str, warn: Callable[[str], None] = print
) -> tuple[list[Run], Run, int | None]:
    """(baseline candidates, the latest run, how many of the candidates each benchmark pools).

    `previous` and `last:N`: the earlier runs of the latest run's series (bench/base/history.py: same
    hardware and run configuration, any software; a full run's without the partial ones), of which
    each benchmark pools the newest 1 or N that measured it with the same work (`baseline_for`), so
    a run of other benchmarks in between (a convergence run, a `-k` subset) does not hide its
    baseline. Unless the latest run is named, it is the newest run that has an earlier
    one in its series (a first run at another dtype does not stop the comparison; `warn` says so). A
    named baseline: that run, count None.
    """
    newest = find_run(runs, latest) if latest else runs[-1]
    if baseline == "previous" or baseline.startswith("last:"):
        count = 1 if baseline == "previous" else _count(baseline)
        earlier = comparable_runs(runs, newest)
        comparable = [r for r in runs if comparable_runs(runs, r)]
        if not earlier and not latest and comparable:
            warn(
                f"{run_name(newest)} is the first run of its series; comparing the newest run "
                f"that has an earlier one, {run_name(comparable[-1])}"
            )
            newest = comparable[-1]
            earlier = comparable_runs(runs, newest)
        if not earlier:
            series = len({r.series for r in runs})
            where = "" if latest else f" (none of the {plural(series, 'series', '')} holds two runs yet)"
            raise BenchInputError(
                f"no run before {run_name(newest)} in its series to compare with{where}: save "
                f"another run (make bench), or name one: python -m bench compare --baseline RUN"
            )
        return earlier, newest, count
    chosen = find_run(runs, baseline, newest.path.parent, "--baseline")
    if chosen.path == newest.path:
        raise BenchInputError(f"--baseline {baseline}: that is the latest run itself")
    if chosen.partial and not newest.partial:
        warn(
            f"--baseline {run_name(chosen)} measured a partial selection (-k); {run_name(newest)} a full one"
        )
    return [chosen], newest, None


def baseline_for(
    candidates: list[Run], count: int | None, fullname: str, latest: Run
) -> tuple[list[Run], str]:
    """(the baseline runs of one benchmark, why there are none): the newest `count` candidates that
    measured it with the same work as the latest run (bench/base/history.py WORK_KEYS; a named
    baseline, count None, only if it did). A row whose baseline measured other work is refused:
    a fast plan that changed (a smaller batch, a shorter slice) is not a change of speed."""
    measured = [r for r in candidates if values_of(r, fullname).process]
    if not measured:  # judge says which side lacks the values
        return (candidates if count is None else []), ""
    like = same_work(measured, fullname, latest.work(fullname))
    if not like:
        other = measured[-1]
        differs = "; ".join(work_differences(other.work(fullname), latest.work(fullname)))
        return [], f"other work than {run_name(other)}: {differs}"
    return (like if count is None else like[-count:]), ""


def _count(baseline: str) -> int:
    value = baseline.removeprefix("last:")
    if not value.isdigit() or int(value) < 1:
        raise BenchInputError(f"--baseline {baseline}: expected last:N with N a positive integer")
    return int(value)


def check_series(baseline: list[Run], latest: Run, force: bool) -> bool:
    """True when the runs belong to different series (and --force allows the comparison); raises
    when they do without it. Other software in the same series is what compare is for: no error."""
    differing = [run for run in baseline if run.series != latest.series]
    if not differing:
        return False
    if force:
        return True
    first = differing[0]
    details = (
        "; ".join(config_differences(first.fingerprint, latest.fingerprint)) or "no fingerprint recorded"
    )
    raise BenchInputError(
        f"{run_name(first)} and {run_name(latest)} were measured on different hardware or run "
        f"configurations ({details}): their times are not comparable as they stand. Pass --force to "
        f"compare them anyway; the machine-normalized scores then decide the verdicts."
    )


def software_changes(base_runs: list[Run], latest: Run) -> list[str]:
    """What the latest run's commit and software differ in from the newest baseline run's."""
    return label_changes(base_runs[-1], latest) if base_runs else []


def values_of(run: Run, fullname: str) -> Values:
    """One benchmark's per-process values in one run (empty lists where none were saved)."""
    return Values.from_extra_info(run.benchmarks().get(fullname, {}).get("extra_info", {}))


def pooled(runs: list[Values]) -> Values:
    return Values(
        *([v for run in runs for v in getattr(run, f)] for f in ("process", "calibration", "normalized"))
    )


def score_change(
    score: str, base_runs: list[Values], new: Values, history: list[Values], confidence: float
) -> tuple[Change | None, bool]:
    """The change of one score (`process`: raw, `normalized`, or `calibration` itself), and whether
    it was tested against the run-to-run spread (5+ earlier runs) rather than only the spread
    between processes."""
    levels = [run_level(getattr(h, score)) for h in history if getattr(h, score)]
    sd = run_to_run_sd(levels) if len(levels) >= MIN_HISTORY_RUNS else None
    if sd is not None:
        runs = [getattr(b, score) for b in base_runs if getattr(b, score)]
        return run_change(runs, getattr(new, score), sd, len(levels), confidence), True
    return log_ratio_change(getattr(pooled(base_runs), score), getattr(new, score), confidence), False


def judge(
    name: str,
    base_runs: list[Values],
    new: Values,
    history: list[Values],
    confidence: float,
    software_differs: list[str] = (),
    other_series: bool = False,
    process_spread: bool = False,
) -> Row:
    """The raw, calibrated (normalized) and calibration changes of one benchmark, and which decides.

    With 5+ earlier runs of this benchmark each score is tested against its run-to-run spread
    there; the calibrated score decides where the calibration did not move and the software is the
    same (bench/verdicts/verdict.py), and then only if it is the steadier. Before that history the only
    spread at hand is the one between processes, which says nothing of how far the machine drifts
    between runs: on a shared CPU, same-code runs then differ "significantly" now and then. So
    without it no score decides (`cannot tell`, the changes still shown) unless `process_spread`
    asks. Runs of different series (--force) can only be compared calibrated.
    """
    base = pooled(base_runs)
    if not base.process or not new.process:
        where = "the baseline" if not base.process else "the latest run"
        return Row(name, None, None, None, None, None, "-", f"no per-process values in {where}")
    raw, from_history = score_change("process", base_runs, new, history, confidence)
    calibrated, _ = score_change("normalized", base_runs, new, history, confidence)
    calibration, _ = score_change("calibration", base_runs, new, history, confidence)
    earlier = sum(1 for h in history if h.process)
    forced = "different series (--force): only the calibrated score compares"
    if raw is None or calibrated is None:
        decided_by, reason = "-", "needs 2+ worker processes on each side (--workers)"
    elif not from_history and not process_spread:
        decided_by = "-"
        reason = f"{plural(earlier, 'earlier run')}, {MIN_HISTORY_RUNS} needed for run-to-run spread"
        reason += f"; {forced}" if other_series else ""
    elif other_series:
        decided_by, reason = CALIBRATED, forced
    else:
        decided_by, reason = choose_score(calibration, software_differs)
        if decided_by == CALIBRATED and from_history and raw.se <= calibrated.se:
            decided_by, reason = RAW, "raw is the steadier score here"
        elif decided_by == RAW and not from_history and not software_differs:
            # runs minutes apart: raw time moves with the machine (1.3-1.5x here), and the spread
            # between processes knows nothing of that; measured: a 30% slower torch came out as 4
            # "improvements" of 12-29% on process spread, the machine faster in the second run
            decided_by = "-"
            reason += "; the machine's speed or the stack: process spread alone cannot tell them apart"
    # the seconds shown are the ones the raw change compares: geometric means of per-process medians
    latest_seconds = math.exp(run_level(new.process))
    return Row(
        name,
        latest_seconds / raw.ratio if raw else math.exp(run_level(base.process)),
        latest_seconds,
        raw,
        calibrated,
        calibration,
        decided_by,
        reason,
    )


def compare(
    results: Path,
    latest: str | None = None,
    baseline: str = "previous",
    alpha: float = 0.01,
    min_effect: float = 0.02,
    force: bool = False,
    warn: Callable[[str], None] = print,
    process_spread: bool = False,
) -> tuple[list[Run], Run, list[Row]]:
    if not 0 < alpha < 1:
        raise BenchInputError(f"--alpha {alpha}: must be between 0 and 1")
    if min_effect < 0:
        raise BenchInputError(f"--min-effect {min_effect}: must be >= 0")
    runs = load_runs(results, warn)
    candidates, new, count = select(runs, latest, baseline, warn)
    other_series = check_series(candidates, new, force)
    earlier = comparable_runs(runs, new)
    names = list(new.benchmarks())
    if count is None:  # a named baseline: its benchmarks the latest run lacks are listed too
        names += [n for n in candidates[0].benchmarks() if n not in names]
    rows, used = [], {}
    for name in names:
        base_runs, refused = baseline_for(candidates, count, name, new)
        if refused:
            rows.append(Row(name, None, None, None, None, None, "-", refused))
            continue
        used.update(dict.fromkeys(r.name for r in base_runs))
        history = same_work(earlier, name, new.work(name))[-HISTORY_RUNS:]
        rows.append(
            judge(
                name,
                [values_of(r, name) for r in base_runs],
                values_of(new, name),
                [values_of(r, name) for r in history],
                1.0 - alpha,
                software_differences(base_runs[-1], new) if base_runs else [],
                other_series,
                process_spread,
            )
        )
    return [r for r in candidates if r.name in used], new, finish(rows, alpha, min_effect)


def exact_section(base_runs: list[Run], latest: Run, gate: Gate = NO_GATE) -> ExactSection:
    """The latest run's exact counts against its baseline's, per benchmark: the newest baseline run
    that measured it with the same work (the one its timing verdict rests on, or the newest of
    last:N). Runs of different series (--force) count different work: not compared."""
    sides = ("baseline", "latest")
    if any(run.series != latest.series for run in base_runs):
        return ExactSection([], gate, sides, "the runs are of different series (--force)")
    compared = []
    for name, entry in latest.benchmarks().items():
        like = [run for run in same_work(base_runs, name, latest.work(name)) if name in run.benchmarks()]
        if like:
            old = like[-1].benchmarks()[name].get("extra_info")
            compared.append(Compared(name, counts_of(old), counts_of(entry.get("extra_info"))))
    return ExactSection(compared, gate, sides)


def as_json(base_runs: list[Run], latest: Run, rows: list[Row], exact: ExactSection | None = None) -> str:
    def change(c: Change | None) -> dict | None:
        return None if c is None else c.__dict__

    exact = exact or exact_section(base_runs, latest)

    return json.dumps(
        {
            "latest": latest.name,
            "baseline": [r.name for r in base_runs],
            "differs": software_changes(base_runs, latest),
            "benchmarks": [
                {
                    **row.__dict__,
                    "raw": change(row.raw),
                    "calibrated": change(row.calibrated),
                    "calibration": change(row.calibration),
                    "exact": exact.as_json(row.benchmark),
                }
                for row in rows
            ],
            "exact_gate": exact.gate_json(),
        },
        indent=2,
    )

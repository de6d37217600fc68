"""The verdicts as text, within 100 columns: `ab`'s and `compare`'s tables and `changes`' steps.

Apart from the judging modules (pairs, compare, changes), which compute the rows. A benchmark's
name stands on its own line and its figures on the line under it, so that a name of any length
never pushes the columns out; a reason that repeats is said once, below the table, by number.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.base.history import Run
from bench.verdicts.changes import NEAR, SeriesChanges, format_step
from bench.verdicts.compare import HISTORY_RUNS, MIN_HISTORY_RUNS, software_changes
from bench.verdicts.notation import LEGEND, format_change, format_seconds, percent, short_name, wrap
from bench.verdicts.pairs import CANDIDATE, SIDES, decides_with
from bench.verdicts.verdict import CALIBRATED, INCONCLUSIVE, RAW, Row, counts

INDENT = "    "  # the figures under a benchmark's name


def figure_header(alpha: float) -> tuple[str, ...]:
    """The columns after a row's seconds (`row_cells`), the interval's confidence named."""
    return (f"change [{100 * (1 - alpha):g}%]", "by", "raw", "calib.", "p Holm", "verdict")


def score_legend(
    alpha: float, min_effect: float, n_rows: int, tested: str = "", after: str = ""
) -> list[str]:
    """What the columns mean and what a verdict needs: the same words in `ab` and `compare`."""
    return [
        *wrap(f"{LEGEND}; change: the deciding score's change with its {100 * (1 - alpha):g}% interval"),
        *wrap(
            "by: the score that decided: raw time, or cal (each round controlled by the calibration "
            "round beside it), which decides only where the software is the same and the calibration "
            "did not move; raw: raw time's change; calib.: the calibration rounds' own change"
        ),
        *wrap(
            (f"{tested}; " if tested else "")
            + f"regression/improvement: p < {alpha:g} after Holm over these {n_rows} rows "
            f"and at least {100 * min_effect:g}%; no change: the interval within +-{100 * min_effect:g}%; "
            f"else inconclusive{after}"
        ),
    ]


def row_cells(row: Row, reasons: list[str], verdict: str) -> tuple[str, ...]:
    """A row's figures after its seconds: the decided change, who decided, raw, calibration, p."""
    decided_by = "cal" if row.decided_by not in (RAW, "-") else row.decided_by
    if row.reason in reasons and row.decided_by != CALIBRATED:
        decided_by += f"[{reasons.index(row.reason) + 1}]"
    return (
        format_change(row.decided or row.raw),  # the raw change where nothing could decide
        decided_by,
        percent(row.raw.ratio) if row.raw else "-",
        percent(row.calibration.ratio) if row.calibration else "-",
        f"{row.p_adjusted:.2g}" if row.p_adjusted is not None else "-",
        verdict,
    )


def two_line_table(header: Sequence[str], rows: list[tuple[str, Sequence[str]]]) -> list[str]:
    """Each row's name on a line, its cells aligned under the header on the next."""
    widths = [max(len(cells[i]) for cells in [header, *(c for _, c in rows)]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return (INDENT + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))).rstrip()

    out = ["benchmark", line(header)]
    for name, cells in rows:
        out += [name, line(cells)]
    return out


def verdict_cell(row: Row, pair: dict[str, dict]) -> str:
    if row.verdict != INCONCLUSIVE:
        return row.verdict
    return f"{row.verdict} ({decides_with(pair, row)})"


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


def format_pair(
    pair: dict[str, dict], rows: list[Row], alpha: float, min_effect: float, where: Path | None
) -> str:
    """The A/B table: per benchmark the baseline's time, the decided change, raw, the calibration's
    own change, Holm's p and the verdict; why raw decided, said once per reason below the table."""
    ab = pair[CANDIDATE].get("ab", {})
    reasons = list(dict.fromkeys(row.reason for row in rows if row.decided_by == RAW))
    header = ("baseline", *figure_header(alpha))
    table = [
        (
            short_name(row.benchmark),
            (format_seconds(row.baseline_seconds), *row_cells(row, reasons, verdict_cell(row, pair))),
        )
        for row in rows
    ]
    text = [
        *wrap(f"A/B session {ab.get('session')}" + (f", saved in {where}" if where else ""), ""),
        *(
            line
            for side in SIDES
            for line in wrap(f"{side:<9} {describe_side(ab.get('sides', {}).get(side, {}))}")
        ),
        *wrap(
            f"{ab.get('processes')} processes per side, rounds interleaved in pairs, "
            f"{ab.get('seconds_per_benchmark')} s a benchmark; Welch's t-test on per-process medians"
        ),
        *score_legend(
            alpha, min_effect, len(rows), "inconclusive (~N s): the --seconds that would decide it"
        ),
        "",
        *two_line_table(header, table),
        *(line for i, reason in enumerate(reasons, 1) for line in wrap(f"[{i}] raw decides: {reason}")),
    ]
    if ab.get("candidate_slowdown"):
        text.append(
            f"note: a self-test session: {ab['candidate_slowdown']:.0%} slowdown injected into the candidate"
        )
    text += ["", counts([row.verdict for row in rows]) if rows else "no paired benchmarks"]
    return "\n".join(text)


def format_table(
    base_runs: list[Run],
    latest: Run,
    rows: list[Row],
    alpha: float,
    min_effect: float,
    force: bool = False,
    process_spread: bool = False,
) -> str:
    """compare's table: per benchmark the baseline's and latest time, the decided change, raw, the
    calibration's own change, Holm's p and the verdict; why, said once per reason below the table."""
    reasons = list(dict.fromkeys(row.reason for row in rows if row.decided_by != CALIBRATED and row.reason))
    header = ("baseline", "latest", *figure_header(alpha))
    table = [
        (
            short_name(row.benchmark),
            (
                format_seconds(row.baseline_seconds),
                format_seconds(row.latest_seconds),
                *row_cells(row, reasons, row.verdict),
            ),
        )
        for row in rows
    ]
    tested = (
        f"change tested against the run-to-run spread of up to {HISTORY_RUNS} earlier runs once "
        f"{MIN_HISTORY_RUNS} exist"
        + (", else against the spread between processes" if process_spread else ", else no verdict")
        + ("; runs of different series (--force): the calibrated score decides" if force else "")
    )
    text = [
        f"latest:   {latest.name}",  # file names as they are, to be copied whole
        f"baseline: {', '.join(r.name for r in base_runs)}",
        *(
            wrap(f"differs:  {', '.join(changes)} (the latest run against the newest baseline run)", "")
            if (changes := software_changes(base_runs, latest))
            else []
        ),
        *wrap("baseline, latest: geometric mean of the per-process median rounds (raw is their ratio)"),
        *score_legend(alpha, min_effect, len(rows), tested),
        "",
        *two_line_table(header, table),
        *(line for i, reason in enumerate(reasons, 1) for line in wrap(f"[{i}] {reason}")),
    ]
    for run in (*base_runs, latest):
        injected = {b.get("extra_info", {}).get("injected_slowdown") for b in run.saved["benchmarks"]} - {
            None,
            0,
        }
        if injected:
            text += wrap(
                f"note: {run.name} was a self-test run with an injected slowdown of {max(injected):.0%}", ""
            )
    text += ["", counts([row.verdict for row in rows])]
    return "\n".join(text)


def format_changes(found: list[SeriesChanges], alpha: float, min_effect: float, min_runs: int) -> str:
    """Per series, the steps first (each with its runs and what differed), then the quiet benchmarks."""
    lines = wrap(
        f"steps tested at p < {alpha:g}, at least {100 * min_effect:g}%, holding {min_runs}+ runs on each "
        f"side; {100 * (1 - alpha):g}% intervals; the level after over the level before ({LEGEND})",
        "",
    )
    for series in dict.fromkeys(s.series for s in found):
        mine = [s for s in found if s.series == series]
        lines += ["", f"series {series}"]
        for s in mine:
            for f in s.found:
                lines.append(f"  {short_name(s.benchmark)}" + (f" [{s.work}]" if s.work else ""))
                lines += wrap(
                    f"step {format_step(f.step)}, p = {f.step.p_value:.2g}, {s.score} ({s.why}), "
                    f"{f.step.before} runs before and {f.step.after} after; {f.shared} of {f.benchmarks} "
                    f"benchmarks stepped within {NEAR} runs of it",
                    INDENT,
                )
                lines += wrap(f"between {f.last_before} and {f.first_after}", INDENT)
                lines += wrap(f"differs: {', '.join(f.differs) or 'nothing recorded (the machine?)'}", INDENT)
        short = [s for s in mine if s.runs < 2 * min_runs]
        quiet = [s for s in mine if not s.found and s.runs >= 2 * min_runs]
        if quiet:
            runs = sorted({s.runs for s in quiet})
            span = f"{runs[0]}" if len(runs) == 1 else f"{runs[0]}-{runs[-1]}"
            lines.append(f"  no step in {len(quiet)} of {len(mine)} benchmarks ({span} runs each)")
        if short:
            lines += wrap(
                f"not searched yet: {len(short)} of {len(mine)} benchmarks have fewer than "
                f"{2 * min_runs} runs ({min_runs} on each side of a step)"
            )
    steps = sum(len(s.found) for s in found)
    lines += ["", f"{steps} step{'' if steps == 1 else 's'} in {len(found)} benchmark series"]
    return "\n".join(lines)

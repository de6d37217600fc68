"""The verdicts as text, within 100 columns: `ab`'s and `compare`'s tables and `changes`' steps.

Apart from the judging modules (pairs, compare, changes), which compute the rows. A benchmark's
name stands on its own line and its figures on the line under it, so that a name of any length
never pushes the columns out; a reason that repeats is said once, below the table, by number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.base.history import Run
from bench.verdicts.attribution import LEGEND as ATTRIBUTION_LEGEND
from bench.verdicts.attribution import Attribution, summary_text
from bench.verdicts.changes import NEAR, SeriesChanges, format_step
from bench.verdicts.compare import HISTORY_RUNS, MIN_HISTORY_RUNS, software_changes
from bench.verdicts.exact import CSV_COLUMNS, ExactSection, step_lines
from bench.verdicts.notation import (
    LEGEND,
    describe_series,
    format_change,
    format_seconds,
    percent,
    plural,
    run_name,
    run_names,
    short_name,
    wrap,
)
from bench.verdicts.pairs import CANDIDATE, SIDES, decides_with
from bench.verdicts.sequential import Plan
from bench.verdicts.verdict import CALIBRATED, INCONCLUSIVE, RAW, Row, counts

INDENT = "    "  # the figures under a benchmark's name


def figure_header(alpha: float) -> tuple[str, ...]:
    """The columns after a row's seconds (`row_cells`), the interval's confidence named."""
    return (f"change [{100 * (1 - alpha):g}%]", "by", "raw", "calib.", "p Holm", "verdict")


def score_legend(
    alpha: float, min_effect: float, n_rows: int, tested: str = "", after: str = ""
) -> list[str]:
    """What the columns mean and what a verdict needs: the same words in `ab` and `compare`, a
    paragraph each (each format wraps them its own way)."""
    return [
        f"{LEGEND}; change: the deciding score's change with its {100 * (1 - alpha):g}% interval",
        "by: the score that decided: raw time, or cal (each round controlled by the calibration "
        "round beside it), which decides only where the software is the same and the calibration "
        "did not move; raw: raw time's change; calib.: the calibration rounds' own change",
        (f"{tested}; " if tested else "")
        + f"regression/improvement: p < {alpha:g} after Holm over the {plural(n_rows, 'tested row')} "
        f"and at least {100 * min_effect:g}%; no change: the interval within +-{100 * min_effect:g}%; "
        f"else inconclusive{after}",
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


def two_line_table(
    header: Sequence[str], rows: list[tuple[str, Sequence[str]]], below: dict[int, str] | None = None
) -> list[str]:
    """Each row's name on a line, its cells aligned under the header on the next, and under them
    the row's paragraph of `below` (by row index), wrapped."""
    widths = [max(len(cells[i]) for cells in [header, *(c for _, c in rows)]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return (INDENT + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))).rstrip()

    out = ["benchmark", line(header)]
    for i, (name, cells) in enumerate(rows):
        out += [name, line(cells), *wrap((below or {}).get(i, ""), INDENT)]
    return out


def verdict_cell(row: Row, pair: dict[str, dict]) -> str:
    if row.verdict != INCONCLUSIVE:
        return row.verdict if (row.look or 1) == 1 else f"{row.verdict} (look {row.look})"
    return f"{row.verdict} ({decides_with(pair, row)})"


def looks_note(ab: dict, alpha: float) -> list[str]:
    """Where `ab` planned more than one look: each look's alpha (bench/verdicts/sequential.py)."""
    plan = Plan.saved(ab.get("looks"), alpha)
    if plan.looks == 1:
        return []
    spent = ", ".join(f"{a:.2g}" for a in plan.alphas)
    return [
        f"looks: {plan.looks} planned, alpha {spent} (a row's interval and Holm at its look's); "
        "rows still inconclusive after a look were sampled again in fresh process pairs"
    ]


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


def spaced(lines: list[str]) -> list[str]:
    """A section after an empty line, or nothing where it has no lines."""
    return ["", *lines] if lines else []


@dataclass(frozen=True)
class Verdicts:
    """A verdict table in its pieces, which each format lays out its own way (`render`): what
    was compared (`intro`, each line with its indent), how to read it, the table, the reasons
    said once (`notes`), notes after them, and the count of each verdict."""

    intro: list[tuple[str, str]]
    legend: list[str]
    header: tuple[str, ...]
    table: list[tuple[str, Sequence[str]]]
    notes: list[str]
    after: list[str]
    total: str
    exact: ExactSection | None = None  # the exact counts, listed apart from the timing verdicts
    below: dict[int, str] = field(default_factory=dict)  # a paragraph under a row (by index): where

    def text(self) -> list[str]:
        """Within 100 columns: a benchmark's name on its line, its cells under it."""
        return [
            *(line for text, indent in self.intro for line in wrap(text, indent)),
            *(line for text in self.legend for line in wrap(text)),
            "",
            *two_line_table(self.header, self.table, self.below),
            *(line for text in self.notes for line in wrap(text)),
            *(line for text in self.after for line in wrap(text, "")),
            *spaced(self.exact.text() if self.exact else []),
            "",
            self.total,
        ]

    def markdown(self) -> list[str]:
        """For a pull-request comment: the same table as GitHub renders it, the legend folded."""

        def cell(text: str) -> str:  # the text's alignment spaces are the terminal's
            return " ".join(text.split()).replace("|", "\\|")

        (title, _), *intro = self.intro
        return [
            f"**{cell(title)}**",
            "",
            *(f"- {cell(text)}" for text, _ in intro),
            "",
            "| benchmark | " + " | ".join(self.header) + " |",
            "|" + " --- |" * (len(self.header) + 1),
            *(f"| `{name}` | " + " | ".join(cell(c) for c in cells) + " |" for name, cells in self.table),
            "",
            *(f"- `{self.table[i][0]}` {cell(text)}" for i, text in sorted(self.below.items())),
            *([""] if self.below else []),
            *(f"{cell(text)}  " for text in [*self.notes, *self.after]),
            *spaced(self.exact.markdown() if self.exact else []),
            f"**{self.total}**",
            "",
            "<details><summary>how to read this table</summary>",
            "",
            *(f"{cell(text)}  " for text in self.legend),
            "",
            "</details>",
        ]


def render(verdicts: Verdicts, rows: list[Row], style: str, new_side: str) -> str:
    """The table in `style`: text (the terminal's), markdown or csv (`rows_csv`)."""
    if style == "csv":
        return rows_csv(rows, new_side, verdicts.exact)
    return "\n".join(verdicts.markdown() if style == "markdown" else verdicts.text())


def rows_csv(rows: list[Row], new_side: str, exact: ExactSection | None = None) -> str:
    """One line a benchmark, its full name and the numbers unrounded: changes as fractions of time
    (0.05 is 5% slower), the deciding score's interval, Holm's p, the verdict and why; then its
    exact counts: how many changed, how many fail the gate's rule, and every change."""

    def fraction(ratio: float | None) -> str:
        return "" if ratio is None else repr(ratio - 1)

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "benchmark",
            "baseline_seconds",
            f"{new_side}_seconds",
            "change",
            "low",
            "high",
            "decided_by",
            "raw_change",
            "calibration_change",
            "p_holm",
            "verdict",
            "reason",
            *(CSV_COLUMNS if exact else ()),
        ]
    )
    for row in rows:
        decided = row.decided
        writer.writerow(
            [
                row.benchmark,
                "" if row.baseline_seconds is None else repr(row.baseline_seconds),
                "" if row.latest_seconds is None else repr(row.latest_seconds),
                *(fraction(getattr(decided, f)) if decided else "" for f in ("ratio", "low", "high")),
                row.decided_by,
                fraction(row.raw.ratio if row.raw else None),
                fraction(row.calibration.ratio if row.calibration else None),
                "" if row.p_adjusted is None else repr(row.p_adjusted),
                row.verdict,
                row.reason,
                *(exact.csv_cells(row.benchmark) if exact else ()),
            ]
        )
    return out.getvalue().rstrip("\n")


def tested_rows(rows: list[Row]) -> int:
    """Holm's family: the rows with a change to test (one that could not be tested is no member)."""
    return sum(row.decided is not None for row in rows)


def format_pair(
    pair: dict[str, dict],
    rows: list[Row],
    alpha: float,
    min_effect: float,
    where: Path | None,
    style: str = "text",
    exact: ExactSection | None = None,
    explained: dict[str, Attribution | str] | None = None,
) -> str:
    """The A/B table: per benchmark the baseline's time, the decided change, raw, the calibration's
    own change, Holm's p and the verdict; why raw decided, said once per reason below the table;
    under a row --explain shows, where its time went (bench/verdicts/attribution.py)."""
    explained = explained or {}
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
    where_saved = f", saved in {where.parent.name}/{where.name}" if where else ""
    verdicts = Verdicts(
        intro=[
            (f"A/B session {ab.get('session')}{where_saved}", ""),
            *((f"{side:<9} {describe_side(ab.get('sides', {}).get(side, {}))}", "  ") for side in SIDES),
            (
                f"{ab.get('processes')} processes per side, rounds interleaved in pairs, "
                f"{ab.get('seconds_per_benchmark')} s a benchmark; Welch's t-test on per-process medians",
                "  ",
            ),
        ],
        legend=[
            *score_legend(
                alpha,
                min_effect,
                tested_rows(rows),
                "inconclusive (~N s): the --seconds that would decide it",
            ),
            *([ATTRIBUTION_LEGEND] if explained else []),
        ],
        header=header,
        table=table,
        notes=[f"[{i}] raw decides: {reason}" for i, reason in enumerate(reasons, 1)],
        after=(
            [
                f"note: a self-test session: {ab['candidate_slowdown']:.0%} slowdown injected into "
                "the candidate"
            ]
            if ab.get("candidate_slowdown")
            else []
        )
        + looks_note(ab, alpha),
        total=counts([row.verdict for row in rows]) if rows else "no paired benchmarks",
        exact=exact,
        below={
            i: summary_text(explained[row.benchmark])
            for i, row in enumerate(rows)
            if row.benchmark in explained
        },
    )
    return render(verdicts, rows, style, "candidate")


def format_table(
    base_runs: list[Run],
    latest: Run,
    rows: list[Row],
    alpha: float,
    min_effect: float,
    force: bool = False,
    process_spread: bool = False,
    style: str = "text",
    exact: ExactSection | None = None,
) -> str:
    """compare's table: per benchmark the baseline's and latest time, the decided change, raw, the
    calibration's own change, Holm's p and the verdict; why, said once per reason below the table.
    Runs are named by number, commit and time (the files' paths are in --json); a named baseline's
    benchmarks that the latest run did not run are named below the table, not judged in it."""
    missing = [short_name(row.benchmark) for row in rows if row.benchmark not in latest.benchmarks()]
    rows = [row for row in rows if row.benchmark in latest.benchmarks()]
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
    changes = software_changes(base_runs, latest)
    other_series = [r for r in base_runs if r.series != latest.series]
    injected = [
        f"note: {run_name(run)} was a self-test run with an injected slowdown of {max(found):.0%}"
        for run in (*base_runs, latest)
        if (
            found := {b.get("extra_info", {}).get("injected_slowdown") for b in run.saved["benchmarks"]}
            - {None, 0}
        )
    ]
    verdicts = Verdicts(
        intro=[
            (f"series:   {describe_series(latest.fingerprint) or latest.series_name}", ""),
            (f"latest:   {run_name(latest)}", ""),
            (f"baseline: {run_names(base_runs)}", ""),
            *(
                [(f"baseline series: {describe_series(other_series[0].fingerprint)} (--force)", "")]
                if other_series
                else []
            ),
            *(
                [(f"differs:  {', '.join(changes)} (the latest run against the newest baseline run)", "")]
                if changes
                else []
            ),
            ("baseline, latest: geometric mean of the per-process median rounds (raw is their ratio)", "  "),
        ],
        legend=score_legend(alpha, min_effect, tested_rows(rows), tested),
        header=header,
        table=table,
        notes=[f"[{i}] {reason}" for i, reason in enumerate(reasons, 1)],
        after=[
            *([f"not in the latest run, so not judged: {', '.join(missing)}"] if missing else []),
            *injected,
        ],
        total=counts([row.verdict for row in rows]),
        exact=exact,
    )
    return render(verdicts, rows, style, "latest")


def format_changes(found: list[SeriesChanges], alpha: float, min_effect: float, min_runs: int) -> str:
    """Per series, the steps first (each with its runs and what differed), then the quiet benchmarks."""
    lines = wrap(
        f"steps tested at p < {alpha:g}, at least {100 * min_effect:g}%, holding {min_runs}+ runs on each "
        f"side; {100 * (1 - alpha):g}% intervals; the level after over the level before ({LEGEND})",
        "",
    )
    for series in dict.fromkeys(s.series for s in found):
        mine = [s for s in found if s.series == series]
        lines += ["", *wrap(f"series: {mine[0].described or series}", "")]
        for s in mine:
            for f in s.found:
                lines.append(f"  {short_name(s.benchmark)}" + (f" [{s.work}]" if s.work else ""))
                lines += wrap(
                    f"step {format_step(f.step)}, p = {f.step.p_value:.2g}, {s.score} ({s.why}), "
                    f"{f.step.before} runs before and {f.step.after} after; {f.shared} of {f.benchmarks} "
                    f"benchmarks stepped within {NEAR} runs of it",
                    INDENT,
                )
                lines += wrap(f"between {f.before_label} and {f.after_label}", INDENT)
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
        lines += exact_changes(mine)
    steps = sum(len(s.found) for s in found)
    lines += ["", f"{plural(steps, 'step')} in {len(found)} benchmark series"]
    uncounted = sum(not s.counted for s in found)
    if uncounted:
        lines += wrap(
            f"judged on nothing exact: {uncounted} of {len(found)} benchmark series saved no exact "
            "counts (runs saved before they were recorded)",
            "",
        )
    return "\n".join(lines)


def exact_changes(mine: list[SeriesChanges]) -> list[str]:
    """A series' exact counts: every change between successive runs that saved counts, as it is
    (no test, no interval), then how many benchmarks' counts never changed."""
    counted = [s for s in mine if s.counted]
    if not counted:
        return []
    lines = wrap("exact counts, where one changed between successive runs that saved them (as they are):")
    for s in (s for s in counted if s.exact):
        lines.append(f"  {short_name(s.benchmark)}" + (f" [{s.work}]" if s.work else ""))
        lines += [line for step in s.exact for line in step_lines(step, INDENT)]
    quiet = [s for s in counted if not s.exact]
    if quiet:
        lines.append(f"  no exact count changed in {len(quiet)} of {plural(len(counted), 'benchmark')}")
    return lines

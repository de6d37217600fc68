"""Pictures of saved runs (matplotlib, headless) and an HTML report, all written atomically.

The report reads as a dashboard: per series an overview first (one row a benchmark: its latest
time, its throughput figures, the change and verdict `compare` gives, a trend line of the score
that decided), then the charts, each drawing raw time and the calibrated score side by side, the
deciding one marked. No torch import: reports are read from results/ alone.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import textwrap
from collections.abc import Callable
from pathlib import Path

from bench.base.history import Run, by_series, comparable_runs, load_runs, replace_atomically, same_work
from bench.verdicts.changes import Found, format_step, series_changes
from bench.verdicts.compare import HISTORY_RUNS, baseline_for, judge, values_of
from bench.verdicts.exact import Compared, CountStep, change_text, counts_of, number, summarized
from bench.verdicts.notation import LEGEND, describe_series, format_change, format_seconds, plural
from bench.verdicts.stats import run_level
from bench.verdicts.summary import Measured, figures
from bench.verdicts.verdict import CALIBRATED, IMPROVEMENT, REGRESSION, Row, finish


def save_png(path: Path, draw: Callable, size: tuple[float, float] = (6, 3.5), panels: int = 0) -> bool:
    """Draw with `draw(ax)` (or `draw(axes)`, a list of `panels` axes side by side) and save a PNG
    atomically; False without matplotlib (a bare GPU runner), where nothing is drawn."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, max(1, panels), figsize=size, dpi=100, squeeze=False)
    try:
        draw(list(axes[0]) if panels else axes[0][0])
        for ax in axes[0]:
            ax.grid(alpha=0.3)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    replace_atomically(path, buffer.getvalue())
    return True


def save_accuracy_curve(
    path: Path, train_seconds: list[float], accuracy: list[float], target: float | None, title: str
) -> bool:
    """Eval accuracy against training time, with the target as a dashed line."""

    def draw(ax) -> None:
        ax.plot(train_seconds, accuracy, marker="o", markersize=3)
        if target is not None:
            ax.axhline(target, linestyle="--", color="grey", label=f"target {target}")
            ax.legend(loc="lower right")
        ax.set(xlabel="training time (s)", ylabel="eval MLM accuracy", title=title, ylim=(0, 1))

    return save_png(path, draw)


def run_label(run: Run) -> str:
    """A saved run on a chart's x-axis: its number in the series folder and when it ran, so that
    two runs of one commit are told apart."""
    number = run.path.name[:4].lstrip("0") or "0"
    return f"#{number} {run.when[5:10]} {run.when[11:16]}".strip()


def spread(values: list[float]) -> tuple[float, float, float]:
    """(geometric mean, lowest, highest) of a run's per-process values: a chart's point and bar."""
    return math.exp(run_level(values)), min(values), max(values)


def benchmark_series(runs: list[Run]) -> dict[str, list[dict]]:
    """Per benchmark (full name), one point per saved run: the raw level (geometric mean of the
    per-process medians, pytest-benchmark's median where none were saved) and the calibrated one
    (of the per-process medians of round over calibration round), each with the lowest and highest
    process; the run's label and name, the group, the figures and the slowdown a self-test injected."""
    series: dict[str, list[dict]] = {}
    for run in runs:
        for bench in run.saved["benchmarks"]:
            stats, extra = bench.get("stats", {}), bench.get("extra_info") or {}
            if "median" not in stats:
                continue
            raw = [v for v in extra.get("process_medians", []) if v > 0] or [stats["median"]]
            calibrated = [v for v in extra.get("normalized_medians", []) if v > 0]
            series.setdefault(bench.get("fullname", bench.get("name", "?")), []).append(
                {
                    "run": run_label(run),
                    "name": run.name,
                    "group": bench.get("group") or "other",
                    "raw": spread(raw),
                    "calibrated": spread(calibrated) if calibrated else None,
                    "figures": Measured(bench.get("name", "?"), bench.get("group"), stats["median"], extra),
                    "injected": extra.get("injected_slowdown") or 0,
                }
            )
    return series


def short_name(fullname: str) -> str:
    """The test and its parameters, without the module path: what a person looks for."""
    return fullname.split("::")[-1]


def time_scale(seconds: float) -> tuple[float, str]:
    return (1e3, "ms") if seconds < 1 else (1.0, "s")


ERROR_BARS = "points: geometric mean of the per-process medians; bars: the lowest and highest process"


def save_trend(path: Path, name: str, points: list[dict], steps: list[Found] = (), decided: str = "") -> bool:
    """Raw time (ms or s) and, where saved, the calibrated score (round over calibration round)
    side by side, per run; the panel of the score that decided the latest verdict says so. Runs
    with an injected slowdown (self-tests) are drawn apart and labelled, so that they are never read
    as real regressions; each change point (bench/verdicts/changes.py) is a dashed line before the
    first run after it, labelled with its size. The legend names only marks that are drawn."""
    panels = [("raw", "raw time")] + (
        [("calibrated", "calibrated")] if all(p["calibrated"] for p in points) else []
    )
    scale, unit = time_scale(max(p["raw"][0] for p in points))

    def draw(axes) -> None:
        names = [p["name"] for p in points]
        x = list(range(len(points)))
        every = math.ceil(len(points) / 12)  # at most 12 labels, so they stay readable
        for ax, (key, title) in zip(axes, panels, strict=True):
            factor = scale if key == "raw" else 1.0
            level = [p[key][0] * factor for p in points]
            low = [(p[key][0] - p[key][1]) * factor for p in points]
            high = [(p[key][2] - p[key][0]) * factor for p in points]
            ax.errorbar(x, level, yerr=[low, high], marker="o", markersize=3, capsize=3, label="_points")
            injected = [i for i, p in enumerate(points) if p["injected"]]
            if injected:
                ax.scatter(
                    injected, [level[i] for i in injected], color="red", zorder=3, label="injected slowdown"
                )
                for i in injected:
                    ax.annotate(f"+{points[i]['injected']:.0%}", (i, level[i]), fontsize=7, color="red")
            for n, found in enumerate(f for f in steps if f.first_after in names):
                at = names.index(found.first_after) - 0.5
                ax.axvline(
                    at,
                    color="darkorange",
                    linestyle="--",
                    linewidth=1.2,
                    label="change point" if n == 0 else "_step",
                )
                software = [d for d in found.differs if not d.startswith(("commit ", "python "))]
                ax.annotate(
                    "\n".join([f"step {(found.step.ratio - 1) * 100:+.1f}%", *software]),
                    (at, 1.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(3, -3),
                    textcoords="offset points",
                    va="top",
                    fontsize=7,
                    color="darkorange",
                    bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1},
                )
            if any(not label.startswith("_") for label in ax.get_legend_handles_labels()[1]):
                ax.legend(loc="best", fontsize=7)
            shown = x[::every]
            ax.set_xticks(shown, [points[i]["run"] for i in shown], rotation=45, ha="right", fontsize=7)
            ax.set_ylabel(f"median round ({unit})" if key == "raw" else "round / calibration round")
            ax.set_title(title + (" (decided)" if key == decided else ""), fontsize=9)
        axes[0].figure.suptitle("\n".join(textwrap.wrap(name, 90)), fontsize=9)

    return save_png(path, draw, size=(4.2 * len(panels) + 0.6, 3.4), panels=len(panels))


def latest_verdict(saved: list[Run], fullname: str) -> Row | None:
    """The newest of the `saved` runs that measured this benchmark against the one before it, as
    `compare` judges it (the same work, a full run never against a partial one); None with fewer
    than two such runs."""
    measured = [run for run in saved if values_of(run, fullname).process]
    if len(measured) < 2:
        return None
    latest = measured[-1]
    earlier = comparable_runs(measured, latest)
    base, refused = baseline_for(earlier, 1, fullname, latest)
    if not base and not refused:
        return None
    history = same_work(earlier, fullname, latest.work(fullname))[-HISTORY_RUNS:]
    row = (
        Row(fullname, None, None, None, None, None, "-", refused)
        if refused
        else judge(
            fullname,
            [values_of(base[0], fullname)],
            values_of(latest, fullname),
            [values_of(run, fullname) for run in history],
            confidence=0.99,
        )
    )
    return finish([row], 0.01, 0.02)[0]


def sparkline(values: list[float], color: str) -> str:
    """A small inline SVG of a series (its own scale), the last point marked in `color`."""
    width, height, pad = 120, 24, 3
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 2 * pad) / max(1, len(values) - 1)
    xy = [
        (pad + i * step, height - pad - (v - low) / span * (height - 2 * pad)) for i, v in enumerate(values)
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    x, y = xy[-1]
    return (
        f'<svg class="spark" width="{width}" height="{height}" role="img" aria-label="trend">'
        f'<polyline fill="none" stroke="#36c" stroke-width="1.5" points="{line}"/>'
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/></svg>'
    )


VERDICT_COLOR = {REGRESSION: "#b00", IMPROVEMENT: "#080"}
OVERVIEW = (
    "benchmark",
    "runs",
    "latest",
    "throughput and figures",
    "change vs previous [99%]",
    "verdict",
    "trend",
    "exact counts vs previous",
)


NOT_COUNTED = (
    "exact counts: none saved in this series (runs saved before they were recorded): judged on nothing exact"
)


def counted(run: Run) -> bool:
    """Whether any benchmark of the run saved exact counts."""
    return any(counts_of(bench.get("extra_info")) is not None for bench in run.saved["benchmarks"])


def latest_counts(saved: list[Run], fullname: str) -> str:
    """The exact counts of the newest run that measured this benchmark against the one before it
    with the same work, as they are: `no change`, the changes (operators summarized), or '' where
    either saved none (judged on nothing exact)."""
    measured = [run for run in saved if fullname in run.benchmarks()]
    if len(measured) < 2:
        return ""
    latest = measured[-1]
    before = same_work(comparable_runs(measured, latest), fullname, latest.work(fullname))
    if not before:
        return ""
    compared = Compared(
        fullname,
        counts_of(before[-1].benchmarks()[fullname].get("extra_info")),
        counts_of(latest.benchmarks()[fullname].get("extra_info")),
    )
    if compared.missing:
        return ""
    shown, left = summarized(compared.changes)
    said = [
        f"{c.key} {number(c.old)} -> {number(c.new)} ({change_text(c)}, {c.judged() or 'one side'})"
        for c in shown
    ]
    return "; ".join(said) + (f"; and {plural(left, 'more operator')}" if left else "") or "no change"


def overview_row(
    name: str,
    points: list[dict],
    row: Row | None,
    figures: dict[str, str],
    anchor: str,
    notes: list[str],
    counts: str = "",
) -> str:
    """One benchmark at a glance: its latest time in its unit, its figures, the change and verdict
    of its latest run, and the trend of the score that decided (raw where nothing did). A reason
    is said once, below the table: the cell names its number in `notes` (added to as needed)."""
    key = "calibrated" if row is not None and row.decided_by == CALIBRATED else "raw"
    verdict = row.verdict if row is not None else ""
    if row is None:
        change, said = "", "one run: nothing to compare yet"
    else:
        said = verdict
        if row.reason and row.decided_by != CALIBRATED:
            if row.reason not in notes:
                notes.append(row.reason)
            said += f" [{notes.index(row.reason) + 1}]"
        by = f" ({row.decided_by})" if row.decided else " (raw, untested)"
        change = format_change(row.decided or row.raw) + by
    trend = [p[key][0] for p in points if p[key]]
    cells = [
        f'<a href="#{anchor}" title="{html.escape(name)}">{html.escape(short_name(name))}</a>',
        str(len(points)),
        format_seconds(points[-1]["raw"][0]),
        html.escape(figures.get(points[-1]["figures"].name, "")),
        html.escape(change),
        f'<span class="v-{verdict.replace(" ", "-")}">{html.escape(said)}</span>',
        sparkline(trend, VERDICT_COLOR.get(verdict, "#36c")) if len(trend) > 1 else "",
        html.escape(counts),
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def chart_file(charts_dir: Path, series: str, name: str, taken: set[Path]) -> Path:
    """A chart's file, named by its series and benchmark (unique within the report)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{series}-{short_name(name)}").strip("_")
    path, n = charts_dir / f"{stem}.png", 1
    while path in taken:
        n += 1
        path = charts_dir / f"{stem}-{n}.png"
    taken.add(path)
    return path


def change_points(
    runs: list[Run],
) -> tuple[dict[tuple[str, str], list[Found]], list[tuple[str, str, CountStep]], str]:
    """The steps of every series and benchmark (bench/verdicts/changes.py), where their exact counts
    changed, and a note where none could be looked for (ruptures missing on a bare GPU runner)."""
    try:
        found = series_changes(runs)
    except ImportError as err:
        return {}, [], f"<p>change points not searched: {html.escape(str(err))}</p>"
    steps: dict[tuple[str, str], list[Found]] = {}
    for s in found:  # a benchmark searched once per work it measured: one chart holds them all
        steps.setdefault((s.series, s.benchmark), []).extend(s.found)
    exact = [(s.series, s.benchmark, step) for s in found for step in s.exact]
    return {key: f for key, f in steps.items() if f}, exact, ""


def count_steps_list(exact: list[tuple[str, str, CountStep]]) -> str:
    """Every change of an exact count over the history, newest first: series, benchmark, the runs
    either side, what differed, and every change as it is (old -> new, no interval)."""
    items = sorted(exact, key=lambda item: item[2].after, reverse=True)
    rows = [
        f"<li><b>{html.escape(short_name(benchmark))}</b> ({html.escape(series)}): between "
        f"{html.escape(step.before_label)} and {html.escape(step.after_label)} (differs: "
        f"{html.escape(', '.join(step.differs) or 'nothing recorded')}): "
        + html.escape(
            "; ".join(f"{c.key} {number(c.old)} -> {number(c.new)} ({change_text(c)})" for c in step.changes)
        )
        + "</li>"
        for series, benchmark, step in items
    ]
    return (
        f"<h2>Exact count changes ({len(rows)})</h2><p class='note'>as they are, no interval: the same "
        "code, stack and input count the same (docs/verdicts.md, Exact counts)</p><ul>"
        + "".join(rows)
        + "</ul>"
        if rows
        else ""
    )


def steps_list(steps: dict[tuple[str, str], list[Found]]) -> str:
    """Every change point, newest first: series, benchmark, size, the runs either side, what differed."""
    items = sorted(
        (
            (f.first_after, series, benchmark, f)
            for (series, benchmark), found in steps.items()
            for f in found
        ),
        reverse=True,
    )
    rows = [
        f"<li><b>{html.escape(short_name(benchmark))}</b> ({html.escape(series)}): step "
        f"{html.escape(format_step(f.step))} (p = {f.step.p_value:.2g}) between "
        f"{html.escape(f.before_label)} and {html.escape(f.after_label)}; "
        f"differs: {html.escape(', '.join(f.differs) or 'nothing recorded')}</li>"
        for _, series, benchmark, f in items
    ]
    return f"<h2>Change points ({len(rows)})</h2><ul>{''.join(rows)}</ul>" if rows else ""


def write_report(storage: Path, out: Path, warn) -> int:
    """One PNG trend chart per benchmark and series under `out`'s folder, and `out` itself: a
    self-contained HTML page (charts inlined): every change point first, then per series the
    overview (the latest run's regressions on top) and the charts by group. Returns the chart count."""
    runs = load_runs(storage, warn)  # before anything is written: a folder without runs is an error
    charts_dir = out.parent / f"{out.stem}_charts"
    charts_dir.mkdir(parents=True, exist_ok=True)
    steps, exact, note = change_points(runs)
    sections, charts, taken = [note or steps_list(steps) + count_steps_list(exact)], 0, set()
    for saved in by_series(runs).values():
        series = saved[0].series_name
        by_benchmark = sorted(benchmark_series(saved).items())
        latest_figures = figures([points[-1]["figures"] for _, points in by_benchmark])
        overview: list[tuple[bool, str]] = []
        notes: list[str] = []
        groups: dict[str, list[str]] = {}
        for name, points in by_benchmark:
            png = chart_file(charts_dir, series, name, taken)
            anchor = png.stem
            row = latest_verdict(saved, name)
            decided = row.decided_by if row is not None else ""  # raw, calibrated, or "-": none marked
            overview.append(
                (
                    row is not None and row.verdict == REGRESSION,
                    overview_row(
                        name, points, row, latest_figures, anchor, notes, latest_counts(saved, name)
                    ),
                )
            )
            if save_trend(png, short_name(name), points, steps.get((series, name), []), decided):
                charts += 1
                data = base64.b64encode(png.read_bytes()).decode()
                groups.setdefault(points[-1]["group"], []).append(
                    f'<figure id="{anchor}"><img alt="trend of {html.escape(short_name(name))}" '
                    f'src="data:image/png;base64,{data}"><figcaption>{html.escape(short_name(name))}'
                    "</figcaption></figure>"
                )
        regressions = sum(bad for bad, _ in overview)
        rows = [text for bad, text in overview if bad] + [text for bad, text in overview if not bad]
        folders = ", ".join(sorted({run.path.parent.name for run in saved}))
        heading = describe_series(saved[0].fingerprint) or series
        parts = [
            f"<h2>{html.escape(heading)}</h2><p>{plural(len(saved), 'saved run')} "
            f"(in {html.escape(folders)}), "
            f"the latest {html.escape(saved[-1].when[:16].replace('T', ' '))}. Changes and verdicts as "
            "<code>python -m bench compare</code> gives them for each benchmark's latest run "
            f"({html.escape(LEGEND)}); the trend is the score that decided.</p>",
            f"<h3 class='bad'>Regressions in the latest run ({regressions})</h3>" if regressions else "",
            "<table class='overview'><tr>"
            + "".join(f"<th>{h}</th>" for h in OVERVIEW)
            + "</tr>"
            + "".join(rows)
            + "</table>",
            "".join(f"<p class='note'>[{i}] {html.escape(note)}</p>" for i, note in enumerate(notes, 1)),
            "" if any(counted(run) for run in saved) else f"<p class='note'>{NOT_COUNTED}</p>",
        ]
        if groups:
            parts.append(
                f"<h3>Charts</h3><p class='note'>{ERROR_BARS}; left raw time, right the calibrated "
                "score (each round over the calibration round beside it), the one that decided the "
                "latest verdict marked; dashed lines: change points as <code>python -m bench "
                "changes</code> finds them</p>"
            )
        for group in sorted(groups):
            parts.append(f"<h4>{html.escape(group)}</h4><div class='charts'>{''.join(groups[group])}</div>")
        sections.append("".join(parts))
    page = (
        "<!doctype html><meta charset='utf-8'><title>longformer-bench history</title>"
        "<style>body{font-family:sans-serif;max-width:1500px;margin:auto}"
        "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px;vertical-align:middle;text-align:left}"
        "table{border-collapse:collapse}.bad,.v-regression{color:#b00;font-weight:bold}"
        ".v-improvement{color:#080}.note{color:#555;font-size:13px}"
        ".charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(600px,1fr));gap:8px}"
        "figure{margin:0}figure img{max-width:100%}figcaption{font-size:12px;color:#555}</style>"
        "<h1>longformer-bench history</h1>" + ("".join(sections) or "<p>No saved runs.</p>")
    )
    replace_atomically(out, page.encode("utf-8"))
    return charts

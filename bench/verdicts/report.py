"""Pictures of saved runs (matplotlib, headless) and an HTML report, all written atomically.

No torch import: reports are read from results/ alone.
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

from bench.base.history import Run, by_series, load_runs, replace_atomically
from bench.verdicts.changes import Found, format_step, series_changes
from bench.verdicts.compare import HISTORY_RUNS, judge, values_of
from bench.verdicts.notation import format_change
from bench.verdicts.verdict import CALIBRATED, REGRESSION, finish


def save_png(path: Path, draw: Callable, size: tuple[float, float] = (6, 3.5)) -> bool:
    """Draw on one set of axes with `draw(ax)` and save a PNG atomically; False without matplotlib
    (a bare GPU runner), where nothing is drawn."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=100)
    try:
        draw(ax)
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
    """A saved run on a chart's x-axis: its commit and date (its file number where none was saved)."""
    commit = (run.saved.get("commit_info") or {}).get("id") or ""
    return f"{commit[:7] or run.path.name[:4]}\n{run.when[:10]}".strip()


def benchmark_series(runs: list[Run]) -> dict[str, list[dict]]:
    """Per benchmark (full name), one point per saved run: its median, quartiles, run label and
    name, group and the slowdown a self-test injected into it (0 for a real run)."""
    series: dict[str, list[dict]] = {}
    for run in runs:
        for bench in run.saved["benchmarks"]:
            stats = bench.get("stats", {})
            if "median" not in stats:
                continue
            series.setdefault(bench.get("fullname", bench.get("name", "?")), []).append(
                {
                    "run": run_label(run),
                    "name": run.name,
                    "median": stats["median"],
                    "q1": stats.get("q1", stats["median"]),
                    "q3": stats.get("q3", stats["median"]),
                    "when": run.when,
                    "group": bench.get("group") or "other",
                    "injected": (bench.get("extra_info") or {}).get("injected_slowdown") or 0,
                }
            )
    return series


def short_name(fullname: str) -> str:
    """The test and its parameters, without the module path: what a person looks for."""
    return fullname.split("::")[-1]


def save_trend(path: Path, name: str, points: list[dict], steps: list[Found] = ()) -> bool:
    """Median per run with the interquartile range as error bars; runs with an injected slowdown
    (self-tests) drawn apart and labelled, so they are never read as real regressions; each change
    point (bench/verdicts/changes.py) a dashed line before the first run after it, labelled with its size."""
    scale, unit = (1e3, "ms") if max(p["median"] for p in points) < 1 else (1.0, "s")

    def draw(ax) -> None:
        x = range(len(points))
        medians = [p["median"] * scale for p in points]
        low = [(p["median"] - p["q1"]) * scale for p in points]
        high = [(p["q3"] - p["median"]) * scale for p in points]
        ax.errorbar(x, medians, yerr=[low, high], marker="o", markersize=3, capsize=3)
        injected = [i for i, p in enumerate(points) if p["injected"]]
        if injected:
            ax.scatter(
                injected, [medians[i] for i in injected], color="red", zorder=3, label="injected slowdown"
            )
            for i in injected:
                ax.annotate(f"+{points[i]['injected']:.0%}", (i, medians[i]), fontsize=7, color="red")
        names = [p["name"] for p in points]
        for found in steps:
            if found.first_after in names:
                at = names.index(found.first_after) - 0.5
                ax.axvline(at, color="darkorange", linestyle="--", linewidth=1.2)
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
        if injected:
            ax.legend(loc="best", fontsize=7)
        every = math.ceil(len(points) / 15)  # at most 15 labels, so they stay readable
        shown = list(x)[::every]
        ax.set_xticks(shown, [points[i]["run"] for i in shown], rotation=45, ha="right", fontsize=7)
        ax.set(ylabel=f"median ({unit})")
        ax.set_title("\n".join(textwrap.wrap(name, 60)), fontsize=9)

    return save_png(path, draw, size=(6.5, 3.6))


def latest_verdict(saved: list[Run], fullname: str) -> tuple[str, list[str]]:
    """The newest of the `saved` runs that measured this benchmark against the one before it, as
    `compare` judges: (verdict, the table cells: change, decided by, verdict with its note)."""
    measured = [v for run in saved if (v := values_of(run, fullname)).process]
    if len(measured) < 2:
        return "", ["", "", "one run: nothing to compare yet"]
    history = measured[:-1][-HISTORY_RUNS:]
    row = finish([judge(fullname, history[-1:], measured[-1], history, confidence=0.99)], 0.01, 0.02)[0]
    note = f" ({row.reason})" if row.reason and row.decided_by != CALIBRATED else ""
    return row.verdict, [
        html.escape(format_change(row.decided or row.raw)),  # the raw change where nothing decided
        row.decided_by,
        html.escape(row.verdict + note),
    ]


HEADER = (
    "benchmark",
    "runs",
    "latest median",
    "change vs previous [99% CI]",
    "decided by",
    "verdict",
    "trend",
)


def chart_file(charts_dir: Path, series: str, name: str, taken: set[Path]) -> Path:
    """A chart's file, named by its series and benchmark (unique within the report)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{series}-{short_name(name)}").strip("_")
    path, n = charts_dir / f"{stem}.png", 1
    while path in taken:
        n += 1
        path = charts_dir / f"{stem}-{n}.png"
    taken.add(path)
    return path


def table(rows: list[str]) -> str:
    return "<table><tr>" + "".join(f"<th>{h}</th>" for h in HEADER) + "</tr>" + "".join(rows) + "</table>"


def change_points(runs: list[Run]) -> tuple[dict[tuple[str, str], list[Found]], str]:
    """The steps of every series and benchmark (bench/verdicts/changes.py), and a note where none could be
    looked for (ruptures missing on a bare GPU runner)."""
    try:
        found = series_changes(runs)
    except ImportError as err:
        return {}, f"<p>change points not searched: {html.escape(str(err))}</p>"
    return {(s.series, s.benchmark): s.found for s in found if s.found}, ""


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
        f"{html.escape(f.last_before)} and {html.escape(f.first_after)}; "
        f"differs: {html.escape(', '.join(f.differs) or 'nothing recorded')}</li>"
        for _, series, benchmark, f in items
    ]
    return f"<h2>Change points ({len(rows)})</h2><ul>{''.join(rows)}</ul>" if rows else ""


def write_report(storage: Path, out: Path, warn) -> int:
    """One PNG trend chart per benchmark and series under `out`'s folder, and `out` itself: a
    self-contained HTML page (charts inlined): every change point first, then per series the latest
    run's regressions, then one table per benchmark group. Returns the chart count."""
    charts_dir = out.parent / f"{out.stem}_charts"
    charts_dir.mkdir(parents=True, exist_ok=True)
    runs = load_runs(storage, warn)
    steps, note = change_points(runs)
    sections, charts, taken = [note or steps_list(steps)], 0, set()
    for saved in by_series(runs).values():
        series = saved[0].series_name
        groups: dict[str, list[str]] = {}
        regressions: list[str] = []
        for name, points in sorted(benchmark_series(saved).items()):
            png = chart_file(charts_dir, series, name, taken)
            image = ""
            if save_trend(png, short_name(name), points, steps.get((series, name), [])):
                charts += 1
                data = base64.b64encode(png.read_bytes()).decode()
                image = (
                    f'<img alt="trend of {html.escape(short_name(name))}" src="data:image/png;base64,{data}">'
                )
            verdict, cells = latest_verdict(saved, name)
            title = f'<span title="{html.escape(name)}">{html.escape(short_name(name))}</span>'
            cells = [title, str(len(points)), f"{points[-1]['median']:.6g} s", *cells]
            row = "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + f"<td>{image}</td></tr>"
            (regressions if verdict == REGRESSION else groups.setdefault(points[-1]["group"], [])).append(row)
        folders = ", ".join(sorted({run.path.parent.name for run in saved}))
        parts = [
            f"<h2>{html.escape(series)}</h2><p>{len(saved)} saved runs (in {html.escape(folders)}); "
            "verdicts as <code>python -m bench compare</code> gives them for each benchmark's latest run; "
            "dashed lines: change points as <code>python -m bench changes</code> finds them; "
            "red points: self-test runs with an injected slowdown</p>",
        ]
        if regressions:
            parts.append(
                f"<h3 class='bad'>Regressions in the latest run ({len(regressions)})</h3>{table(regressions)}"
            )
        for group in sorted(groups):
            parts.append(f"<h3>{html.escape(group)}</h3>{table(groups[group])}")
        sections.append("".join(parts))
    page = (
        "<!doctype html><meta charset='utf-8'><title>longformer-bench history</title>"
        "<style>body{font-family:sans-serif;max-width:1400px}td,th{border:1px solid #ccc;padding:4px;"
        "font-size:13px;vertical-align:top}table{border-collapse:collapse}.bad{color:#b00}</style>"
        "<h1>longformer-bench history</h1>" + ("".join(sections) or "<p>No saved runs.</p>")
    )
    replace_atomically(out, page.encode("utf-8"))
    return charts

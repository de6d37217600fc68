"""Pictures of saved runs (matplotlib, headless) and an HTML report, all written atomically.

No torch import: reports are read from results/ alone.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from pathlib import Path

from bench.compare import HISTORY_RUNS, Run, format_change, judge, values_of
from bench.history import read_runs, replace_atomically


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


def benchmark_series(runs: list[tuple[str, dict]]) -> dict[str, list[dict]]:
    """Per benchmark (full name), one point per saved run: its median, quartiles and run label."""
    series: dict[str, list[dict]] = {}
    for name, run in runs:
        for bench in run["benchmarks"]:
            stats = bench.get("stats", {})
            if "median" not in stats:
                continue
            series.setdefault(bench.get("fullname", bench.get("name", "?")), []).append(
                {
                    "run": name[:4],
                    "median": stats["median"],
                    "q1": stats.get("q1", stats["median"]),
                    "q3": stats.get("q3", stats["median"]),
                    "when": run.get("datetime", ""),
                }
            )
    return series


def save_trend(path: Path, name: str, points: list[dict]) -> bool:
    """Median per run with the interquartile range as error bars."""
    scale, unit = (1e3, "ms") if max(p["median"] for p in points) < 1 else (1.0, "s")

    def draw(ax) -> None:
        x = range(len(points))
        medians = [p["median"] * scale for p in points]
        low = [(p["median"] - p["q1"]) * scale for p in points]
        high = [(p["q3"] - p["median"]) * scale for p in points]
        ax.errorbar(x, medians, yerr=[low, high], marker="o", markersize=3, capsize=3)
        ax.set_xticks(list(x), [p["run"] for p in points], rotation=45, fontsize=7)
        ax.set(xlabel="saved run", ylabel=f"median ({unit})", title=name[-70:])
        ax.title.set_fontsize(8)

    return save_png(path, draw, size=(6, 3))


def latest_verdict(saved: list[Run], fullname: str) -> list[str]:
    """The newest of the `saved` runs that measured this benchmark against the one
    before it, as `compare` judges."""
    measured = [v for run in saved if (v := values_of(run, fullname)).process]
    if len(measured) < 2:
        return ["", "", ""]
    history = measured[:-1][-HISTORY_RUNS:]
    row = judge(fullname, history[-1:], measured[-1], history, alpha=0.01, min_effect=0.02)
    chosen = row.raw if row.decided_by == "raw" else row.normalized
    note = f" ({row.note})" if row.note else ""
    return [html.escape(format_change(chosen)), row.decided_by, html.escape(row.verdict + note)]


def write_report(storage: Path, out: Path, warn) -> int:
    """One PNG trend chart per benchmark and fingerprint under `out`'s folder, and `out` itself: a
    self-contained HTML page (charts inlined) with a table per fingerprint. Returns the chart count."""
    charts_dir = out.parent / f"{out.stem}_charts"
    charts_dir.mkdir(parents=True, exist_ok=True)
    sections, charts = [], 0
    for folder in sorted(p for p in storage.iterdir() if p.is_dir() and p.name != charts_dir.name):
        runs = read_runs(folder, warn)
        if not runs:
            continue
        saved = [Run(folder / name, run) for name, run in runs]
        rows = []
        for index, (name, points) in enumerate(sorted(benchmark_series(runs).items())):
            png = charts_dir / f"{folder.name}-{index:03d}.png"
            image = ""
            if save_trend(png, name, points):
                charts += 1
                data = base64.b64encode(png.read_bytes()).decode()
                image = f'<img alt="trend" src="data:image/png;base64,{data}">'
            cells = [html.escape(name), str(len(points)), f"{points[-1]['median']:.6g} s"]
            cells += latest_verdict(saved, name)
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + f"<td>{image}</td></tr>")
        header = (
            "benchmark",
            "runs",
            "latest median",
            "change vs previous [99% CI]",
            "decided by",
            "verdict",
        )
        sections.append(
            f"<h2>{html.escape(folder.name)}</h2><p>{len(runs)} saved runs; verdicts as "
            "<code>python -m bench compare</code> gives them for the latest run</p><table><tr>"
            + "".join(f"<th>{h}</th>" for h in (*header, "trend"))
            + "</tr>"
            + "".join(rows)
            + "</table>"
        )
    page = (
        "<!doctype html><meta charset='utf-8'><title>longformer-bench history</title>"
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px;font-size:13px}"
        "table{border-collapse:collapse}</style><h1>longformer-bench history</h1>"
        + ("".join(sections) or "<p>No saved runs.</p>")
    )
    replace_atomically(out, page.encode("utf-8"))
    return charts

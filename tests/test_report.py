"""`python -m bench report`: trend charts and one HTML page from results/, without torch."""

from __future__ import annotations

import json
from pathlib import Path

from bench.verdicts.report import write_report


def saved_run(median: float) -> dict:
    bench = {
        "name": "test_x",
        "fullname": "bench/benchmarks/test_x.py::test_x",
        "stats": {"median": median, "q1": median * 0.9, "q3": median * 1.1},
        "extra_info": {
            "process_medians": [median, median * 1.01, median * 0.99],
            "calibration_medians": [0.005, 0.005, 0.005],
            "normalized_medians": [median / 0.005, median * 1.01 / 0.005, median * 0.99 / 0.005],
        },
    }
    return {"benchmarks": [bench], "datetime": "2026-11-28T00:00:00"}


def history(tmp_path: Path) -> Path:
    folder = tmp_path / "results" / "cpu-Some_CPU-2t-torch2.13.0-fp32-01234567"
    folder.mkdir(parents=True)
    for number, median in ((1, 0.010), (2, 0.012)):
        (folder / f"{number:04d}_run.json").write_text(json.dumps(saved_run(median)))
    (folder / "0003_run.json").write_text('{"benchmarks": [{"name": "te')  # an interrupted write
    return tmp_path / "results"


def test_report_has_a_chart_and_a_row_per_benchmark_and_skips_broken_files(tmp_path):
    warnings: list[str] = []
    out = tmp_path / "results" / "report.html"
    charts = write_report(history(tmp_path), out, warnings.append)
    page = out.read_text()
    assert charts == 1 and page.count("data:image/png;base64,") == 1
    assert "bench/benchmarks/test_x.py::test_x" in page and "2 saved runs" in page
    # the latest run's change and verdict, as compare gives them: no verdict before 5 earlier runs
    assert "+20.0%" in page and "cannot tell (1 earlier run, 5 needed" in page
    assert len(warnings) == 1 and "0003_run.json" in warnings[0]


def test_report_puts_regressions_first_groups_the_rest_and_labels_runs(tmp_path):
    """As a person reads it: the latest run's regressions at the top, then a table per benchmark
    group under short names, charts named by benchmark, x-axis by commit and date."""
    folder = tmp_path / "results" / "cpu-x"
    folder.mkdir(parents=True)
    steady = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0]
    for number, scale in enumerate(steady, start=1):
        run = saved_run(0.010 * (1.3 if number == 7 else scale))  # test_x: 30% slower in the last run
        (x,) = run["benchmarks"]
        x["group"] = "attention"
        y = {
            **saved_run(0.020 * scale)["benchmarks"][0],
            "fullname": "bench/b.py::test_y[a-b]",
            "group": "epoch",
        }
        y["extra_info"] = {**y["extra_info"], "injected_slowdown": 0.25 if number == 3 else 0.0}
        run["benchmarks"].append(y)
        run["commit_info"] = {"id": f"{number:07d}abcdef"}
        run["datetime"] = f"2026-11-{number:02d}T10:00:00"
        (folder / f"{number:04d}_run.json").write_text(json.dumps(run))
    out = tmp_path / "results" / "report.html"
    assert write_report(tmp_path / "results", out, print) == 2
    page = out.read_text()
    regressions = page.index("Regressions in the latest run (1)")
    assert regressions < page.index(">test_x<") < page.index("<h3>epoch</h3>") < page.index(">test_y[a-b]<")
    assert "<h3>attention</h3>" not in page  # its only benchmark is listed with the regressions
    charts = sorted(p.name for p in (tmp_path / "results" / "report_charts").iterdir())
    assert charts == ["cpu-x-test_x.png", "cpu-x-test_y_a-b.png"]  # runs without a fingerprint: by folder
    from bench.base.history import load_runs
    from bench.verdicts.report import benchmark_series

    points = benchmark_series(load_runs(tmp_path / "results", print))["bench/b.py::test_y[a-b]"]
    assert points[0]["run"] == "0000001\n2026-11-01" and points[0]["group"] == "epoch"
    assert [p["injected"] for p in points] == [0, 0, 0.25, 0, 0, 0, 0]

"""`python -m bench report`: trend charts and one HTML page from results/, without torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

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
    assert (
        "+20.0%" in page and "cannot tell [1]" in page and "[1] 1 earlier run, 5 needed" in page
    )  # said once
    assert len(warnings) == 1 and "0003_run.json" in warnings[0]


def dashboard_history(tmp_path: Path) -> Path:
    """7 runs of two benchmarks: test_x (an attention row with figures) 30% slower in the last run,
    test_y (an epoch group) with a self-test run at 25% injected."""
    folder = tmp_path / "results" / "cpu-x"
    folder.mkdir(parents=True)
    steady = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0]
    for number, scale in enumerate(steady, start=1):
        run = saved_run(0.010 * (1.3 if number == 7 else scale))
        (x,) = run["benchmarks"]
        x["group"] = "attention"
        x["extra_info"] = {
            **x["extra_info"],
            "implementation": "blocked",
            "tokens_per_s": 51200.0,
            "achieved_flops_per_s": 2e9,
        }
        y = {
            **saved_run(0.020 * scale)["benchmarks"][0],
            "fullname": "bench/b.py::test_y[a-b]",
            "name": "test_y[a-b]",
            "group": "epoch",
        }
        y["extra_info"] = {**y["extra_info"], "injected_slowdown": 0.25 if number == 3 else 0.0}
        run["benchmarks"].append(y)
        run["commit_info"] = {"id": f"{number:07d}abcdef"}
        run["datetime"] = f"2026-11-{number:02d}T10:0{number}:00"
        (folder / f"{number:04d}_run.json").write_text(json.dumps(run))
    return tmp_path / "results"


def test_report_reads_as_a_dashboard_overview_first_then_charts(tmp_path):
    """As a person reads it: per series an overview (the latest run's regressions on top, the
    latest time in its unit, the figures, change, verdict, a trend line), then the charts by group."""
    out = tmp_path / "results" / "report.html"
    assert write_report(dashboard_history(tmp_path), out, print) == 2
    page = out.read_text()
    overview, charts = page.index("class='overview'"), page.index("<h3>Charts</h3>")
    assert page.index("Regressions in the latest run (1)") < overview < charts
    x_row, y_row = page.index(">test_x</a>"), page.index(">test_y[a-b]</a>")
    assert overview < x_row < y_row < charts  # the regression first, then the rest
    assert "13.000 ms" in page and "blocked: 51.2k tokens/s" in page  # its unit, its figures
    assert "+32.7% [" in page and 'class="v-regression"' in page and page.count('<svg class="spark"') == 2
    assert charts < page.index("<h4>attention</h4>") < page.index("<h4>epoch</h4>")
    assert page.count('<figure id="cpu-x-test_') == 2 and 'href="#cpu-x-test_x"' in page
    assert "bars: the lowest and highest process" in page
    names = sorted(p.name for p in (tmp_path / "results" / "report_charts").iterdir())
    assert names == ["cpu-x-test_x.png", "cpu-x-test_y_a-b.png"]  # runs without a fingerprint: by folder
    from bench.base.history import load_runs
    from bench.verdicts.report import benchmark_series

    points = benchmark_series(load_runs(tmp_path / "results", print))["bench/b.py::test_y[a-b]"]
    assert points[0]["run"] == "#1 11-01 10:01" and points[0]["group"] == "epoch"  # number and time
    assert [p["injected"] for p in points] == [0, 0, 0.25, 0, 0, 0, 0]
    level, low, high = points[0]["raw"]
    assert low == pytest.approx(0.0198) and high == pytest.approx(0.0202) and low < level < high
    assert points[0]["calibrated"][0] == pytest.approx(level / 0.005)


def test_the_report_loads_in_headless_chromium_with_every_chart(tmp_path):
    """The page as a browser shows it: the overview table and every chart image decoded. CI
    installs Debian's chromium (.ci/run), so there a missing browser fails rather than skips."""
    if shutil.which("chromium") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser test: .ci/run installs Debian's chromium, and it is missing")
        pytest.skip("no chromium here (Debian's `chromium` package: apt-get install -y chromium)")
    out = tmp_path / "results" / "report.html"
    write_report(dashboard_history(tmp_path), out, print)
    probe = (
        "<script>addEventListener('load', () => { document.body.dataset.charts = "
        "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length; "
        "document.body.dataset.rows = document.querySelectorAll('table.overview tr').length; });</script>"
    )
    out.write_text(out.read_text() + probe)
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", out.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr
    assert 'data-charts="2"' in dom.stdout and 'data-rows="3"' in dom.stdout  # header + 2 benchmarks


def test_each_series_is_headed_by_its_configuration_in_words(tmp_path):
    """Two series whose folder names differ only in their hash (batch 16 and batch 4): the
    headings say the batch, and a series of one run says `1 saved run`."""
    results = tmp_path / "results"
    fingerprint = {
        "device": "cpu",
        "cpu_model": "Test CPU",
        "torch_threads": 2,
        "dtype": "fp32",
        "torch": "2.13.0",
        "run": {"attention": "hf", "batch_size": 16, "seq_len": 256},
    }
    for number, batch in ((1, 16), (2, 16), (3, 4)):
        machine = {**fingerprint, "run": {**fingerprint["run"], "batch_size": batch}}
        folder = results / f"cpu-Test_CPU-2t-fp32-{batch:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        run = {**saved_run(0.010), "machine_info": {"longformer_bench": machine}}
        run["datetime"] = f"2026-11-28T10:0{number}:00"
        (folder / f"{number:04d}_run.json").write_text(json.dumps(run))
    write_report(results, results / "report.html", print)
    page = (results / "report.html").read_text()
    headings = page.split("<h2>")[1:]
    assert [h.split("</h2>")[0] for h in headings] == [
        "cpu Test CPU; 2 threads; fp32; attention hf; batch 16 x 256 tokens",
        "cpu Test CPU; 2 threads; fp32; attention hf; batch 4 x 256 tokens",
    ]
    assert "<p>2 saved runs (in cpu-Test_CPU-2t-fp32-00000016)" in headings[0]
    assert "<p>1 saved run (in cpu-Test_CPU-2t-fp32-00000004)" in headings[1]


def test_a_folder_without_saved_runs_is_an_error_and_writes_nothing(tmp_path, capsys):
    from bench.__main__ import main

    (tmp_path / "results" / "cpu-a").mkdir(parents=True)
    assert main(["report", "--results", str(tmp_path / "results")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"error: --results {tmp_path / 'results'}: no saved runs (NNNN_*.json in a folder" in err
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["cpu-a"]  # no page, no charts

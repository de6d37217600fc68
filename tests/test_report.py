"""`python -m bench report`: trend charts and one HTML page from results/, without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.report import write_report

ROOT = Path(__file__).resolve().parents[1]


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


def test_report_command_does_not_import_torch(tmp_path):
    storage = history(tmp_path)
    code = (
        "import sys; from bench.__main__ import main; "
        f"rc = main(['report', '--results', {str(storage)!r}]); "
        "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning: skipped" in result.stderr and "report.html (1 trend charts)" in result.stdout

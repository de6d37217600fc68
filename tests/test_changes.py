"""`python -m bench changes`: steps found where they are, none in noise, labelled by what changed."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.__main__ import main
from bench.verdicts.changes import changes, find_steps, stepped_near
from bench.verdicts.report import write_report

pytest.importorskip("ruptures", reason="ruptures is in the lock; a bare GPU runner may lack it")

FINGERPRINT = {"device": "cpu", "cpu_model": "Test CPU", "torch_threads": 2, "torch": "2.13.0"}
BENCH = "bench/benchmarks/test_attention_step.py::test_attention_step[w32-L512-b2-hf-forward]"


def noisy(n: int, sd: float, seed: int, heavy: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_t(3, n) / math.sqrt(3) if heavy else rng.standard_normal(n)
    return sd * noise


def test_a_step_is_found_where_it_is_with_its_size():
    levels = noisy(40, 0.02, seed=1)
    levels[28:] += math.log(1.10)
    (step,) = find_steps(levels)
    assert step.index == 28 and (step.before, step.after) == (28, 12)
    assert step.low < 1.10 < step.high and step.ratio == pytest.approx(1.10, abs=0.02)
    assert step.p_value < 1e-6


def test_steps_up_and_back_down_are_two_steps():
    levels = noisy(45, 0.02, seed=2)
    levels[15:30] += math.log(1.15)
    assert [(s.index, s.ratio > 1) for s in find_steps(levels)] == [(15, True), (30, False)]


@pytest.mark.parametrize(("heavy", "most"), [(False, 0), (True, 20)], ids=["normal", "heavy-tailed"])
def test_noise_alone_makes_no_steps(heavy, most):
    """20 series of 100 same-code runs, noise 4% a run: normal, no step at all; Student-t with 3 df
    (odd runs, some in pairs), at most the goal's one false step per 100 runs (6 when written)."""
    found = [find_steps(noisy(100, 0.04, seed, heavy)) for seed in range(20)]
    assert sum(len(steps) for steps in found) <= most


def test_a_slow_run_or_two_is_not_a_step():
    levels = noisy(30, 0.02, seed=3)
    levels[10] += math.log(1.4)  # one outlier
    levels[20:22] += math.log(1.3)  # two slow runs in a row: fewer than min_runs
    assert find_steps(levels) == []
    assert find_steps(levels, min_runs=2) != []  # allowing two-run levels, the pair counts


def test_identical_runs_with_an_exact_step():
    levels = [0.0] * 10 + [math.log(1.05)] * 10
    (step,) = find_steps(levels)
    assert step.index == 10 and step.ratio == pytest.approx(1.05) and step.p_value == 0.0
    assert find_steps([0.0] * 20) == []


def test_steps_at_about_the_same_runs_are_counted_together():
    """A machine-wide shift lands a run or two apart in different benchmarks."""
    at = {"a": [30], "b": [31], "c": [28], "d": [12], "e": []}
    assert stepped_near(at, 30) == 3 and stepped_near(at, 12) == 1 and stepped_near(at, 20) == 0


def test_too_short_a_series_has_no_steps():
    assert find_steps([0.0, 0.0, 0.0, 1.0, 1.0]) == []  # 3 runs needed on each side


def save(
    folder: Path,
    number: int,
    scale: float,
    machine: dict,
    calibration: float = 1.0,
    injected: float = 0.0,
    work: dict | None = None,
) -> None:
    """A saved run as the suite writes it: per-process medians, calibration, normalized."""
    folder.mkdir(parents=True, exist_ok=True)
    process = [0.010 * scale * f for f in (1.0, 1.01, 0.99)]
    calibrations = [0.005 * calibration] * 3
    run = {
        "machine_info": {"longformer_bench": machine, "python_version": "3.11.7"},
        "commit_info": {"id": f"{number:02d}" + "a" * 38},
        "datetime": f"2026-11-{number:02d}T10:00:00",
        "benchmarks": [
            {
                "fullname": BENCH,
                "name": BENCH.split("::")[-1],
                "stats": {"median": process[0], "q1": process[2], "q3": process[1]},
                "extra_info": {
                    "process_medians": process,
                    "calibration_medians": calibrations,
                    "normalized_medians": [p / c for p, c in zip(process, calibrations, strict=True)],
                    "injected_slowdown": injected,
                    **(work or {}),
                },
            }
        ],
    }
    (folder / f"{number:04d}_run.json").write_text(json.dumps(run))


def upgrade_history(results: Path) -> None:
    """14 runs on torch 2.13.0, then 8 on torch 2.14.0 in a folder of their own, 12% slower."""
    noise = noisy(22, 0.015, seed=4)
    upgraded = {**FINGERPRINT, "torch": "2.14.0", "transformers": "5.30.0"}
    for n in range(1, 23):
        after = n > 14
        save(
            results / ("cpu-torch2.14" if after else "cpu-torch2.13"),
            n,
            math.exp(noise[n - 1]) * (1.12 if after else 1.0),
            upgraded if after else FINGERPRINT,
        )


def test_a_torch_upgrade_is_one_series_with_its_step_labelled(tmp_path, capsys):
    upgrade_history(tmp_path)
    (series,) = changes(tmp_path, warn=print)
    assert series.runs == 22 and series.benchmark == BENCH
    (found,) = series.found
    assert found.last_before == "cpu-torch2.13/0014_run.json"
    assert found.first_after == "cpu-torch2.14/0015_run.json"
    assert "torch 2.13.0 -> 2.14.0" in found.differs and "transformers None -> 5.30.0" in found.differs
    assert found.step.ratio == pytest.approx(1.12, abs=0.03)
    assert (found.shared, found.benchmarks) == (1, 1)
    assert main(["changes", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    at = lines.index("  attention_step[w32-L512-b2-hf-forward]")  # its name, then the step under it
    assert lines[at + 1].startswith("    step +1") and max(len(line) for line in lines) <= 100
    assert "    between #14 14aaaaaaaa 2026-11-14 10:00 and #15 15aaaaaaaa 2026-11-15 10:00" in lines
    assert "series: cpu Test CPU; 2 threads" in lines  # in words, not a folder's hash
    assert (
        "differs: commit 14aaaaaaaa -> 15aaaaaaaa, torch 2.13.0 -> 2.14.0, transformers None -> 5.30.0" in out
    )
    assert "1 step in 1 benchmark series" in out
    main(["changes", "--results", str(tmp_path), "--json"])
    (saved,) = json.loads(capsys.readouterr().out)
    assert saved["found"][0]["step"]["index"] == 14 and saved["score"] == "raw"  # the software changed
    assert (
        saved["why"]
        == "the software changed in the series (torch 2.13.0 -> 2.14.0, transformers None -> 5.30.0)"
    )


def test_a_drifting_machine_is_read_on_the_calibrated_score(tmp_path):
    """Raw times wander 20% with the machine (the calibration with them), the code does not."""
    drift = np.exp(noisy(20, 0.2, seed=5))
    for n in range(1, 21):
        save(tmp_path / "cpu", n, drift[n - 1], FINGERPRINT, calibration=drift[n - 1])
    (series,) = changes(tmp_path, warn=print)
    assert series.score == "calibrated" and series.found == []


def test_a_step_of_the_calibration_itself_is_read_on_raw_time(tmp_path):
    """Everything 30% slower from run 11 on, the calibration too, with no software change recorded
    (a library variable, a changed BLAS): the calibrated score sees nothing; raw time the step."""
    noise = np.exp(noisy(20, 0.01, seed=6))
    for n in range(1, 21):
        scale = 1.3 if n > 10 else 1.0
        save(tmp_path / "cpu", n, scale * noise[n - 1], FINGERPRINT, calibration=scale)
    (series,) = changes(tmp_path, warn=print)
    assert series.score == "raw" and series.why.startswith("the calibration itself stepped +30.0%")
    (found,) = series.found
    assert found.step.index == 10 and found.step.ratio == pytest.approx(1.3, abs=0.03)


def test_the_report_marks_and_lists_the_change_points(tmp_path):
    upgrade_history(tmp_path)
    out = tmp_path / "report.html"
    assert write_report(tmp_path, out, print) == 1
    page = out.read_text()
    assert "Change points (1)" in page and "torch 2.13.0 -&gt; 2.14.0" in page
    # at the top of the page; the series headed by its configuration in words, not a folder's hash
    assert page.index("Change points (1)") < page.index("<h2>cpu Test CPU; 2 threads</h2>")
    assert "between #14 14aaaaaaaa 2026-11-14 10:00 and #15 15aaaaaaaa 2026-11-15 10:00" in page


def test_a_plan_that_flips_is_not_a_step_in_changes_or_the_report(tmp_path, capsys):
    """24 runs of an epoch slice, on every third (a slow day) the fast plan halved: each plan's
    runs are searched on their own, and neither they nor the report's verdict see a change."""
    noise = np.exp(noisy(24, 0.01, seed=7))
    for n in range(1, 25):
        half = n % 3 == 0
        work = {"batch_size": 16, "max_samples": 16 if half else 32}
        save(tmp_path / "cpu", n, noise[n - 1] * (0.5 if half else 1.0), FINGERPRINT, work=work)
    found = changes(tmp_path, warn=print)
    assert [(s.work, s.runs, s.found) for s in found] == [
        ("max_samples 32", 16, []),
        ("max_samples 16", 8, []),
    ]
    assert main(["changes", "--results", str(tmp_path)]) == 0
    assert "no step in 2 of 2 benchmarks (8-16 runs each)" in capsys.readouterr().out
    write_report(tmp_path, tmp_path / "report.html", print)
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Change points" not in page
    assert re.findall(r'<span class="v-[^"]*">', page) == ['<span class="v-inconclusive">']


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alpha", "2"], "--alpha 2.0: must be between 0 and 1"),
        (["--min-effect", "-0.1"], "--min-effect -0.1: must be >= 0"),
        (["--min-runs", "1"], "--min-runs 1: must be at least 2"),
    ],
)
def test_bad_settings_are_named(tmp_path, capsys, args, message):
    upgrade_history(tmp_path)
    assert main(["changes", "--results", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err


def test_a_short_history_says_it_was_not_searched(tmp_path, capsys):
    for n in range(1, 6):
        save(tmp_path / "cpu", n, 1.0, FINGERPRINT)
    assert main(["changes", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "not searched yet: 1 of 1 benchmarks have fewer than 6 runs (3 on each side of a step)" in out
    assert "no step in" not in out


def test_missing_or_empty_results_are_named(tmp_path, capsys):
    assert main(["changes", "--results", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: folder does not exist" in " ".join(capsys.readouterr().err.split())
    assert main(["changes", "--results", str(tmp_path)]) == 2
    assert "no saved runs" in capsys.readouterr().err


def test_a_benchmark_filter_that_matches_nothing_is_an_error(tmp_path, capsys):
    upgrade_history(tmp_path)
    assert main(["changes", "--results", str(tmp_path), "--benchmark", "nosuch"]) == 2
    assert capsys.readouterr().err == (
        "error: --benchmark nosuch: no saved benchmark's name contains it (1 name saved, e.g.\n"
        "  attention_step[w32-L512-b2-hf-forward])\n"
    )
    assert main(["changes", "--results", str(tmp_path), "--benchmark", "hf-forward"]) == 0


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["changes"], "1 step in 1 benchmark series"),
        (["compare"], "differs:  commit 21aaaaaaaa -> 22aaaaaaaa"),
        (["report"], "report.html (1 trend chart)"),
        (["power", "--changes"], "false change points: "),
        (["runs"], "  22 runs in cpu-torch2.13, cpu-torch2.14"),
    ],
    ids=["changes", "compare", "report", "power-changes", "runs"],
)
def test_history_commands_do_not_import_torch(tmp_path, command, expected):
    """They read results/ alone, and answer in seconds (most of it importing scipy)."""
    upgrade_history(tmp_path)
    code = (
        "import sys; from bench.__main__ import main; "
        f"code = main({[*command, '--results', str(tmp_path)]!r}); "
        "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(code)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_power_changes_measures_delays_false_steps_and_the_real_injected_tail(tmp_path, capsys):
    """`power --changes` on 24 same-code runs and 6 with a real (saved) +25% slowdown after them."""
    noise = np.exp(noisy(30, 0.01, seed=6))
    for n in range(1, 31):
        tail = n > 24
        save(tmp_path / "cpu", n, noise[n - 1] * (1.25 if tail else 1.0), FINGERPRINT, injected=0.25 * tail)
    assert main(["power", "--changes", "--results", str(tmp_path), "--save", str(tmp_path / "p.json")]) == 0
    out = capsys.readouterr().out
    assert "24 runs" in out and "0 false" in out and "real +25% from run 25 (measured +2" in out
    (series,) = changes(tmp_path, warn=print)
    (found,) = series.found
    assert found.first_after == "cpu/0025_run.json" and "injected slowdown 0% -> 25%" in found.differs
    result = json.loads((tmp_path / "p.json").read_text())
    (bench,) = result["benchmarks"]
    assert len(bench["delays"]["0.25"]) == 24 - 10 - 10 + 1  # every step position from run 11 to 15
    assert all(d is not None and d <= 3 for d in bench["delays"]["0.25"])  # 25% on 1% noise: at once
    assert result["overall"]["0.25"]["within_5"] == 1.0
    assert bench["real_injected"]["observed"] == pytest.approx(1.25, abs=0.02)


def test_power_changes_needs_twenty_same_code_runs(tmp_path, capsys):
    upgrade_history(tmp_path)  # 14 runs before the upgrade, 8 after: one series of 22, but
    for path in (tmp_path / "cpu-torch2.14").iterdir():  # the last 8 marked as a self-test
        run = json.loads(path.read_text())
        run["benchmarks"][0]["extra_info"]["injected_slowdown"] = 0.12
        path.write_text(json.dumps(run))
    assert main(["power", "--changes", "--results", str(tmp_path)]) == 2
    assert "no benchmark has 20 same-code runs in one series" in " ".join(capsys.readouterr().err.split())

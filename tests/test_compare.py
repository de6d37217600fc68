"""`python -m bench compare` on histories written here: run selection, fingerprints, verdicts, exits."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.base.errors import BenchInputError
from bench.base.history import series_folder
from bench.verdicts.compare import baseline_for, compare, load_runs, select
from bench.verdicts.verdict import (
    CALIBRATED,
    IMPROVEMENT,
    INCONCLUSIVE,
    NO_CHANGE,
    RAW,
    REGRESSION,
    UNTESTABLE,
)

FINGERPRINT = {
    "device": "cpu",
    "cpu_model": "Test CPU",
    "torch_threads": 2,
    "worker_threads": 1,
    "torch": "2.13.0",
}
BENCH = "bench/benchmarks/test_attention_step.py::test_attention_step[w32-L512-b2-hf-forward]"
OTHER = "bench/benchmarks/test_epoch_throughput.py::test_epoch_throughput"
BASE = [0.0100, 0.0102, 0.0099]
CALIBRATION = [0.0050, 0.0051, 0.0050]


def save_run(
    folder: Path,
    number: int,
    scale: float = 1.0,
    digest: str = "aaaa",
    machine: dict | None = None,
    calibration_scale: float = 1.0,
    extra: dict | None = None,
) -> Path:
    """A saved run as pytest-benchmark writes it, with the per-process values the sampler keeps."""
    folder.mkdir(parents=True, exist_ok=True)
    process = [v * scale for v in BASE]
    calibration = [v * calibration_scale for v in CALIBRATION]
    benchmarks = [
        {
            "fullname": name,
            "name": name.split("::")[-1],
            "extra_info": {
                "process_medians": process,
                "calibration_medians": calibration,
                "normalized_medians": [p / c for p, c in zip(process, calibration, strict=True)],
                **(extra or {}),
            },
        }
        for name in (BENCH, OTHER)
    ]
    path = folder / f"{number:04d}_run.json"
    path.write_text(
        json.dumps(
            {
                "machine_info": {"fingerprint": digest, "longformer_bench": machine or FINGERPRINT},
                "datetime": f"2026-11-28T10:{number:02d}:00",
                "benchmarks": benchmarks,
            }
        )
    )
    return path


def verdicts(results: Path, **options) -> dict[str, str]:
    _, _, rows = compare(results, warn=lambda message: None, **options)
    return {row.benchmark: row.verdict for row in rows}


def steady_history(folder: Path, runs: int = 5) -> None:
    """Earlier runs that wander by about 0.2% from run to run: steady enough to tell no change."""
    for n in range(1, runs + 1):
        save_run(folder, n, scale=1.0 + 0.002 * ((n + 1) % 2))


def test_same_values_are_no_change_and_a_25_percent_slowdown_a_regression(tmp_path):
    folder = tmp_path / "cpu-a"
    steady_history(folder)
    save_run(folder, 6)
    assert set(verdicts(tmp_path).values()) == {NO_CHANGE}
    save_run(folder, 7, scale=1.25)
    assert set(verdicts(tmp_path).values()) == {REGRESSION}


def test_without_five_earlier_runs_there_is_no_verdict_unless_asked(tmp_path):
    folder = tmp_path / "cpu-a"
    for n in range(1, 5):
        save_run(folder, n)
    save_run(folder, 5, scale=1.25)
    _, _, rows = compare(tmp_path, warn=print)
    assert {row.verdict for row in rows} == {UNTESTABLE}
    assert all(row.reason.startswith("4 earlier runs, 5 needed for run-to-run spread") for row in rows)
    assert all(row.calibrated.ratio == pytest.approx(1.25) for row in rows)  # the change is still shown
    assert set(verdicts(tmp_path, process_spread=True).values()) == {REGRESSION}


def test_fail_on_regression_sets_the_exit_code(tmp_path, capsys):
    folder = tmp_path / "cpu-a"
    steady_history(folder)
    save_run(folder, 6, scale=1.25)
    assert main(["compare", "--results", str(tmp_path)]) == 0
    assert main(["compare", "--results", str(tmp_path), "--fail-on-regression"]) == 1
    table = capsys.readouterr().out
    assert "attention_step[w32-L512-b2-hf-forward]" in table and "regression" in table
    assert "+25.0%" in table


def test_baseline_previous_last_n_and_named(tmp_path):
    folder = tmp_path / "cpu-a"
    for n in range(1, 6):
        save_run(folder, n)
    runs = load_runs(tmp_path, print)
    candidates, latest, count = select(runs, None, "previous")
    assert latest.path.name == "0005_run.json" and count == 1
    assert [r.path.name for r in baseline_for(candidates, count, BENCH, latest)[0]] == ["0004_run.json"]
    candidates, _, count = select(runs, None, "last:3")
    assert [r.path.name for r in baseline_for(candidates, count, BENCH, latest)[0]] == [
        f"000{n}_run.json" for n in (2, 3, 4)
    ]
    candidates, _, count = select(runs, None, "2")
    assert [r.path.name for r in candidates] == ["0002_run.json"] and count is None
    candidates, latest, count = select(runs, "3", "previous")
    assert latest.path.name == "0003_run.json"
    assert [r.path.name for r in baseline_for(candidates, count, BENCH, latest)[0]] == ["0002_run.json"]


def test_the_previous_run_of_each_benchmark_is_its_baseline(tmp_path):
    """A run in between that measured other things (a convergence run, a -k subset) is passed over."""
    folder = tmp_path / "cpu-a"
    save_run(folder, 1)
    path = save_run(folder, 2, scale=5.0)
    saved = json.loads(path.read_text())
    saved["benchmarks"] = [b for b in saved["benchmarks"] if b["fullname"] == OTHER]
    path.write_text(json.dumps(saved))
    save_run(folder, 3)
    base_runs, _, rows = compare(tmp_path, warn=print, process_spread=True)
    assert {r.path.name for r in base_runs} == {"0001_run.json", "0002_run.json"}
    row_of = {row.benchmark: row for row in rows}
    assert row_of[BENCH].decided.ratio == pytest.approx(1.0)  # against run 1, not the run that lacks it
    assert row_of[OTHER].verdict == IMPROVEMENT  # against run 2, where it took 5x the time


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        ("last:0", "expected last:N with N a positive integer"),
        ("last:x", "expected last:N with N a positive integer"),
        ("9", "--baseline 9: no saved run matches it .* numbered 1 to 2"),
        ("2", "that is the latest run itself"),
    ],
)
def test_bad_baselines_are_named(tmp_path, baseline, message):
    save_run(tmp_path / "cpu-a", 1)
    save_run(tmp_path / "cpu-a", 2)
    with pytest.raises(BenchInputError, match=message):
        select(load_runs(tmp_path, print), None, baseline)


def test_a_first_run_has_nothing_to_compare_with(tmp_path, capsys):
    save_run(tmp_path / "cpu-a", 1)
    assert main(["compare", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert max(len(line) for line in err.splitlines()) <= 100
    err = " ".join(err.split())
    assert "no run before #1 no commit 2026-11-28 10:01 in its series" in err
    assert "(none of the 1 series holds two runs yet)" in err


def test_a_first_run_at_other_settings_passes_to_the_newest_comparable_run(tmp_path, capsys):
    """One run at another dtype (a new series) after two: compare the two, and say so."""
    save_run(tmp_path / "cpu-a", 1)
    save_run(tmp_path / "cpu-a", 2)
    save_run(tmp_path / "cpu-b", 3, digest="bbbb", machine={**FINGERPRINT, "dtype": "bf16"})
    assert main(["compare", "--results", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "#3 no commit 2026-11-28 10:03 is the first run of its series" in captured.err
    assert "has an earlier one, #2 no commit 2026-11-28 10:02" in captured.err
    assert "latest:   #2 no commit 2026-11-28 10:02" in captured.out
    assert main(["compare", "--results", str(tmp_path), "--latest", "3"]) == 2  # named: no fallback


def test_the_seconds_shown_are_the_ones_the_raw_change_compares(tmp_path, capsys):
    folder = tmp_path / "cpu-a"
    save_run(folder, 1)
    save_run(folder, 2, scale=1.3)
    _, _, rows = compare(tmp_path, warn=print)
    for row in rows:
        assert row.latest_seconds / row.baseline_seconds == pytest.approx(row.raw.ratio)
        assert row.reason.startswith("1 earlier run, 5 needed")  # one run: singular
    main(["compare", "--results", str(tmp_path)])
    assert "geometric mean of the per-process median rounds" in capsys.readouterr().out


def test_a_software_upgrade_is_compared_within_its_series_and_named(tmp_path, capsys):
    """torch and transformers label runs of a series: no --force, and the table says what changed."""
    folder = tmp_path / "cpu-a"
    steady_history(folder, 5)
    upgraded = {**FINGERPRINT, "torch": "2.14.0", "transformers": "5.30.0"}
    save_run(tmp_path / "cpu-a-torch2.14", 6, scale=1.5, digest="bbbb", machine=upgraded)
    assert set(verdicts(tmp_path).values()) == {REGRESSION}
    assert main(["compare", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (
        "latest:   #6 no commit 2026-11-28 10:06" in out and "baseline: #5 no commit 2026-11-28 10:05" in out
    )
    assert "differs:  torch 2.13.0 -> 2.14.0, transformers None -> 5.30.0" in out
    main(["compare", "--results", str(tmp_path), "--json"])
    assert json.loads(capsys.readouterr().out)["differs"] == [
        "torch 2.13.0 -> 2.14.0",
        "transformers None -> 5.30.0",
    ]


def test_different_series_are_refused_unless_forced(tmp_path, capsys):
    save_run(tmp_path / "cpu-a", 1)
    other = {**FINGERPRINT, "torch_threads": 16}
    save_run(tmp_path / "cpu-b", 2, digest="bbbb", machine=other, scale=2.0, calibration_scale=2.0)
    assert main(["compare", "--results", str(tmp_path), "--baseline", "cpu-a/0001_run.json"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "measured on different hardware or run configurations (torch_threads 2 vs 16)" in err
    assert "--force" in err
    _, _, rows = compare(
        tmp_path, baseline="cpu-a/0001_run.json", force=True, warn=print, process_spread=True
    )
    # twice the time on a machine that is twice as slow: only the calibrated score compares, and
    # it sees no change in size; 3 processes a side cannot narrow it to within 2%
    assert {row.decided_by for row in rows} == {CALIBRATED}
    assert all(row.calibrated.ratio == pytest.approx(1.0) for row in rows)
    assert {row.verdict for row in rows} == {INCONCLUSIVE}
    # without --process-spread the verdict waits, and the reason says why: too few runs
    _, _, rows = compare(tmp_path, baseline="cpu-a/0001_run.json", force=True, warn=print)
    assert {row.verdict for row in rows} == {UNTESTABLE}
    assert all(r.reason.startswith("0 earlier runs, 5 needed") and "--force" in r.reason for r in rows)


def test_where_the_calibration_moved_between_two_runs_nothing_is_judged(tmp_path):
    """Everything 30% slower, the calibration too: a slower torch or a slower machine, and two runs
    cannot tell them apart. The calibrated score would say no change, raw time +30%; on process
    spread alone neither is trusted (cannot tell), and the reason says why."""
    folder = tmp_path / "cpu-a"
    save_run(folder, 1)
    save_run(folder, 2, scale=1.3, calibration_scale=1.3)
    _, _, rows = compare(tmp_path, warn=print, process_spread=True)
    assert all(row.calibrated.ratio == pytest.approx(1.0) for row in rows)
    assert all(row.raw.ratio == pytest.approx(1.3) for row in rows)
    assert {row.verdict for row in rows} == {UNTESTABLE}
    assert all(
        "the calibration itself changed +30.0%" in row.reason and "cannot tell them apart" in row.reason
        for row in rows
    )


def test_where_the_calibration_moved_within_a_history_raw_time_decides(tmp_path):
    """The same +30% of both after 5 steady runs: raw time is tested against its run-to-run
    spread, which knows how far the machine wanders, and finds the regression."""
    folder = tmp_path / "cpu-a"
    steady_history(folder, 5)
    save_run(folder, 6, scale=1.3, calibration_scale=1.3)
    _, _, rows = compare(tmp_path, warn=print)
    assert {row.decided_by for row in rows} == {RAW}
    assert {row.verdict for row in rows} == {REGRESSION}


def test_a_torch_upgrade_that_slows_the_calibration_too_is_a_regression(tmp_path, capsys):
    """The hole the calibrated score had: torch 2.14 makes everything 30% slower, the calibration's
    matmul included. With history, raw time decides (the software differs), and says so."""
    folder = tmp_path / "cpu-a"
    steady_history(folder, 5)
    upgraded = {**FINGERPRINT, "torch": "2.14.0"}
    save_run(folder, 6, scale=1.3, calibration_scale=1.3, digest="bbbb", machine=upgraded)
    _, _, rows = compare(tmp_path, warn=print)
    assert {row.decided_by for row in rows} == {RAW}
    assert all("software differs (torch 2.13.0 -> 2.14.0)" in row.reason for row in rows)
    assert {row.verdict for row in rows} == {REGRESSION}
    assert main(["compare", "--results", str(tmp_path), "--fail-on-regression"]) == 1
    table = capsys.readouterr().out
    assert "raw[1]" in table and "[1] the sides' software differs (torch 2.13.0 -> 2.14.0)" in table
    assert max(len(line) for line in table.splitlines()) <= 100


def test_with_history_the_run_to_run_spread_decides(tmp_path):
    """Runs that wander by ~10% from run to run: a 10% change is within that (inconclusive, not
    "no change": the interval is far wider than 2%), 2.5 times the time is not (1.8 times is not yet:
    on the 4.2 degrees of freedom of 7 runs' successive differences: p 0.006 after Holm, over the
    0.005 a direction may have)."""
    folder = tmp_path / "cpu-a"
    for n, scale in enumerate([1.0, 1.1, 0.95, 1.05, 1.0, 0.92], start=1):
        save_run(folder, n, scale=scale)
    save_run(folder, 7, scale=1.1)
    _, _, rows = compare(tmp_path, warn=print)
    assert {row.verdict for row in rows} == {INCONCLUSIVE}
    assert all(row.decided.high / row.decided.low > 1.2 for row in rows)
    save_run(folder, 8, scale=2.0)
    assert set(verdicts(tmp_path).values()) == {INCONCLUSIVE}
    save_run(folder, 8, scale=2.75)  # run 8 again: 2.5 times run 7
    assert set(verdicts(tmp_path).values()) == {REGRESSION}


def test_benchmarks_without_per_process_values_cannot_be_judged(tmp_path):
    folder = tmp_path / "cpu-a"
    save_run(folder, 1)
    path = save_run(folder, 2)
    saved = json.loads(path.read_text())
    saved["benchmarks"][0]["extra_info"] = {}  # saved with --benchmark-disable, or before sampling
    path.write_text(json.dumps(saved))
    assert verdicts(tmp_path)[BENCH] == UNTESTABLE


def test_a_truncated_run_is_skipped_with_its_name(tmp_path):
    folder = tmp_path / "cpu-a"
    save_run(folder, 1)
    save_run(folder, 2)
    (folder / "0003_run.json").write_text('{"benchmarks": [')
    warnings = []
    _, latest, _ = compare(tmp_path, warn=warnings.append)
    assert latest.path.name == "0002_run.json"
    assert len(warnings) == 1 and "0003_run.json" in warnings[0]


def test_injected_runs_are_labelled(tmp_path, capsys):
    folder = tmp_path / "cpu-a"
    save_run(folder, 1)
    save_run(folder, 2, scale=1.25, extra={"injected_slowdown": 0.25})
    main(["compare", "--results", str(tmp_path)])
    assert "was a self-test run with an injected slowdown of 25%" in capsys.readouterr().out


FULL_SLICE, HALF_SLICE = {"batch_size": 16, "max_samples": 32}, {"batch_size": 16, "max_samples": 16}


def flipping_history(folder: Path, runs: int) -> None:
    """Every third run a slow day on which the fast plan halved the epoch slice (half the time)."""
    for n in range(1, runs + 1):
        half = n % 3 == 0
        save_run(folder, n, scale=0.5 if half else 1.0, extra=HALF_SLICE if half else FULL_SLICE)


def test_a_history_whose_plan_flips_is_not_judged_a_change(tmp_path):
    """Rows are compared like with like: each run against the newest earlier run of its own plan,
    tested on the spread of those runs alone; never a 2x regression or improvement."""
    flipping_history(tmp_path / "cpu-a", 10)
    base_runs, _, rows = compare(tmp_path, warn=print)
    assert [r.path.name for r in base_runs] == ["0008_run.json"]
    assert {row.benchmark: row.verdict for row in rows} == {BENCH: NO_CHANGE, OTHER: NO_CHANGE}
    assert all(row.raw.ratio == pytest.approx(1.0) for row in rows)
    save_run(tmp_path / "cpu-a", 11, scale=0.5, extra=HALF_SLICE)  # a slow day after a full run
    base_runs, _, rows = compare(tmp_path, warn=print, process_spread=True)
    assert [r.path.name for r in base_runs] == ["0009_run.json"]
    assert [row.raw.ratio for row in rows] == pytest.approx([1.0, 1.0])


def test_a_baseline_that_measured_other_work_is_refused_with_the_reason(tmp_path):
    flipping_history(tmp_path / "cpu-a", 4)
    _, _, rows = compare(tmp_path, baseline="3", warn=print)
    assert [row.verdict for row in rows] == [UNTESTABLE, UNTESTABLE]
    assert [row.reason for row in rows] == [
        "other work than #3 no commit 2026-11-28 10:03: max_samples 16 vs 32"
    ] * 2
    assert [row.raw for row in rows] == [None, None]


def mark_partial(path: Path) -> Path:
    """A saved run as a `-k` session saves it: marked partial, in the series' partial folder."""
    saved = json.loads(path.read_text())
    saved["longformer_bench_selection"] = {"partial": True, "keyword": "hf"}
    target = path.parent.with_name(path.parent.name + "-partial") / path.name
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(saved))
    path.unlink()
    return target


def test_a_partial_run_is_never_the_baseline_of_a_full_one(tmp_path):
    folder = tmp_path / "cpu-a"
    steady_history(folder, 5)
    mark_partial(save_run(folder, 6, scale=5.0))
    save_run(folder, 7)
    base_runs, latest, rows = compare(tmp_path, warn=print)
    assert latest.name == "cpu-a/0007_run.json" and [r.name for r in base_runs] == ["cpu-a/0005_run.json"]
    assert {row.verdict for row in rows} == {NO_CHANGE}
    base_runs, latest, rows = compare(tmp_path, latest="cpu-a-partial/0006_run.json", warn=print)
    assert latest.partial and [r.name for r in base_runs] == ["cpu-a/0005_run.json"]
    assert {row.verdict for row in rows} == {REGRESSION}


# A fingerprint as the suite saves it: its series folder and pytest-benchmark's autosave file
# names make paths of 130 columns, which no line may print.
REAL_FINGERPRINT = {
    **FINGERPRINT,
    "cpu_model": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
    "cpu_count": 2,
    "dtype": "fp32",
    "run": {
        "model": {"hidden_size": 128, "layers": 2, "heads": 4, "attention_window": 32},
        "attention": "hf",
        "batch_size": 16,
        "seq_len": 256,
    },
}


def save_autosaved(results: Path, number: int, machine: dict = REAL_FINGERPRINT, scale: float = 1.0) -> Path:
    """A run filed as the suite files it: series folder, autosave name, commit."""
    commit = f"{number:02d}" + "c" * 38
    path = save_run(results / series_folder(machine), number, scale=scale, machine=machine)
    saved = json.loads(path.read_text())
    saved["commit_info"] = {"id": commit, "dirty": True}
    named = path.with_name(f"{number:04d}_{commit}_20261128_100{number}00_uncommitted-changes.json")
    named.write_text(json.dumps(saved))
    path.unlink()
    return named


def test_runs_are_named_by_number_commit_and_time_within_100_columns(tmp_path, capsys):
    """Every line compare prints fits 100 columns: runs by number, commit and time; the series in
    words; the fallback and a skipped file's warnings wrapped."""
    first = save_autosaved(tmp_path, 1)
    save_autosaved(tmp_path, 2, scale=1.25)
    save_autosaved(tmp_path, 3, machine={**REAL_FINGERPRINT, "dtype": "bf16"})  # a series' first run
    (first.parent / "0004_broken.json").write_text('{"benchmarks": [')
    assert len(first.parent.name) + len(first.name) > 120
    assert main(["compare", "--results", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "latest:   #2 02cccccccc+dirty 2026-11-28 10:02" in lines
    assert "baseline: #1 01cccccccc+dirty 2026-11-28 10:01" in lines
    assert lines[0] == (
        "series:   cpu Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz (2 CPUs); 2 threads, 1 a worker; fp32;"
    )
    assert lines[1] == "  model 2 layers, hidden 128, 4 heads, window 32; attention hf; batch 16 x 256 tokens"
    err = " ".join(captured.err.split())
    assert f"warning: skipped {first.parent.name}/0004_broken.json: Expecting value" in err
    assert "#3 03cccccccc+dirty 2026-11-28 10:03 is the first run of its series" in err
    assert main(["compare", "--results", str(tmp_path), "--latest", "#2", "--baseline", "#1"]) == 0
    assert "latest:   #2 02cccccccc+dirty" in capsys.readouterr().out  # the numbers printed are taken
    main(["compare", "--results", str(tmp_path), "--json"])  # --json keeps the files' paths
    assert json.loads(capsys.readouterr().out)["baseline"] == [f"{first.parent.name}/{first.name}"]


def test_a_series_mismatch_names_only_the_keys_that_differ(tmp_path, capsys):
    save_autosaved(tmp_path, 1)
    other = {**REAL_FINGERPRINT, "run": {**REAL_FINGERPRINT["run"], "batch_size": 4}}
    save_autosaved(tmp_path, 2, machine=other)
    assert main(["compare", "--results", str(tmp_path), "--latest", "2", "--baseline", "1"]) == 2
    err = capsys.readouterr().err
    assert max(len(line) for line in err.splitlines()) <= 100
    assert "configurations (run.batch_size 16 vs 4): their times" in " ".join(err.split())
    assert "{" not in err  # no dict printed whole


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--results", "{tmp}/README.md"], "--results {tmp}/README.md: is a file, not a folder"),
        (["--results", "{tmp}/nowhere"], "--results {tmp}/nowhere: folder does not exist"),
        (["--results", "{tmp}/empty"], "--results {tmp}/empty: no saved runs (NNNN_*.json in a folder"),
        (["--latest", "7"], "--latest 7: no saved run matches it (a run's number, file or file name; "),
    ],
    ids=["a-file", "missing", "empty", "no-such-run"],
)
def test_a_folder_or_run_that_matches_nothing_is_named(tmp_path, capsys, args, message):
    save_run(tmp_path / "results" / "cpu-a", 1)
    (tmp_path / "README.md").write_text("# not a history\n")
    (tmp_path / "empty" / "cpu-a").mkdir(parents=True)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["compare", "--results", str(tmp_path / "results"), *args]) == 2
    assert f"error: {message.replace('{tmp}', str(tmp_path))}" in " ".join(capsys.readouterr().err.split())


def test_benchmarks_the_latest_run_did_not_run_are_named_apart_not_judged(tmp_path, capsys):
    """A named baseline of other settings (--force) ran two benchmarks, the latest one: the table
    judges that one, Holm's family is that one row, and the other is named below it."""
    save_run(tmp_path / "cpu-a", 1)
    path = save_run(tmp_path / "cpu-b", 2, digest="bbbb", machine={**FINGERPRINT, "torch_threads": 16})
    saved = json.loads(path.read_text())
    saved["benchmarks"] = [b for b in saved["benchmarks"] if b["fullname"] == BENCH]
    path.write_text(json.dumps(saved))
    args = ["compare", "--results", str(tmp_path), "--baseline", "cpu-a/0001_run.json", "--force"]
    assert main([*args, "--process-spread"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "epoch_throughput" not in [line.strip() for line in lines]  # no row of its own
    assert "not in the latest run, so not judged: epoch_throughput" in lines
    assert "after Holm over the 1 tested row" in " ".join(out.split())
    assert lines[-1] == "1 inconclusive"
    assert "baseline series: cpu Test CPU; 2 threads, 1 a worker (--force)" in lines


def test_compare_prints_markdown_and_csv(tmp_path, capsys):
    folder = tmp_path / "cpu-a"
    steady_history(folder)
    save_run(folder, 6, scale=1.25)
    assert main(["compare", "--results", str(tmp_path), "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "**series: cpu Test CPU; 2 threads, 1 a worker**"
    assert "- latest: #6 no commit 2026-11-28 10:06" in lines
    at = lines.index(
        "| benchmark | baseline | latest | change [99%] | by | raw | calib. | p Holm | verdict |"
    )
    rows = lines[at + 2 : at + 4]
    assert [row.split(" | ")[0] for row in rows] == [
        "| `attention_step[w32-L512-b2-hf-forward]`",
        "| `epoch_throughput`",
    ]
    assert all(row.endswith(" | regression |") and " | +25.0% [" in row for row in rows)
    assert "**2 regression**" in lines
    assert main(["compare", "--results", str(tmp_path), "--format", "csv", "--fail-on-regression"]) == 1
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["benchmark"] for row in rows] == [BENCH, OTHER]
    assert {row["verdict"] for row in rows} == {REGRESSION}
    assert all(float(row["change"]) == pytest.approx(0.25) for row in rows)
    assert all(
        float(row["latest_seconds"]) / float(row["baseline_seconds"]) == pytest.approx(1.25) for row in rows
    )

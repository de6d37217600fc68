"""`python -m bench ab` end to end, as the README's pull-request recipe runs it: both sides in one
session, the pair saved whole, verdicts on the terminal and as JSON, bad input refused before timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.ab import SERVERS_ENV

ROOT = Path(__file__).resolve().parents[1]
SMALL_CASE = "w32-L512-b2-blocked-forward and not backward"  # the fast profile's cheapest benchmark
# every process a server: 12 s of CPU each here; one look (tests/test_sequential.py runs more)
QUICK = ("--processes", "2", "--seconds", "2", "--looks", "1")
# A gross effect only (CI must never fail by design): twice the time, at 8 processes a side. At 4,
# on a loaded machine (load average 10-20), the injected 2x came out +94% [-14%, +340%]: raw time
# decides there (the interpreters differ), and raw process medians then spread by 10% and more.
DETECTING = ("--processes", "8", "--seconds", "2", "--looks", "1")
VERDICTS = {"regression", "improvement", "no change", "inconclusive", "cannot tell"}
# The last commit of the flat layout (bench/workloads.py, bench/spec.py): a baseline from before the
# layers moved into subpackages, which the driving checkout's worker must still build from.
FLAT_LAYOUT = "03a89b33754ff658f05f96c368a0e6593fc52763"


def bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=400,
    )


def pairs_in(results: Path) -> list[Path]:
    folder = results / "ab"
    return sorted(p for p in folder.iterdir()) if folder.exists() else []


def has_commit(commit: str) -> bool:
    found = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True)
    return found.returncode == 0


@pytest.mark.skipif(not has_commit(FLAT_LAYOUT), reason=f"a shallow clone: no commit {FLAT_LAYOUT[:7]} here")
def test_against_a_ref_of_the_flat_layout_both_sides_are_saved_as_a_pair_and_judged(tmp_path):
    """The PR check against a baseline checkout from before the layered layout: its workloads and
    spec are found at their old paths; the pair is saved whole and judged."""
    flat = subprocess.run(
        ["git", "ls-tree", "--name-only", FLAT_LAYOUT, "bench/"], cwd=ROOT, capture_output=True
    )
    assert b"bench/workloads.py" in flat.stdout and b"bench/measure" not in flat.stdout
    results = tmp_path / "results"
    run = bench(
        "ab", "--baseline-ref", FLAT_LAYOUT, *QUICK, "--results", str(results), "--json", "-k", SMALL_CASE
    )
    assert run.returncode == 0, run.stdout + run.stderr
    verdicts = json.loads(run.stdout)  # stdout holds the JSON alone; the session went to stderr
    shown = run.stderr
    assert "starting servers (each imports torch)" in shown and "4/4" in shown
    assert "[ 1/1] attention_step[w32-L512-b2-blocked-forward]" in shown and "rounds a worker" in shown
    assert "1 passed" in shown and "ab: the session took" in shown
    assert "Wrote benchmark data" not in shown and "Name (time in" not in shown  # no one-sided table
    (row,) = verdicts["benchmarks"]
    assert row["benchmark"].endswith("test_attention_step[w32-L512-b2-blocked-forward]")
    assert (
        row["verdict"] in VERDICTS and row["low"] <= row["ratio"] <= row["high"] and 0 <= row["p_value"] <= 1
    )
    baseline = verdicts["sides"]["baseline"]
    assert baseline["ref"] == FLAT_LAYOUT and baseline["commit"] == FLAT_LAYOUT
    assert baseline["suite"] != verdicts["sides"]["candidate"]["suite"]  # the worktree's own package
    assert verdicts["servers_per_side"] == 2  # one a process
    (pair,) = pairs_in(results)
    assert sorted(p.name for p in pair.iterdir()) == ["baseline.json", "candidate.json"]
    saved = {side: json.loads((pair / f"{side}.json").read_text()) for side in ("baseline", "candidate")}
    assert saved["baseline"]["ab"]["session"] == saved["candidate"]["ab"]["session"]
    assert saved["baseline"]["ab"]["side"] == "baseline"
    for side in saved.values():
        (entry,) = side["benchmarks"]
        assert entry["extra_info"]["workers"] == 2 and entry["stats"]["rounds"] >= 2 * 3
    # the baseline's worktree is gone again
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "lfbench-ab-" not in worktrees
    # compare recognizes the pair; pytest-benchmark reads both sides
    again = bench("compare", "--results", str(results), "--ab")
    assert again.returncode == 0, again.stderr
    assert "attention_step[w32-L512-b2-blocked-forward]" in again.stdout and "calib." in again.stdout
    theirs = subprocess.run(
        [
            str(Path(sys.executable).parent / "pytest-benchmark"),
            "compare",
            str(pair / "baseline.json"),
            str(pair / "candidate.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert theirs.returncode == 0, theirs.stderr
    assert "baseline" in theirs.stdout and "candidate" in theirs.stdout


def test_another_interpreter_path_and_an_injected_slowdown_is_a_regression(tmp_path):
    """--baseline-python through a wrapper script (as a second environment would be); the candidate
    twice as slow is flagged, and --fail-on-regression turns that into exit code 1; raw time decides,
    since the sides' interpreters differ. One server a side (the test-only variable): a gross
    effect does not need a server a process, which the test above runs."""
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    results = tmp_path / "results"
    run = bench(
        "ab",
        "--baseline-python",
        str(wrapper),
        *DETECTING,
        "--results",
        str(results),
        "--inject-slowdown",
        "1.0",
        "--fail-on-regression",
        "-k",
        SMALL_CASE,
        env={SERVERS_ENV: "1"},
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "regression" in run.stdout and "100% slowdown injected" in run.stdout
    said = " ".join(run.stdout.split())  # the table's notes are wrapped at 100 columns
    assert f"raw decides: the sides' software differs (interpreter {wrapper} vs" in said
    assert len(pairs_in(results)) == 1


def no_torch_python(tmp_path: Path) -> str:
    wrapper = tmp_path / "python-without-site"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--baseline-python", "{tmp}/missing"), "--baseline-python {tmp}/missing: no such file"),
        (("--baseline-python", "{tmp}"), "--baseline-python {tmp}: not an executable file"),
        (("--baseline-python", "NO_TORCH"), "--baseline-python NO_TORCH: cannot start its workers"),
        (("--baseline-ref", "no-such-ref-xyz"), "--baseline-ref no-such-ref-xyz: no such commit"),
        (("--baseline-env", "NOVALUE"), "--baseline-env 'NOVALUE': expected NAME=VALUE"),
        (("--baseline-option", "dtype=fp64"), "--dtype 'fp64': unknown dtype"),
        (("--processes", "1", "--baseline-ref", "HEAD"), "--processes 1: need at least 2"),
        (("--baseline-ref", "HEAD", "--benchmark-disable"), "--benchmark-disable: not with ab"),
        ((), "ab needs a baseline"),
    ],
)
def test_bad_input_is_refused_before_anything_is_timed(tmp_path, args, message):
    no_torch = no_torch_python(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)).replace("NO_TORCH", no_torch) for a in args]
    message = message.replace("{tmp}", str(tmp_path)).replace("NO_TORCH", no_torch)
    run = bench("ab", *args, "--results", str(tmp_path / "results"), "-k", SMALL_CASE)
    assert run.returncode in (2, 4), run.stdout + run.stderr  # ours, or pytest's usage error
    assert message in " ".join((run.stdout + run.stderr).split())  # errors wrap at 100 columns
    assert "passed" not in run.stdout
    assert not pairs_in(tmp_path / "results")


def test_a_selection_of_no_sampled_benchmark_is_an_error(tmp_path):
    """Told as an input error (exit 2), not as pytest's `no tests ran` (5); the least session that
    shows it: 2 processes a side on one server each (the servers start before collection)."""
    args = ("--baseline-option", "attention=hf", *QUICK, "--results", str(tmp_path), "-k", "nosuchbench")
    run = bench("ab", *args, env={SERVERS_ENV: "1"})
    assert run.returncode == 2, run.stdout + run.stderr
    assert "error: ab: pytest's selection (-k nosuchbench) holds no sampled benchmark" in " ".join(
        run.stderr.split()
    )
    assert not pairs_in(tmp_path)


def test_a_session_that_stops_saves_nothing(tmp_path):
    """pytest's exit code is passed on and nothing is saved; here it stops at session start, on a
    bad value of the self-tests' variable, before any server has started."""
    run = bench(
        "ab",
        "--baseline-ref",
        "HEAD",
        *QUICK,
        "--results",
        str(tmp_path / "results"),
        "-k",
        SMALL_CASE,
        env={"LFBENCH_TEST_INJECT_SLOWDOWN": "not-a-number"},
    )
    assert run.returncode == 4, run.stdout + run.stderr
    assert "$LFBENCH_TEST_INJECT_SLOWDOWN 'not-a-number': not a number" in run.stderr
    assert "ab: the pytest session ended with exit code 4; nothing saved" in run.stderr
    assert not pairs_in(tmp_path / "results")


def test_the_power_measurement_refuses_an_unknown_case():
    run = bench("power", "--ab", "--case", "nope")
    assert run.returncode == 2
    assert (
        "--case 'nope': expected one of hf-w32-L512, blocked-w128-L2048, epoch-slice, train-step, self-test"
        in (
            " ".join(run.stderr.split())  # errors wrap at 100 columns
        )
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ab"], "ab needs a baseline"),
        (["ab", "--baseline-ref", "HEAD", "--processes", "1"], "--processes 1: need at least 2"),
        (["power", "--ab", "--case", "nope"], "--case 'nope': expected one of"),
        (["power", "--ab", "--levels", "0.03,x"], "--levels 0.03,x: expected fractions separated by commas"),
        (["power", "--ab", "--levels", "0.03,0"], "--levels 0.03,0: each level must be above 0"),
        (["power", "--ab", "--levels", "0.05,0.05"], "--levels 0.05,0.05: each level must be above 0"),
        (["ab", "--baseline-option", "threads=0"], "--baseline-option threads 0: must be positive"),
    ],
    ids=[
        "no-baseline",
        "one-process",
        "unknown-case",
        "levels-not-numbers",
        "level-zero",
        "level-twice",
        "no-threads",
    ],
)
def test_bad_command_lines_are_refused_without_importing_torch(args, message):
    """In well under a second, where torch's import alone takes seconds: nothing heavy is imported
    before the command line has been checked."""
    code = (
        "import sys; from bench.__main__ import main; code = main(sys.argv[1:]); "
        "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(code)"
    )
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    assert f"error: {message}" in run.stderr and "torch was imported" not in run.stderr

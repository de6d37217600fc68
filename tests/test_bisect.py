"""`python -m bench bisect`: the search on a fake step runner (exact: the commits visited, in order,
the retries, the answer), the refusals before any step, and one live bisection of a synthetic range
(scripts/bisect_range.py) whose third commit makes the training step twice as slow."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli.ab import candidate_side, candidate_state
from bench.cli.bisect import (
    FOUND,
    NOT_REGRESSED,
    REGRESSION,
    UNDECIDED,
    AbSteps,
    Commit,
    Step,
    StepFailed,
    conclusion,
    search,
)
from bench.verdicts.notation import WIDTH
from fixtures.ab import SERVERS_ENV

ROOT = Path(__file__).resolve().parents[1]
ROW = "bench/benchmarks/test_train_step.py::test_train_step_fast"
RANGE = ("--commits", "5", "--slow", "3", "--fraction", "1.0")  # the issue's: the third doubles the step
CHANGES = {"regression": (2.0, 1.8, 2.2), "no change": (1.0, 0.99, 1.01), "inconclusive": (1.01, 0.97, 1.06)}


def commits(n: int) -> list[Commit]:
    return [Commit(f"{i:07d}" + "0" * 33, f"commit {i}") for i in range(1, n + 1)]


def row(verdict: str, name: str = ROW) -> dict:
    ratio, low, high = CHANGES.get(verdict, (None, None, None))
    return {"benchmark": name, "verdict": verdict, "ratio": ratio, "low": low, "high": high}


class FakeSteps:
    """Commit i (1-based) regressed where i >= culprit; `undecided[i]` first attempts of commit i are
    inconclusive. Keeps what it was asked, in order."""

    def __init__(self, culprit: int, undecided: dict[int, int] | None = None) -> None:
        self.culprit, self.undecided, self.asked = culprit, undecided or {}, []

    def __call__(self, commit: Commit, previous: Step | None) -> Step:
        attempt = 0 if previous is None else previous.attempt + 1
        number = int(commit.subject.split()[1])
        self.asked.append((number, attempt))
        if attempt < self.undecided.get(number, 0):
            verdict = "inconclusive"
        else:
            verdict = "regression" if number >= self.culprit else "no change"
        return Step(commit, attempt, 3, 3.0 * 2**attempt, [row(verdict)], 10.0)  # as ab's rounds decide


def bisect_fake(n: int, steps: FakeSteps, retries: int = 2):
    shown = []
    result = search(commits(n), steps, retries, shown.append)
    assert shown == result.steps  # every step shown as it ended, in order
    return result


def test_eight_commits_the_bad_end_first_then_midpoints_to_the_culprit():
    steps = FakeSteps(culprit=5)
    result = bisect_fake(8, steps)
    assert steps.asked == [(8, 0), (4, 0), (6, 0), (5, 0)]
    assert result.status == FOUND and result.culprit.commit.subject == "commit 5"
    assert result.parent.commit.subject == "commit 4" and result.parent.outcome == "no regression"
    assert result.left == []


def test_the_first_commit_of_the_range_has_good_as_its_parent():
    steps = FakeSteps(culprit=1)
    result = bisect_fake(5, steps)
    assert steps.asked == [(5, 0), (2, 0), (1, 0)]
    assert result.status == FOUND and result.culprit.commit.subject == "commit 1"
    assert result.parent is None  # good itself, the baseline of every step


def test_an_inconclusive_step_is_sampled_again_with_twice_the_seconds_before_it_moves_on():
    steps = FakeSteps(culprit=3, undecided={2: 2})
    result = bisect_fake(5, steps)
    assert steps.asked == [(5, 0), (2, 0), (2, 1), (2, 2), (3, 0)]
    assert [s.seconds for s in result.steps] == [3.0, 3.0, 6.0, 12.0, 3.0]
    assert [s.outcome for s in result.steps] == [
        REGRESSION,
        UNDECIDED,
        UNDECIDED,
        "no regression",
        REGRESSION,
    ]
    assert result.status == FOUND and result.culprit.commit.subject == "commit 3"
    assert result.parent.attempt == 2  # the evidence is the attempt that decided


def test_a_step_still_inconclusive_after_the_retries_stops_with_the_range_left():
    steps = FakeSteps(culprit=6, undecided={4: 3})
    result = bisect_fake(8, steps, retries=2)
    assert steps.asked == [(8, 0), (4, 0), (4, 1), (4, 2)]
    assert result.status == UNDECIDED and result.culprit is None
    assert [c.subject for c in result.left] == [f"commit {i}" for i in range(1, 9)]
    steps = FakeSteps(culprit=2, undecided={6: 1})
    result = bisect_fake(8, steps, retries=0)
    assert steps.asked == [(8, 0), (4, 0), (2, 0), (1, 0)]
    assert result.status == FOUND  # commit 6 was never asked
    steps = FakeSteps(culprit=7, undecided={6: 1})
    result = bisect_fake(8, steps, retries=0)
    assert steps.asked == [(8, 0), (4, 0), (6, 0)]
    left = [c.subject for c in result.left]
    assert result.status == UNDECIDED and left == ["commit 5", "commit 6", "commit 7", "commit 8"]


def test_a_bad_end_that_did_not_regress_stops_at_once():
    steps = FakeSteps(culprit=99)
    result = bisect_fake(8, steps)
    assert steps.asked == [(8, 0)] and result.status == NOT_REGRESSED and result.culprit is None
    steps = FakeSteps(culprit=1, undecided={8: 5})
    result = bisect_fake(8, steps, retries=1)
    assert steps.asked == [(8, 0), (8, 1)] and result.status == UNDECIDED and len(result.left) == 8


def test_any_culprit_of_any_range_is_found_in_a_logarithmic_number_of_steps():
    draw = random.Random(31)
    for _ in range(200):
        n = draw.randint(1, 40)
        culprit = draw.randint(1, n)
        steps = FakeSteps(culprit)
        result = bisect_fake(n, steps)
        assert result.status == FOUND and result.culprit.commit.subject == f"commit {culprit}"
        assert len(steps.asked) <= 1 + math.ceil(math.log2(n))
        assert len(set(steps.asked)) == len(steps.asked)  # no commit sampled twice


def test_the_end_names_the_commit_and_its_evidence_or_the_range_left():
    found = conclusion(bisect_fake(8, FakeSteps(culprit=5)), "v1")
    assert found[0] == "bisect: the first regression is 0000005 commit 5"
    assert found[2].startswith("0000005  commit 5") and "regression" in found[2]
    assert found[3].startswith("0000004  commit 4") and "no change" in found[3]
    first = conclusion(bisect_fake(8, FakeSteps(culprit=1)), "v1")
    assert first[3] == "its parent is --good v1 itself"
    left = conclusion(bisect_fake(8, FakeSteps(culprit=7, undecided={6: 9}), retries=1), "v1")
    assert left == [
        "bisect: undecided after the retries: the first regression is one of 4 commits",
        "  0000005..0000008: bisect again with --good 0000004 --bad 0000008",
        "  and more --processes, --seconds or --retries",
    ]
    end = conclusion(bisect_fake(8, FakeSteps(culprit=7, undecided={8: 9}), retries=0), "v1")
    assert end[0].endswith("the first regression, if any, is one of 8 commits")
    assert end[1] == "  0000001..0000008: bisect again with --good v1 --bad 0000008"
    none = conclusion(bisect_fake(8, FakeSteps(culprit=9)), "v1")
    assert none == ["bisect: the bad end is no regression against the good one: nothing to find"]
    assert all(len(line) <= WIDTH for text in (found, first, left, end, none) for line in text)


def test_a_regression_of_any_selected_row_counts_and_the_line_names_it():
    rows = [row("no change", "a::test_one"), row("regression", "a::test_two")]
    step = Step(commits(1)[0], 0, 3, 3.0, rows, 42.0)
    assert step.outcome == REGRESSION and step.row["benchmark"] == "a::test_two"
    first, second = step.line().split("\n")
    assert first.startswith("0000001  commit 1") and "regression" in first
    assert "+100.0% [+80.0%, +120.0%]" in first and first.endswith("42 s")
    assert second.strip() == "on two"
    rows = [row("no change", "a::test_one"), row("inconclusive", "a::test_two")]
    step = Step(commits(1)[0], 1, 6, 6.0, rows, 9.0)
    assert step.outcome == UNDECIDED and step.row["benchmark"] == "a::test_two"
    assert step.line().split("\n")[0].endswith("9 s  retry 1: 6x6 s")
    long = Step(Commit("f" * 40, "x" * 200), 2, 40, 160.0, [row("cannot tell")], 9999.0)
    assert long.outcome == UNDECIDED and all(len(line) <= WIDTH for line in long.line().split("\n"))


def test_an_inconclusive_interval_below_the_minimum_effect_is_no_regression():
    """Bisect's question is one-sided: an interval undecided only towards an improvement is no
    regression; one that reaches +min-effect is sampled again."""
    below = {**row("inconclusive"), "ratio": 0.81, "low": 0.65, "high": 1.01}
    step = Step(commits(1)[0], 0, 8, 2.0, [below], 50.0, 0.02)
    assert step.outcome == "no regression" and "not slower    -19.0% [-35.0%, +1.0%]" in step.line()
    reaching = {**below, "high": 1.03}
    assert Step(commits(1)[0], 0, 8, 2.0, [reaching], 50.0, 0.02).outcome == UNDECIDED
    assert Step(commits(1)[0], 0, 8, 2.0, [reaching], 50.0, 0.3).outcome == "no regression"
    assert Step(commits(1)[0], 0, 8, 2.0, [reaching, row("inconclusive")], 1.0, 0.02).outcome == UNDECIDED
    assert Step(commits(1)[0], 0, 8, 2.0, [reaching, row("regression")], 1.0, 0.02).outcome == REGRESSION
    untested = {**row("cannot tell"), "ratio": None, "low": None, "high": None}
    assert Step(commits(1)[0], 0, 8, 2.0, [untested], 1.0, 0.3).outcome == UNDECIDED


def test_a_retry_doubles_the_processes_where_they_decide_else_the_seconds():
    steps = AbSteps("a" * 40, "train_step_fast", 3, 2.5, ["-m", "pr", "--looks", "3"], 0.05, 0.3)
    assert steps.size(None) == (3, 2.5)
    spread = Step(commits(1)[0], 0, 3, 2.5, [{**row("inconclusive"), "decides_with": "more processes"}], 1.0)
    assert steps.size(spread) == (6, 5.0)  # each process keeps its rounds
    rounds = Step(commits(1)[0], 1, 6, 5.0, [{**row("inconclusive"), "decides_with": "est. ~40 s"}], 1.0)
    assert steps.size(rounds) == (6, 10.0)
    edge = Step(commits(1)[0], 1, 6, 5.0, [{**row("inconclusive"), "decides_with": "on the edge"}], 1.0)
    assert steps.size(edge) == (6, 10.0)
    assert steps.command(commits(1)[0], 6, 10.0)[1:] == [
        *("-m", "bench", "ab", "--baseline-ref", "a" * 40, "--candidate-ref", commits(1)[0].sha),
        *("-k", "train_step_fast", "--processes", "6", "--seconds", "10"),
        *("--alpha", "0.05", "--min-effect", "0.3", "--format", "json"),
        *("-m", "pr", "--looks", "3"),  # passed untouched
    ]


def test_a_step_reads_abs_json_and_an_ab_that_ends_without_it_stops_the_search(monkeypatch):
    answers = [
        subprocess.CompletedProcess([], 0, json.dumps({"benchmarks": [row("regression")]}), ""),
        subprocess.CompletedProcess([], 2, "", "error: ab: pytest's selection holds no sampled benchmark"),
    ]
    monkeypatch.setattr("bench.cli.bisect.subprocess.run", lambda *args, **kwargs: answers.pop(0))
    steps = AbSteps("a" * 40, "nosuchbench", 3, 2.0, [])
    step = steps(commits(1)[0], None)
    assert (step.outcome, step.attempt, step.processes, step.seconds) == (REGRESSION, 0, 3, 2.0)
    with pytest.raises(StepFailed, match="holds no sampled benchmark") as failed:
        steps(commits(1)[0], None)
    assert failed.value.code == 2


def test_ab_candidate_ref_is_a_worktree_of_that_commit():
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    assert candidate_state("HEAD") == {"commit": head, "dirty": False}
    with contextlib.ExitStack() as stack:
        side = candidate_side("HEAD", stack)
        root = side.root
        assert side.name == "candidate" and side.ref == "HEAD" and root != ROOT
        assert (root / "bench" / "measure" / "workloads.py").exists()
        checked_out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
        assert checked_out.stdout.strip() == head
    assert not root.exists()  # removed with the stack


def bench(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def has_parent() -> bool:
    return (
        subprocess.run(["git", "rev-parse", "--verify", "HEAD~1"], cwd=ROOT, capture_output=True).returncode
        == 0
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--good", "no-such-ref-xyz", "--bad", "HEAD"), "--good no-such-ref-xyz: no such commit"),
        (("--good", "HEAD", "--bad", "no-such-ref-xyz"), "--bad no-such-ref-xyz: no such commit"),
        (("--good", "HEAD", "--bad", "HEAD"), "--good HEAD and --bad HEAD: the same commit, an empty range"),
        (("--good", "HEAD", "--bad", "HEAD~1"), "--good HEAD: not an ancestor of --bad HEAD~1"),
        (("--good", "HEAD~1", "--bad", "HEAD", "--retries", "x"), "--retries x: expected a whole number"),
        (("--good", "HEAD~1", "--bad", "HEAD", "--processes", "1"), "--processes 1: need at least 2"),
        (("--good", "HEAD~1", "--bad", "HEAD", "--min-effect", "-1"), "--min-effect -1.0: must be >= 0"),
        (
            ("--good", "HEAD~1", "--bad", "HEAD", "--baseline-option", "a=b"),
            "--baseline-option: not with bisect",
        ),
    ],
    ids=[
        "unknown-good",
        "unknown-bad",
        "empty",
        "not-ancestor",
        "retries",
        "processes",
        "min-effect",
        "baseline",
    ],
)
@pytest.mark.skipif(not has_parent(), reason="a clone of one commit: no HEAD~1 to make a range with")
def test_bad_ranges_and_options_are_refused_before_any_step(args, message):
    run = bench("bisect", *args, "-k", "train_step_fast")
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"error: {message}" in " ".join(run.stderr.split())  # errors wrap at 100 columns
    assert "bisect:" not in run.stdout  # not one step began


def test_ab_refuses_an_unknown_candidate_ref_before_anything_runs(tmp_path):
    run = bench("ab", "--baseline-ref", "HEAD", "--candidate-ref", "no-such-ref-xyz", "-k", "train_step_fast")
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"error: --candidate-ref no-such-ref-xyz: no such commit in {ROOT}" in " ".join(run.stderr.split())
    assert "starting servers" not in run.stderr


def test_a_refused_range_imports_no_torch():
    """Refused at once: nothing heavy is imported before the refs have been checked."""
    code = (
        "import sys; from bench.__main__ import main; code = main(sys.argv[1:]); "
        "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(code)"
    )
    args = ["bisect", "--good", "no-such-ref-xyz", "--bad", "HEAD", "-k", "train_step_fast"]
    run = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert (
        "error: --good no-such-ref-xyz: no such commit" in run.stderr
        and "torch was imported" not in run.stderr
    )


def test_k_is_required():
    run = bench("bisect", "--good", "HEAD", "--bad", "HEAD")
    assert run.returncode == 2 and "the following arguments are required: -k" in run.stderr


def test_a_live_range_of_five_commits_whose_third_doubles_the_step_names_the_third(tmp_path):
    """Gross effect only: 2x, one server a side (the test-only variable). The bad end, then commits
    2 and 3: 3 ab sessions. At 8 processes a side, as tests/test_ab_command.py detects its 2x: at 3
    (the issue's 3 x 3 s), with two other test runs beside it (load 6), the bad end's 2x came out
    +140% [-5%, +504%] and +96% [-39%, +532%], and only a third session at 6 x 12 s decided it.
    A step that is still inconclusive is retried (up to 3 times) before the search moves on."""
    repo = tmp_path / "range"
    made = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bisect_range.py"), str(repo), *RANGE],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    listed = subprocess.run(
        ["git", "log", "--reverse", "--format=%H %s"], cwd=repo, capture_output=True, text=True
    )
    history = [line.split(" ", 1) for line in listed.stdout.splitlines()]
    assert len(history) == 6 and history[3][1].startswith("commit 3: train_step does 100% more work")
    # the smallest change that counts set for the 2x sought (passed through to ab): same code is then
    # "no change" at 3 processes, where +-2% (the default) would leave it inconclusive on a busy machine
    quick = ["--processes", "8", "--seconds", "2", "--min-effect", "0.3", "--retries", "2"]
    quick += ["--results", str(tmp_path / "results"), "--format", "json"]
    run = bench(
        "bisect",
        "--good",
        "good",
        "--bad",
        "bad",
        "-k",
        "train_step_fast",
        *quick,
        cwd=repo,
        env={SERVERS_ENV: "1"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    found = json.loads(run.stdout)
    assert found["status"] == FOUND and found["culprit"]["commit"] == history[3][0], run.stderr
    assert found["good"] == history[0][0] and found["bad"] == history[5][0]
    visited = [step["commit"] for step in found["steps"] if step["outcome"] != UNDECIDED]
    assert visited == [history[5][0], history[2][0], history[3][0]]
    assert found["parent"]["commit"] == history[2][0] and found["parent"]["outcome"] == "no regression"
    assert (
        found["culprit"]["rows"][0]["verdict"] == "regression" and found["culprit"]["rows"][0]["ratio"] > 1.3
    )
    # every step's pair saved, its sides the commits compared (ab --candidate-ref's record)
    pairs = sorted((tmp_path / "results" / "ab").iterdir())
    assert len(pairs) == len(found["steps"])
    for pair, step in zip(pairs, found["steps"], strict=True):
        sides = json.loads((pair / "candidate.json").read_text())["ab"]["sides"]
        assert sides["baseline"]["commit"] == history[0][0] and sides["candidate"]["ref"] == step["commit"]
        assert sides["candidate"]["commit"] == step["commit"] and sides["candidate"]["dirty"] is False
    assert run.stderr.startswith("bisect: 5 commits, good") and all(
        len(x) <= WIDTH for x in run.stderr.splitlines()
    )

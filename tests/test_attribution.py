"""Where the time went (bench/verdicts/attribution.py), on seeded synthetic profiles: the change per
operator and its interval (against scipy's Welch test), the ranking, operators added and gone,
Holm over a row's operators, and the attribution in ab's table, markdown and JSON."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats

from bench.cli.common import judge_and_print_pair
from bench.measure.ab import BASELINE, CANDIDATE
from bench.measure.sampling import Job, ProcessSample, profile_summary
from bench.verdicts.attribution import (
    ALL,
    AUTO,
    NONE,
    Attribution,
    OpChange,
    as_json,
    attribute,
    attributions,
    shown,
    summary_text,
)
from bench.verdicts.notation import WIDTH
from bench.verdicts.pairs import side_json
from bench.verdicts.verdict import Row, holm
from fixtures.ab import SERVERS_ENV

ROOT = Path(__file__).resolve().parents[1]

ALPHA = 0.01
NAME = "bench/x.py::test_x"
# per operator: (mean self us a round on the baseline, on the candidate, the processes' spread, calls
# a round on each side); the candidate's gelu 1.5 ms slower, mm a little and noisily, foo new, bar gone
OPS = {
    "aten::gelu": (1000.0, 2500.0, 20.0, (3, 3)),
    "aten::mm": (5000.0, 5100.0, 300.0, (36, 36)),
    "aten::add": (400.0, 400.0, 10.0, (18, 20)),
    "aten::foo": (0.0, 50.0, 1.0, (0, 2)),
    "aten::bar": (30.0, 0.0, 1.0, (1, 0)),
}


def synthetic(side: int, processes: int, seed: int, ops: dict = OPS) -> list[dict]:
    """Each process's profiled round as the worker reports it (profile.py), seeded."""
    rng = random.Random(seed)
    out = []
    for _ in range(processes):
        table = {}
        for op, (*means, spread, calls) in ops.items():
            if calls[side]:
                table[op] = [
                    max(0.0, rng.gauss(means[side], spread)) if means[side] else 0.0,
                    calls[side],
                    0.0,
                ]
        out.append({"ops": table, "device": False, "seconds": 0.3})
    return out


def saved(processes: int = 5, seed: int = 1, ops: dict = OPS) -> tuple[dict, dict]:
    """Both sides' extra_info["profile"] as sampling.py's summary keeps it."""
    sides = []
    for side in (0, 1):
        samples = [
            ProcessSample(pid, profile=p)
            for pid, p in enumerate(synthetic(side, processes, seed + side, ops))
        ]
        sides.append(profile_summary(samples))
    return sides[0], sides[1]


def by_op(attribution: Attribution) -> dict[str, OpChange]:
    return {op.op: op for op in attribution.ops}


def test_each_operators_change_and_interval_are_welchs_over_processes():
    base, cand = saved()
    attribution = attribute(base, cand, ALPHA)
    assert attribution.timing == "cpu" and attribution.processes == (5, 5)
    for op in sorted(OPS):
        b = [row[base["ops"].index(op)] / 1000 if op in base["ops"] else 0.0 for row in base["self_us"]]
        c = [row[cand["ops"].index(op)] / 1000 if op in cand["ops"] else 0.0 for row in cand["self_us"]]
        change = by_op(attribution)[op]
        test = stats.ttest_ind(c, b, equal_var=False)
        low, high = test.confidence_interval(1 - ALPHA)
        assert change.change_ms == pytest.approx(sum(c) / 5 - sum(b) / 5, abs=1e-12)
        assert (change.low_ms, change.high_ms) == pytest.approx((low, high), rel=1e-9)
        assert change.p_value == pytest.approx(test.pvalue, rel=1e-9)
        assert change.baseline_ms == pytest.approx(sum(b) / 5)
    gelu = by_op(attribution)["aten::gelu"]
    assert gelu.relative == pytest.approx(gelu.change_ms / gelu.baseline_ms)
    assert sum(op.share for op in attribution.ops) == pytest.approx(1.0)
    assert attribution.change_ms == pytest.approx(sum(op.change_ms for op in attribution.ops))
    assert by_op(attribution)["aten::foo"].relative is None  # no baseline time to be relative to


def test_operators_rank_significant_first_then_by_size_and_holm_decides_significance():
    attribution = attribute(*saved(), ALPHA)
    ranked = [op.op for op in attribution.ops]
    assert ranked[0] == "aten::gelu"
    significant = [op.significant for op in attribution.ops]
    assert significant == sorted(significant, reverse=True)  # every significant one before the rest
    for group in (True, False):
        sizes = [abs(op.change_ms) for op in attribution.ops if op.significant is group]
        assert sizes == sorted(sizes, reverse=True)
    assert [op.p_adjusted for op in attribution.ops] == holm([op.p_value for op in attribution.ops])
    assert all(op.significant == (op.p_adjusted < ALPHA) for op in attribution.ops)
    assert by_op(attribution)["aten::gelu"].significant and not by_op(attribution)["aten::mm"].significant


def test_operators_added_and_gone_and_every_call_count_change_are_exact():
    attribution = attribute(*saved(), ALPHA)
    assert attribution.added == [("aten::foo", 0, 2)]
    assert attribution.gone == [("aten::bar", 1, 0)]
    assert attribution.calls_changed == [("aten::add", 18, 20), ("aten::bar", 1, 0), ("aten::foo", 0, 2)]
    assert by_op(attribution)["aten::mm"].calls == (36, 36)


def test_on_the_same_code_an_operator_is_called_significant_in_at_most_alpha_of_the_rows():
    """2,000 seeded rows, 30 operators of different sizes and spreads, 5 processes a side, both
    sides drawn alike: Holm keeps the rows with any operator significant below 1%."""
    rng = random.Random(7)
    flagged = 0
    rows = 2000
    for trial in range(rows):
        ops = {
            f"aten::op{i}": (m, m, m * rng.uniform(0.02, 0.3), (3, 3))
            for i, m in enumerate([100.0 * (i + 1) for i in range(30)])
        }
        attribution = attribute(*saved(5, 1000 + 2 * trial, ops), ALPHA)
        flagged += any(op.significant for op in attribution.ops)
    assert flagged <= ALPHA * rows


def test_a_row_without_profiles_or_with_too_few_says_why():
    base, cand = saved(processes=1)
    assert attribute(None, cand, ALPHA) == "not profiled (ab --explain all profiles every row)"
    assert attribute(base, cand, ALPHA) == "profiled in 1 and 1 processes: too few for an interval (2 a side)"
    assert as_json("not profiled") == {"none": "not profiled"} and as_json(None) is None


def row(verdict: str, name: str = NAME) -> Row:
    return Row(name, 1.0, 1.5, None, None, None, "raw", "", verdict=verdict)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (AUTO, ["regression", "improvement"]),
        (ALL, ["regression", "improvement", "no change", "inconclusive"]),
        (NONE, []),
    ],
)
def test_explain_auto_shows_the_rows_judged_a_change_all_every_row_none_none(mode, expected):
    rows = [row(v, f"b{i}") for i, v in enumerate(["regression", "improvement", "no change", "inconclusive"])]
    assert [r.verdict for r in rows if shown(r, mode)] == expected
    found = attributions({}, rows, ALPHA, mode)
    assert list(found) == [r.benchmark for r in rows if shown(r, mode)]


def fake_pair(explain: str, processes: int = 5) -> dict[str, dict]:
    """A saved pair of one benchmark, the candidate 1.5 times slower, each side profiled."""
    job = Job("attention_step", {}, rounds=3, profiled=True)

    def samples(side: int, scale: float) -> list[ProcessSample]:
        profiles = synthetic(side, processes, 10 + side)
        return [
            ProcessSample(pid, [scale * (1 + 0.01 * pid + 0.001 * i) for i in range(3)], [1.0] * 3, profile=p)
            for pid, p in enumerate(profiles)
        ]

    pairs = {NAME: ({BASELINE: job, CANDIDATE: job}, {BASELINE: samples(0, 1.0), CANDIDATE: samples(1, 1.5)})}
    candidate_json = {"benchmarks": [{"fullname": NAME, "name": "test_x", "extra_info": {}, "stats": {}}]}
    info = {
        "session": "s1",
        "sides": {BASELINE: {}, CANDIDATE: {}},
        "processes": processes,
        "explain": explain,
    }
    return {side: side_json(candidate_json, side, pairs, 1, info) for side in (BASELINE, CANDIDATE)}


def judged(pair: dict, style: str) -> str:
    args = argparse.Namespace(
        alpha=ALPHA,
        min_effect=0.02,
        format=style,
        json=False,
        markdown=False,
        fail_on_regression=False,
        fail_on_growth=False,
        growth_kinds=None,
        memory_tolerance=None,
    )
    with contextlib.redirect_stdout(io.StringIO()) as out:
        judge_and_print_pair(args, pair, None)
    return out.getvalue()


def test_the_table_names_the_top_operators_under_a_regression_within_100_columns():
    text = judged(fake_pair(AUTO), "text")
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    first = lines.index("x") + 2  # the name, its figures, then where its time went
    assert lines[first].startswith("    where (cpu time of a profiled round, 5+5 processes): +")
    where = " ".join(" ".join(lines[first : first + 4]).split())
    assert (
        "ms in all; aten::gelu +1.5" in where
        and "added aten::foo (0 -> 2 calls); gone aten::bar (1 -> 0 calls)" in where
    )
    assert "where: the operators whose self time changed most" in " ".join(text.split())
    assert "where (" not in judged(fake_pair(NONE), "text")


def test_the_json_and_markdown_carry_the_attribution():
    result = json.loads(judged(fake_pair(AUTO), "json"))
    (entry,) = result["benchmarks"]
    assert entry["verdict"] == "regression"
    attribution = entry["attribution"]
    assert attribution["top"][0]["op"] == "aten::gelu" and attribution["significant"][0] == "aten::gelu"
    assert attribution["added"] == [["aten::foo", 0, 2]] and attribution["gone"] == [["aten::bar", 1, 0]]
    assert attribution["processes"] == [5, 5] and len(attribution["top"]) == 5
    assert json.loads(judged(fake_pair(NONE), "json"))["benchmarks"][0]["attribution"] is None
    markdown = judged(fake_pair(ALL), "markdown")
    assert "- `x` where (cpu time of a profiled round, 5+5 processes): +" in markdown
    assert summary_text(attribute(*saved(), ALPHA)).startswith("where (cpu time")


STRUCTURAL = ROOT / "scripts" / "structural"
GELU_TIMES = "40"  # a gross slowdown of aten::gelu alone (sitecustomize.py's slow-gelu)


def test_a_slowdown_of_one_operator_is_attributed_to_it_live(tmp_path):
    """ab with slow-gelu injected into the candidate (as scripts/structural/sessions.py runs it),
    every row explained: aten::gelu comes first, its calls changed exactly, and re-judging the
    saved pair (compare --ab) gives the same attribution."""
    results = tmp_path / "results"
    env = {
        **os.environ,
        SERVERS_ENV: "1",
        "LFBENCH_STRUCTURAL": "slow-gelu",
        "LFBENCH_SLOW_GELU_TIMES": GELU_TIMES,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(STRUCTURAL), os.environ.get("PYTHONPATH")])),
    }
    common = ["--format", "json", "--results", str(results)]
    ab = ["ab", "--baseline-env", "LFBENCH_STRUCTURAL=", "--processes", "3", "--seconds", "3"]
    command = [sys.executable, "-m", "bench", *ab, "--explain", "all", *common, "-k", "train_step_fast"]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout)
    (entry,) = result["benchmarks"]
    attribution = entry["attribution"]
    assert attribution["top"][0]["op"] == "aten::gelu" and attribution["top"][0]["change_ms"] > 0
    assert attribution["processes"] == [3, 3]
    (gelu,) = [calls for calls in attribution["calls_changed"] if calls[0] == "aten::gelu"]
    layers = json.loads((ROOT / "fixtures" / "embedded" / "model" / "config.json").read_text())[
        "num_hidden_layers"
    ]
    assert gelu[2] - gelu[1] == (int(GELU_TIMES) - 1) * layers  # the default model: the embedded one
    compare = [sys.executable, "-m", "bench", "compare", "--ab", result["pair"], *common]
    again = subprocess.run(compare, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["benchmarks"][0]["attribution"] == attribution
    hidden = subprocess.run([*compare, "--explain", "none"], cwd=ROOT, capture_output=True, text=True)
    assert hidden.returncode == 0, hidden.stderr
    assert json.loads(hidden.stdout)["benchmarks"][0]["attribution"] is None  # the pair's own overridden


def test_compare_takes_explain_only_with_a_pair(tmp_path):
    command = [sys.executable, "-m", "bench", "compare", "--results", str(tmp_path), "--explain", "all"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "--explain all: only with --ab" in run.stderr


def test_a_bad_explain_is_refused_by_name_before_anything_runs():
    command = [sys.executable, "-m", "bench", "ab", "--baseline-ref", "HEAD", "--explain", "some"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "argument --explain: invalid choice: 'some'" in run.stderr

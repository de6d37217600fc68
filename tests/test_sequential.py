"""Sampling until decided (bench/verdicts/sequential.py, bench/cli/looks.py): the plan's arithmetic,
its replay from a saved pair, the loop that samples the undecided rows again, and its error
simulated on seeded sessions (bench/power/rule.py). tests/test_ab_command.py-style live run at the end."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.cli.ab import sides_json
from bench.cli.looks import MIN_SHARE, TIMED_SHARE, sample_until_decided
from bench.measure.ab import BASELINE, CANDIDATE, Pair, Progress
from bench.measure.sampling import Job, ProcessSample
from bench.power.rule import format_looks, simulate_looks
from bench.verdicts.pairs import judge_pair, judge_saved, pair_json, side_json
from bench.verdicts.sequential import Plan, extra_until, judge_looks, spend
from bench.verdicts.stats import Change, Values
from bench.verdicts.tables import format_pair
from bench.verdicts.verdict import INCONCLUSIVE, NO_CHANGE, RAW, REGRESSION, Row, finish
from fixtures.ab import SERVERS_ENV

ROOT = Path(__file__).resolve().parents[1]


def test_the_alpha_is_spent_across_the_looks_the_first_weighing_twice_each_later_one():
    assert spend(0.01, 1) == (0.01,)
    assert spend(0.01, 2) == pytest.approx((0.01 * 2 / 3, 0.01 / 3))
    assert spend(0.01, 3) == pytest.approx((0.005, 0.0025, 0.0025))
    assert math.fsum(spend(0.05, 7)) == pytest.approx(0.05)
    assert Plan.of(0.01, 2).as_json() == {"planned": 2, "alpha": list(spend(0.01, 2))}


@pytest.mark.parametrize("looks", [0, 11])
def test_a_number_of_looks_out_of_range_is_refused_by_name(looks):
    with pytest.raises(Exception, match=f"--looks {looks}: must be between 1 and 10"):
        spend(0.01, looks)


def test_a_saved_plan_is_replayed_at_the_alpha_asked_for():
    assert Plan.saved(None, 0.01).alphas == (0.01,)  # a pair saved before the looks: one look
    saved = Plan.of(0.01, 3).as_json()
    assert Plan.saved(saved, 0.01).alphas == pytest.approx(spend(0.01, 3))
    assert Plan.saved(saved, 0.02).alphas == pytest.approx(spend(0.02, 3))


def change(ratio: float, low: float, high: float, p_slower: float) -> Change:
    """A change whose one-sided p of "slower" is `p_slower` (normal tails: df infinite)."""
    from scipy import special

    se = math.log(ratio) / -float(special.ndtri(p_slower)) if ratio != 1 else 0.01
    return Change(ratio, low, high, 2 * min(p_slower, 1 - p_slower), 10, 10, se, math.inf)


def row(name: str, c: Change) -> Row:
    return Row(name, 1.0, c.ratio, c, None, None, RAW)


REGRESSED = change(1.10, 1.08, 1.12, 1e-9)
UNCHANGED = change(1.0, 0.995, 1.005, 0.5)
WIDE = change(1.03, 0.99, 1.07, 0.05)
# at look 2: one-sided p 0.0012, under alpha_2 / 2 = 0.00167 alone, over it with one more row (Holm)
NARROWER = change(1.03, 1.005, 1.055, 0.0012)


def test_each_look_judges_the_undecided_rows_with_holm_at_its_alpha_and_decided_rows_stay():
    plan = Plan.of(0.01, 2)
    looks = {
        0: [row("a", REGRESSED), row("b", UNCHANGED), row("c", WIDE), row("d", UNCHANGED)],
        # what a and b would say on more data never counts: they were decided at look 1
        1: [row("a", UNCHANGED), row("b", REGRESSED), row("c", NARROWER), row("d", UNCHANGED)],
    }
    judged = judge_looks(plan, 2, lambda k, alpha: looks[k], 0.02)
    assert [(r.verdict, r.look) for r in judged] == [
        (REGRESSION, 1),
        (NO_CHANGE, 1),
        (REGRESSION, 2),  # alone in look 2's family: Holm's factor 1
        (NO_CHANGE, 1),
    ]
    assert judged[2].p_adjusted == pytest.approx(0.0012)
    # d undecided too at look 1: look 2's family holds c and d, Holm doubles c's p past alpha_2 / 2
    looks[0][3] = row("d", WIDE)
    judged = judge_looks(plan, 2, lambda k, alpha: looks[k], 0.02)
    assert [(r.verdict, r.look) for r in judged] == [
        (REGRESSION, 1),
        (NO_CHANGE, 1),
        (INCONCLUSIVE, 2),
        (NO_CHANGE, 2),
    ]
    assert judged[2].p_adjusted == pytest.approx(0.0024)
    # only one look taken (no budget): the rest stay inconclusive, judged at alpha_1
    once = judge_looks(plan, 1, lambda k, alpha: looks[k], 0.02)
    assert [r.verdict for r in once] == [REGRESSION, NO_CHANGE, INCONCLUSIVE, INCONCLUSIVE]
    assert all(r.look == 1 for r in once)


def test_one_look_planned_is_the_rule_as_before():
    rows = [row("a", REGRESSED), row("c", WIDE)]
    assert judge_looks(Plan.of(0.01, 1), 1, lambda k, alpha: rows, 0.02) == finish(rows, 0.01, 0.02)


def sample(pid: int, seconds: list[float]) -> ProcessSample:
    return ProcessSample(pid, list(seconds), [1.0] * len(seconds))


SPREAD = "bench/x.py::test_spread"  # processes differ, rounds within one do not: more processes
ROUNDS = "bench/x.py::test_rounds"  # processes alike, rounds vary: more rounds
STEADY = "bench/x.py::test_steady"  # decided at look 1: no change


def recorded() -> dict[str, Pair]:
    job = Job("attention_step", {"implementation": "hf"}, rounds=4)
    jobs = {BASELINE: job, CANDIDATE: job}
    spread = [1.0, 1.06, 0.95, 1.03]
    wobble = [[1.0, 1.12, 0.9, 1.05], [1.05, 0.92, 1.1, 0.95]]
    return {
        SPREAD: Pair(jobs, {side: [sample(p, [v] * 4) for p, v in enumerate(spread)] for side in jobs}),
        ROUNDS: Pair(jobs, {side: [sample(p, wobble[p % 2]) for p in range(4)] for side in jobs}),
        STEADY: Pair(jobs, {side: [sample(p, [1.0 + p * 1e-4] * 4) for p in range(4)] for side in jobs}),
    }


class FakePool:
    """ABPool's part that the loop uses, its workers replaced by seeded samples: ABPool.resample's
    bookkeeping, each fresh pair's rounds a copy of the row's first process pair; its clock moves
    by a row's whole share of the budget (and `overrun` seconds more) at every resample."""

    def __init__(self, overrun: float = 0.0) -> None:
        self.processes, self.recorded, self.progress = 4, recorded(), None
        self.asked: list[tuple[str, int, float]] = []
        self.now, self.overrun = 0.0, overrun

    def clock(self) -> float:
        return self.now

    def resample(self, name: str, processes: int, seconds: float) -> Pair:
        self.asked.append((name, processes, seconds))
        self.now += seconds / TIMED_SHARE + self.overrun
        pair = self.recorded[name]
        if not pair.looks:
            pair.looks.append(len(pair.samples[BASELINE]))
        for samples in pair.samples.values():
            samples += [sample(100 + i, samples[0].seconds) for i in range(processes)]
        pair.looks.append(len(pair.samples[BASELINE]))
        return pair


def recorded_by(pool: FakePool, threads: dict, meta: dict) -> tuple:
    """sides_json's arguments after the candidate's JSON, from what the pool recorded so far."""
    pairs = {name: (pair.jobs, pair.samples) for name, pair in pool.recorded.items()}
    return pairs, threads, meta, {name: pair.looks for name, pair in pool.recorded.items()}


def candidate_json() -> dict:
    entries = [{"fullname": name, "name": name, "extra_info": {}, "stats": {}} for name in recorded()]
    return {"machine_info": {}, "benchmarks": entries}


def info(looks: int) -> dict:
    sides = {side: {"torch": "2.13"} for side in (BASELINE, CANDIDATE)}
    return {"session": "s", "sides": sides, "looks": Plan.of(0.01, looks).as_json()}


def test_the_undecided_rows_are_sampled_again_in_the_unit_that_narrows_them():
    pool, out = FakePool(), io.StringIO()
    threads, meta = {BASELINE: 1, CANDIDATE: 1}, info(2)
    saved_now = lambda: sides_json(candidate_json(), *recorded_by(pool, threads, meta))  # noqa: E731
    taken = sample_until_decided(pool, Plan.of(0.01, 2), 60.0, saved_now, 0.01, 0.02, out, pool.clock)
    assert taken == 2
    # half the budget each: the first row's share is 60 / 2, the second's what is left
    timed = pytest.approx(TIMED_SHARE * 30)
    assert pool.asked == [(SPREAD, 4, timed), (ROUNDS, 2, timed)]
    assert isinstance(pool.progress, Progress)  # the session's bars are not drawn on after it
    assert pool.recorded[SPREAD].looks == [4, 8] and pool.recorded[ROUNDS].looks == [4, 6]
    assert pool.recorded[STEADY].looks == []  # decided at look 1: never sampled again
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("look 2/2 [1/2] spread: more processes, +4 pairs, ")
    assert lines[1].startswith("look 2/2 [2/2] rounds: more rounds, +2 pairs, ")
    assert lines[2] == "ab: 1 more look(s) took 60 s" and all(len(line) <= 100 for line in lines)
    # the saved pair keeps each row's processes after each look, and replays the looks
    saved = sides_json(candidate_json(), *recorded_by(pool, threads, meta))
    extra = {e["fullname"]: e["extra_info"] for e in saved[CANDIDATE]["benchmarks"]}
    assert extra[SPREAD]["looks"] == [4, 8] and extra[SPREAD]["workers"] == 8
    assert "looks" not in extra[STEADY]
    rows = judge_saved(saved, 0.01, 0.02)
    assert [(r.benchmark, r.look) for r in rows] == [(SPREAD, 2), (ROUNDS, 2), (STEADY, 1)]
    assert rows[2].verdict == NO_CHANGE
    assert [b["look"] for b in json.loads(pair_json(saved, rows, None))["benchmarks"]] == [2, 2, 1]
    table = format_pair(saved, rows, 0.01, 0.02, None)
    assert "looks: 2 planned, alpha 0.0067, 0.0033" in table
    assert all(len(line) <= 100 for line in table.splitlines())


def test_a_budget_too_small_for_a_look_samples_nothing_and_says_so():
    pool, out = FakePool(), io.StringIO()
    threads, meta = {BASELINE: 1, CANDIDATE: 1}, info(3)
    saved_now = lambda: sides_json(candidate_json(), *recorded_by(pool, threads, meta))  # noqa: E731
    # three looks: the first of two undecided rows' share is budget / (2 looks x 2 rows)
    budget = 4 * MIN_SHARE - 1
    taken = sample_until_decided(pool, Plan.of(0.01, 3), budget, saved_now, 0.01, 0.02, out, pool.clock)
    assert taken == 1 and pool.asked == []
    assert out.getvalue() == f"look 2/3: --budget {budget:g} s spent\n"
    assert all("looks" not in e["extra_info"] for e in saved_now()[CANDIDATE]["benchmarks"])


def test_a_row_left_out_of_a_look_keeps_its_processes_as_that_looks_boundary():
    """Three looks, the first row of look 2 overrunning its share so that the second's no longer
    fits: it keeps its 4 processes as its look-2 boundary; look 3 fits none, and says so."""
    pool, out = FakePool(overrun=20.0), io.StringIO()
    threads, meta = {BASELINE: 1, CANDIDATE: 1}, info(3)
    saved_now = lambda: sides_json(candidate_json(), *recorded_by(pool, threads, meta))  # noqa: E731
    budget = 4 * MIN_SHARE + 1
    assert sample_until_decided(pool, Plan.of(0.01, 3), budget, saved_now, 0.01, 0.02, out, pool.clock) == 2
    assert pool.asked == [(SPREAD, 4, pytest.approx(TIMED_SHARE * budget / 4))]
    assert pool.recorded[SPREAD].looks == [4, 8] and pool.recorded[ROUNDS].looks == [4, 4]
    took = budget / 4 + 20
    assert out.getvalue().splitlines()[1:] == [
        f"look 3/3: --budget {budget:g} s spent",
        f"ab: 1 more look(s) took {took:.0f} s",
    ]
    rows = judge_saved(saved_now(), 0.01, 0.02)
    assert [(r.verdict, r.look) for r in rows[1:]] == [(INCONCLUSIVE, 2), (NO_CHANGE, 1)]


def test_a_saved_pair_is_judged_look_by_look_on_the_processes_each_look_had():
    """judge_saved replays the boundaries: look 1 on the first 4 processes a side, look 2 on all."""
    pairs = recorded()
    spread = pairs[SPREAD]
    for side in spread.samples.values():
        side += [sample(9, [1.0] * 4) for _ in range(4)]
    looks = {SPREAD: [4, 8]}
    both = {name: (p.jobs, p.samples) for name, p in pairs.items()}
    saved = {
        side: side_json(candidate_json(), side, both, 1, info(2), looks) for side in (BASELINE, CANDIDATE)
    }
    extra = {e["fullname"]: e["extra_info"] for e in saved[BASELINE]["benchmarks"]}
    first = Values.from_extra_info(extra_until(extra[SPREAD], 4))
    assert first.process == [1.0, 1.06, 0.95, 1.03] and len(first.rounds) == 4
    plan = Plan.of(0.01, 2)
    by_hand = judge_looks(
        plan,
        2,
        lambda k, alpha: [
            judge_pair(
                name,
                Values.from_extra_info(extra_until(e, [4, 8][k] if name == SPREAD else None)),
                Values.from_extra_info(extra_until(e, [4, 8][k] if name == SPREAD else None)),
                1 - alpha,
                [],
            )
            for name, e in extra.items()
        ],
        0.02,
    )
    assert judge_saved(saved, 0.01, 0.02) == by_hand


# seeded same-code sessions of nine rows (about 20 s each set here): the exact counts, seed 1
SESSIONS = 400


def test_looks_keep_the_false_alarms_within_alpha_and_decide_more_rows_than_one_look():
    """Same code, no side offset (the error the plan controls: a bias between the sides is
    none of a test on processes' to see, docs/verdicts.md), `ab`'s alpha and minimum effect."""
    result = simulate_looks(SESSIONS, seed=1, looks=2)
    assert (result["regression"], result["either"]) == (0, 0)
    assert result["regression"] <= 0.005 * SESSIONS and result["either"] <= 0.01 * SESSIONS
    assert (result["inconclusive"], result["inconclusive_one_look"], result["decided_later"]) == (
        67,
        658,
        799,
    )
    assert format_looks(result).count("\n") == 2


def test_where_the_rule_flags_often_the_looks_flag_no_more_than_one_look():
    """At alpha 0.1 with no minimum effect only the tests decide, and nearly every row goes on to
    look 2. The rule itself exceeds alpha here (it chooses its score from the data, Welch on a few
    processes: docs/verdicts.md), so the check is against one look at the whole alpha: the plan's
    looks, on more data, flag no more sessions."""
    result = simulate_looks(200, seed=1, looks=2, alpha=0.1, min_effect=0.0)
    assert (result["regression"], result["either"]) == (14, 26)
    assert (result["regression_one_look"], result["either_one_look"]) == (15, 28)


def test_power_rule_with_looks_prints_the_looks_simulation(capsys):
    assert main(["power", "--rule", "--looks", "2", "--sessions", "3", "--seed", "2"]) == 0
    shown = capsys.readouterr().out
    assert "over 2 looks: 3 sessions of unchanged code" in shown and "rows inconclusive:" in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--looks", "0"], "--looks 0: must be positive"),
        (["--looks", "11"], "--looks 11: must be between 1 and 10"),
        (["--looks", "x"], "--looks 'x': not an integer"),
        (["--budget", "-5"], "--budget -5.0: must be positive"),
        (["--budget", "soon"], "--budget 'soon': not a number"),
    ],
)
def test_bad_looks_options_are_refused_by_name_before_anything_runs(args, message, capsys):
    assert main(["ab", "--baseline-ref", "no-such-ref-xyz", *args]) == 2
    assert f"error: {message}" in " ".join(capsys.readouterr().err.split())


def test_a_live_session_with_two_looks_appends_processes_to_an_undecided_row(tmp_path):
    """`ab --looks 2` end to end, the least session: 3 processes a side on one server each, 2 s.
    At --alpha 1e-4 and --min-effect 0 the row all but never decides (the same code's p-value is
    that small once in 10,000 sessions; no interval lies within +-0%), so it is sampled again; the
    test asserts structure, not verdicts."""
    results = tmp_path / "results"
    args = [
        "ab",
        "--baseline-env",
        "LFBENCH_LOOKS_TEST=1",
        "--processes",
        "3",
        "--seconds",
        "2",
        "--looks",
        "2",
    ]
    args += ["--budget", "15", "--alpha", "1e-4", "--min-effect", "0", "--results", str(results)]
    assert args[-6:-2] == ["--alpha", "1e-4", "--min-effect", "0"]  # compare replays at the same
    run = subprocess.run(
        [sys.executable, "-m", "bench", *args, "--json", "-k", "train_step_fast"],
        cwd=ROOT,
        env={**os.environ, SERVERS_ENV: "1"},
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "look 2/2 [1/1] train_step_fast: more " in run.stderr
    (shown,) = json.loads(run.stdout)["benchmarks"]
    assert shown["look"] == 2
    (pair,) = (results / "ab").iterdir()
    saved = {side: json.loads((pair / f"{side}.json").read_text()) for side in (BASELINE, CANDIDATE)}
    assert saved[CANDIDATE]["ab"]["looks"]["planned"] == 2
    extra = saved[CANDIDATE]["benchmarks"][0]["extra_info"]
    assert extra["looks"][0] == 3 and extra["looks"][1] in (3 + 3, 3 + 2)  # more processes or rounds
    assert extra["workers"] == extra["looks"][1] == len(extra["process_medians"])
    again = subprocess.run(
        [sys.executable, "-m", "bench", "compare", "--ab", str(pair), "--json", *args[-6:-2]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    (replayed,) = json.loads(again.stdout)["benchmarks"]
    assert {k: replayed[k] for k in ("verdict", "look", "ratio", "low", "high")} == {
        k: shown[k] for k in ("verdict", "look", "ratio", "low", "high")
    }

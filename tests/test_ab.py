"""A/B in one session (bench/measure/ab.py, bench/verdicts/pairs.py): the schedule, the detector on
itself, the pair files.

The detector tests measure the calibration workload itself on both sides: its time over the
calibration round beside it is steady even on a shared CPU, so they check the A/B machinery and the
test, not the machine; `python -m bench power --ab` measures it on a real benchmark.
tests/test_ab_command.py runs the command end to end.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest

from bench.base.errors import BenchInputError
from bench.harness.options import option_defaults
from bench.measure.ab import BASELINE, CANDIDATE, ABPool, assignments, check_python, check_stacks, commit_of
from bench.measure.sampling import (
    MAX_ROUNDS,
    SUITE_ROOT,
    Job,
    ProcessSample,
    Server,
    Side,
    WorkerFailed,
    schedule,
)
from bench.power.ab import AB_COLUMNS, SELF_TEST, SELF_TEST_JOB, ABPower, ab_job
from bench.power.detection import format_detection, values
from bench.verdicts.pairs import (
    find_pair,
    judge_pair,
    judge_saved,
    load_pair,
    pair_json,
    paired_extra_info,
    save_pair,
    side_json,
)
from bench.verdicts.stats import Values, within_process_slope
from bench.verdicts.tables import format_pair
from bench.verdicts.verdict import INCONCLUSIVE, RAW, REGRESSION, finish

# The self-tests' size. CI must never fail by design, so these tests on live timings assert gross
# effects only: the same code within a wide band (never the gate's verdict at its alpha), a doubled
# candidate a regression. Measured with `python -m bench power --ab --case self-test` at 10 x 40
# rounds, same-code ratios stayed within 0.982-1.013 over 48 sessions (SD of the log ratio 0.75%):
# at 4 processes x 10 rounds the SD is about twice that, and the band below is 10 of them.
PROCESSES = 4
CALIBRATION = dataclasses.replace(SELF_TEST_JOB, rounds=10)
ALPHA = 0.01


def self_test_pool() -> ABPool:
    """Both sides this checkout, one server a side: each server costs an interpreter importing torch
    and transformers (12 s of CPU on this machine), and the bias of sharing one (the same code came
    out 1.0% slower on one side over 43 sessions of one pool) is far inside what these tests assert;
    `ab` itself runs a server a process."""
    return ABPool(
        Side(BASELINE), Side(CANDIDATE), option_defaults(), PROCESSES, 1, seconds=0.1, servers_per_side=1
    )


@pytest.fixture(scope="module")
def pool():
    with self_test_pool() as ab:
        yield ab


def verdict_at(pool: ABPool, slowdown: float):
    pool.candidate_slowdown = slowdown
    pool.renew()
    pool.sample(CALIBRATION)
    sides = pool.last.samples
    row = judge_pair(
        "calibration",
        values(sides[BASELINE], CALIBRATION, 1),
        values(sides[CANDIDATE], CALIBRATION, 1),
        1.0 - ALPHA,
        [],
    )
    return finish([row], ALPHA, 0.02)[0]


def test_same_code_on_both_sides_comes_out_within_a_wide_band(pool):
    row = verdict_at(pool, 0.0)
    assert 0.85 < row.decided.ratio < 1.18, row


def test_a_candidate_twice_as_slow_is_a_regression(pool):
    row = verdict_at(pool, 1.0)
    assert row.verdict == REGRESSION, row
    assert 1.6 < row.decided.ratio < 2.5, row  # about 2x (the injected work is small matmuls)
    assert pool.last.jobs[CANDIDATE].slowdown == 1.0 and pool.last.jobs[BASELINE].slowdown == 0.0


def test_both_sides_sample_in_their_own_processes_and_keep_every_round(pool):
    pool.candidate_slowdown = None
    job = dataclasses.replace(CALIBRATION, rounds=5)
    pool.sample(job)
    sides = pool.last.samples
    pids = [s.pid for side in (BASELINE, CANDIDATE) for s in sides[side]]
    assert len(set(pids)) == 2 * PROCESSES and os.getpid() not in pids
    assert all(len(s.seconds) == len(s.calibration) >= job.rounds for s in sides[BASELINE])
    assert pool.stacks[BASELINE]["suite"] == str(SUITE_ROOT / "bench")
    assert pool.stacks[BASELINE]["threads"] == pool.stacks[CANDIDATE]["threads"] == pool.threads == 1


def test_a_baseline_worker_that_dies_is_named_with_its_side(pool):
    os.kill(pool.pairs[0][0].pid, signal.SIGKILL)
    with pytest.raises(
        WorkerFailed, match=r"calibration\(\): worker \d+ of the baseline side died \(exit code -9\)"
    ):
        pool.sample(CALIBRATION)
    pool.renew()


class FakeWorker:
    """Records the order in which the schedule asks workers for what."""

    def __init__(self, pid: int, log: list, fails_to_start: bool = False) -> None:
        self.pid, self.log, self.fails_to_start = pid, log, fails_to_start
        self.pending: list[str] = []

    def ask(self, command: str, job: Job):
        self.post(command, job)
        return self.reply(job)

    def post(self, command: str, job: Job) -> None:
        self.log.append((command, self.pid))
        self.pending.append(command)

    def reply(self, job: Job):
        command = self.pending.pop(0)
        if command == "start":
            if self.fails_to_start:
                raise WorkerFailed(f"worker {self.pid} could not build the job")
            return {"pid": self.pid, "warmup": [(0.01, 0.01)], "exact": None}
        if command == "round":
            time.sleep(0.001)
            return 0.01, 0.01, None
        return self.pid


def test_interleaved_workers_all_start_at_once_and_every_answer_is_read():
    """Starts are untimed, so every worker builds its job at the same time; where one fails, the
    others' answers are still read (none is left to be taken for the next command's)."""
    log: list = []
    pairs = [
        (FakeWorker(0, log), FakeWorker(1, log, fails_to_start=True)),
        (FakeWorker(2, log), FakeWorker(3, log)),
    ]
    with pytest.raises(WorkerFailed, match="worker 1 could not build"):
        schedule(pairs, Job("x", {}, rounds=2), True)
    assert log == [("start", pid) for pid in range(4)]  # all posted before any answer was read
    assert not any(worker.pending for pair in pairs for worker in pair)  # every answer read
    assert not any(what == "round" for what, _ in log)


def test_interleaved_pairs_sit_side_by_side_in_a_random_order():
    log: list = []
    pairs = [(FakeWorker(2 * i, log), FakeWorker(2 * i + 1, log)) for i in range(3)]
    samples = schedule(pairs, Job("x", {}, rounds=4), True, order=random.Random(0))
    rounds = [pid for command, pid in log if command == "round"]
    assert len(rounds) == 4 * 6
    for first, second in zip(rounds[::2], rounds[1::2], strict=True):
        assert first // 2 == second // 2  # each round of one side next to its partner's
    firsts = {pid % 2 for pid in rounds[::2]}
    assert firsts == {0, 1}  # both orders occur
    commands = [command for command, _ in log]
    assert commands.index("round") > max(i for i, c in enumerate(commands) if c == "start")
    assert all(len(s.seconds) == 4 for s in samples.values())


def test_rounds_fill_the_budget_and_never_fall_below_the_benchmarks_own():
    log: list = []
    pairs = [(FakeWorker(0, log), FakeWorker(1, log))]
    samples = schedule(pairs, Job("x", {}, rounds=3), True, seconds=0.0)
    assert [len(s.seconds) for s in samples.values()] == [3, 3]
    started = time.perf_counter()
    samples = schedule(pairs, Job("x", {}, rounds=3), True, seconds=0.2)
    assert time.perf_counter() - started >= 0.2
    assert len({len(s.seconds) for s in samples.values()}) == 1  # every process the same count
    assert 3 < len(next(iter(samples.values())).seconds) <= MAX_ROUNDS


def test_sequential_schedule_runs_one_worker_at_a_time_and_frees_it():
    log: list = []
    pairs = [(FakeWorker(0, log), FakeWorker(1, log)), (FakeWorker(2, log), FakeWorker(3, log))]
    schedule(pairs, Job("x", {}, rounds=2), False, order=random.Random(1))
    for pid in range(4):
        mine = [i for i, (_, p) in enumerate(log) if p == pid]
        assert mine == list(range(mine[0], mine[0] + 4))  # start, 2 rounds, finish, uninterrupted
        assert [log[i][0] for i in mine] == ["start", "round", "round", "finish"]


def stack(device: str = "cpu", root: Path = SUITE_ROOT) -> dict:
    return {"device": device, "suite": str(root / "bench")}


def test_sides_on_different_devices_are_refused():
    base = Side(BASELINE, options={"device": "cuda"})
    with pytest.raises(
        BenchInputError, match=r"--baseline-option device=cuda: .*different devices .*cuda.*cpu"
    ):
        check_stacks(base, Side(CANDIDATE), {BASELINE: stack("cuda"), CANDIDATE: stack()})


def test_a_baseline_thread_count_is_its_servers_and_a_bad_one_is_refused_by_name():
    """`--baseline-option threads=N` sets the threads the baseline's workers compute with (its
    server's, which its workers inherit at the fork); the session's count stays the candidate's."""
    assert Side(BASELINE, options={"threads": "2"}).worker_threads(1) == 2
    assert Side(CANDIDATE).worker_threads(3) == 3
    for value, problem in (("0", "0: must be positive"), ("two", "'two': not an integer")):
        with pytest.raises(BenchInputError, match=f"^--baseline-option threads {problem}$"):
            Side(BASELINE, options={"threads": value})
    server = Server(Side(BASELINE, options={"threads": "2"}), option_defaults(), threads=1)
    try:
        assert server.ready()["threads"] == 2
    finally:
        server.close()


def test_a_side_that_imports_another_checkout_is_refused(tmp_path):
    base = Side(BASELINE, python="/some/python")
    with pytest.raises(BenchInputError, match=r"--baseline-python /some/python: .* imports the suite from"):
        check_stacks(base, Side(CANDIDATE), {BASELINE: stack(root=tmp_path), CANDIDATE: stack()})


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (["X"], r"--baseline-option 'X': expected NAME=VALUE"),
        (["=1"], r"--baseline-option '=1': expected NAME=VALUE"),
        (["nope=1"], r"--baseline-option 'nope=1': unknown option 'nope'"),
    ],
)
def test_bad_assignments_name_the_flag(given, message):
    with pytest.raises(BenchInputError, match=message):
        assignments("--baseline-option", given, {"attention", "dtype"})


def test_options_may_be_given_as_flags():
    assert assignments(
        "--baseline-option", ["--attention=blocked", "dtype=bf16"], {"attention", "dtype"}
    ) == {
        "attention": "blocked",
        "dtype": "bf16",
    }


def test_a_missing_or_non_executable_python_is_refused(tmp_path):
    with pytest.raises(BenchInputError, match=r"--baseline-python .*missing: no such file"):
        check_python(str(tmp_path / "missing"))
    plain = tmp_path / "python"
    plain.write_text("")
    with pytest.raises(BenchInputError, match=r"--baseline-python .*: not an executable file"):
        check_python(str(plain))
    assert check_python(sys.executable) == sys.executable


def test_an_unknown_ref_is_refused():
    with pytest.raises(BenchInputError, match=r"--baseline-ref no-such-ref-xyz: no such commit"):
        commit_of("no-such-ref-xyz")


def fake_pair(ratio: float, round_noise: float = 0.0, processes: int = 4, rounds: int = 5) -> dict[str, dict]:
    """`processes` processes of `rounds` rounds a side, each process 1% slower than the one before
    (or, with `round_noise`, none, and every round off by that much, seeded)."""
    rng = random.Random(3)

    def sample(pid: int, scale: float) -> ProcessSample:
        if round_noise:
            seconds = [scale * math.exp(rng.gauss(0, round_noise)) for _ in range(rounds)]
        else:
            seconds = [scale * (1 + 0.01 * pid + 0.001 * ((pid + i) % 3)) for i in range(rounds)]
        return ProcessSample(pid, seconds, [1.0] * rounds)

    job = Job("attention_step", {"implementation": "hf"}, rounds=rounds)
    pairs = {
        "bench/x.py::test_x": (
            {BASELINE: job, CANDIDATE: job},
            {
                BASELINE: [sample(p, 1.0) for p in range(processes)],
                CANDIDATE: [sample(p, ratio) for p in range(processes)],
            },
        )
    }
    candidate_json = {
        "machine_info": {"longformer_bench": {"torch": "x"}},
        "benchmarks": [
            {
                "fullname": "bench/x.py::test_x",
                "name": "test_x",
                "extra_info": {"tokens_per_s": 1},
                "stats": {},
            },
            {"fullname": "bench/x.py::test_not_sampled", "name": "y", "extra_info": {}, "stats": {}},
        ],
    }
    info = {"session": "s1", "sides": {BASELINE: {"torch": "2.11"}, CANDIDATE: {"torch": "2.13"}}}
    return {side: side_json(candidate_json, side, pairs, 1, info) for side in (BASELINE, CANDIDATE)}


def test_a_pair_is_saved_whole_and_judged_from_its_files(tmp_path):
    sides = fake_pair(1.10)
    first = save_pair(tmp_path, "s1", sides)
    second = save_pair(tmp_path, "s2", sides)
    assert first.name == "0001_s1" and second.name == "0002_s2"
    assert sorted(p.name for p in (tmp_path / "ab").iterdir()) == ["0001_s1", "0002_s2"]  # no temporary left
    assert find_pair(first / "candidate.json") == first and find_pair(tmp_path) is None
    loaded = load_pair(first)
    assert loaded[BASELINE]["machine_info"]["longformer_bench"]["torch"] == "2.11"
    assert [b["fullname"] for b in loaded[CANDIDATE]["benchmarks"]] == ["bench/x.py::test_x"]
    assert (
        loaded[CANDIDATE]["benchmarks"][0]["extra_info"]["tokens_per_s"] == 1
    )  # the candidate keeps its facts
    assert loaded[BASELINE]["benchmarks"][0]["stats"]["rounds"] == 20
    (row,) = judge_saved(loaded, 0.01, 0.02)
    assert row.decided_by == RAW and "torch 2.11 vs 2.13" in row.reason  # the sides' torch differs
    assert row.verdict == REGRESSION and row.raw.ratio == pytest.approx(1.10)


def test_the_power_measurement_runs_fresh_sessions_saves_every_trial_and_tabulates_them(tmp_path):
    """What `power --ab` and the slow A/B power benchmark run, at a tiny size (two sessions)."""
    # 4 processes: with 3 a side Welch's test has 2-4 degrees of freedom, and once judged 2x unflagged
    measurement = ABPower("hf-w32-L512", 1, 1, processes=4, seconds=1.0, injected=(0.0, 1.0), servers=1)
    saved = tmp_path / "power.json"
    counted: list[tuple[int, int]] = []
    result = measurement.run(option_defaults(), saved, progress=lambda *count: counted.append(count))
    assert counted == [(0, 2), (1, 2), (2, 2)]  # what there is to do, before the first trial ends
    assert json.loads(saved.read_text()) == json.loads(json.dumps(result))  # saved after the last trial
    assert result["servers_per_side"] == 1 and result["processes"] == 4
    trials = result["trials"]
    assert sorted(t["level"] for t in trials) == [0.0, 1.0]
    for trial in trials:
        assert all(len(trial[side]["normalized"]) == 4 for side in (BASELINE, CANDIDATE))
        assert len(trial["rounds"][CANDIDATE][0]["seconds"]) == trial["rounds_per_process"] >= 3
    table = {float(k): v for k, v in result["table"].items()}
    assert table[0.0]["trials"] == table[1.0]["trials"] == 1
    assert table[1.0]["flagged"] == 1, table  # twice the time on a real benchmark, even at this size
    text = format_detection(table, AB_COLUMNS)
    assert "none (false alarm)" in text and "100%" in text and "s per trial" in text
    ratio = table[1.0]["median_ratio"]
    assert ratio > 1.5 and table[1.0]["ratio_range"] == f"{ratio:.4f}-{ratio:.4f}"  # one trial: its ratio


def test_a_power_measurement_goes_on_from_its_saved_trials_and_refuses_other_settings(tmp_path):
    """`power --ab --resume`: only the missing trials are measured; a file measured with other
    settings, or not a measurement at all, is refused naming --save."""
    saved = tmp_path / "power.json"
    first = ABPower("hf-w32-L512", 1, 0, processes=2, seconds=0.5, injected=(0.0, 0.25), servers=1)
    kept = json.loads(json.dumps(first.run(option_defaults(), saved)["trials"]))
    planned = []
    more = ABPower("hf-w32-L512", 1, 1, processes=2, seconds=0.5, injected=(0.0, 0.25), servers=1)
    result = more.run(
        option_defaults(), saved, lambda done, total: planned.append((done, total)), resume=True
    )
    assert planned == [(1, 2), (2, 2)]  # the saved trial counted first, then the one measured
    assert [t["level"] for t in result["trials"]] == [0.0, 0.25]
    assert json.loads(json.dumps(result["trials"][:1])) == kept  # the saved trial, untouched
    with pytest.raises(
        BenchInputError, match=r"--save .*power.json: measured with other settings: processes 2 \(now 3\)"
    ):
        ABPower("hf-w32-L512", 1, 1, processes=3, seconds=0.5).run(option_defaults(), saved, resume=True)
    before = json.loads(saved.read_text())
    del before["servers_per_side"]  # as written before it was recorded: two servers a side
    saved.write_text(json.dumps(before))
    with pytest.raises(BenchInputError, match=r"servers_per_side 2 \(now 3\)"):
        ABPower("hf-w32-L512", 1, 1, processes=3, seconds=0.5).run(option_defaults(), saved, resume=True)
    saved.write_text("[1, 2]")
    with pytest.raises(BenchInputError, match=r"--save .*power.json: not a `power --ab` result"):
        more.run(option_defaults(), saved, resume=True)


def test_the_self_test_power_case_measures_these_tests_job():
    assert ab_job(SELF_TEST, option_defaults()) == SELF_TEST_JOB


def test_the_epoch_slice_power_case_samples_the_fast_profile_slice():
    from bench.measure.jobs import SLICE_STEPS

    job = ab_job("epoch-slice", {**option_defaults(), "batch_size": "8"})
    assert job.workload == "epoch" and job.params["max_samples"] == SLICE_STEPS * 8


def test_the_train_step_power_case_samples_the_fast_profile_step():
    from bench.measure.jobs import FAST_BATCHES

    job = ab_job("train-step", option_defaults())
    assert job.workload == "training_step" and job.params["batch_size"] == FAST_BATCHES[0]


def test_the_ab_table_shows_every_score_and_says_once_why_raw_decided(tmp_path):
    loaded = load_pair(save_pair(tmp_path, "s1", fake_pair(1.10)))
    rows = judge_saved(loaded, 0.01, 0.02)
    table = format_pair(loaded, rows, 0.01, 0.02, None)
    words = " ".join(table.split())  # the head is wrapped at 100 columns
    assert "+ is slower" in words and "after Holm over the 1 tested row" in words
    lines = table.splitlines()
    line = lines[lines.index("x") + 1]  # the name on its line, its figures under it
    assert "+10.0% [" in line and "raw[1]" in line and line.rstrip().endswith("regression")
    assert max(len(line) for line in lines) <= 100
    assert "  [1] raw decides: the sides' software differs (torch 2.11 vs 2.13)" in table
    assert table.splitlines()[-1] == "1 regression"
    (row,) = json.loads(pair_json(loaded, rows, None))["benchmarks"]
    assert row["decided_by"] == "raw" and row["verdict"] == "regression" and row["p_adjusted"] < 0.01
    assert row["calibrated"]["ratio"] == pytest.approx(1.10) and row["needed_seconds"] is None
    ((_, base, cand),) = paired_extra_info(loaded)  # the slope the calibrated score used, kept
    assert row["slope"] == within_process_slope([Values.from_extra_info(base), Values.from_extra_info(cand)])


def test_inconclusive_says_what_would_decide_it_from_the_spread_between_and_within_processes(tmp_path):
    """Processes 1% apart with steady rounds: more rounds cannot narrow it; 10 steady processes of
    20 rounds 3% apart: more seconds would, and the figure is an estimate."""
    between = load_pair(save_pair(tmp_path, "s1", fake_pair(1.03)))
    within = load_pair(save_pair(tmp_path, "s2", fake_pair(1.01, round_noise=0.03, processes=10, rounds=20)))
    for pair, said in ((between, "inconclusive (more processes)"), (within, "inconclusive (est. ~")):
        (row,) = judge_saved(pair, 0.01, 0.02)
        assert row.verdict == INCONCLUSIVE
        assert said in format_pair(pair, [row], 0.01, 0.02, None)
    (row,) = json.loads(pair_json(between, judge_saved(between, 0.01, 0.02), None))["benchmarks"]
    assert row["decides_with"] == "more processes" and row["needed_seconds"] is None
    (row,) = json.loads(pair_json(within, judge_saved(within, 0.01, 0.02), None))["benchmarks"]
    assert row["decides_with"].startswith("est. ~") and row["needed_seconds"] > 0


def test_power_scores_compares_the_scores_on_saved_pairs(tmp_path):
    from bench.power.scores import SCORES, format_scores, load_sessions, measure, null_summary, power_table

    folder = save_pair(tmp_path, "s1", fake_pair(1.0))
    sessions = load_sessions([folder / "candidate.json"])  # a pair's file names its folder
    table = measure(sessions)
    (cells,) = table.values()
    assert set(cells) == set(SCORES)  # every score could be computed from the saved rounds
    text = format_scores(table, 1)
    assert "x" in text and "same-code rows" in text and max(len(line) for line in text.splitlines()) <= 100
    power = power_table(sessions, (0.05, 0.10), 0.01, 0.02)
    assert "5%" in power and "10%" in power and "1 raw" in power  # the torch versions differ
    assert "same-code sessions: 1, 0 would fail" in null_summary(sessions, 0.01, 0.02)


def synthetic_trial(level: float, seed: int) -> dict:
    """A `power --ab` trial of seeded values: 10 process pairs of 12 rounds, the candidate's rounds
    stretched by `level`, every process off by its own 1% and every round by 1% more."""
    rng = random.Random(seed)

    def side(scale: float) -> dict:
        rounds = []
        for _ in range(10):
            process = rng.gauss(0, 0.01)
            rounds.append([scale * math.exp(process + rng.gauss(0, 0.01)) for _ in range(12)])
        calibration = [[math.exp(rng.gauss(0, 0.01)) for _ in r] for r in rounds]
        return values_of(rounds, calibration)

    return {"level": level, "baseline": side(1.0), "candidate": side(1.0 + level)}


def values_of(rounds: list[list[float]], calibration: list[list[float]]) -> dict:
    samples = [ProcessSample(pid, r, c) for pid, (r, c) in enumerate(zip(rounds, calibration, strict=True))]
    return values(samples, Job("training_step", {}, rounds=12), 1).__dict__


def test_power_scores_reads_power_ab_trials_and_counts_what_each_score_finds(tmp_path):
    from bench.power.scores import SCORES, format_scores, load_sessions, measure, null_summary

    saved = tmp_path / "power.json"
    trials = [synthetic_trial(0.0, seed) for seed in range(3)] + [
        synthetic_trial(0.10, 10 + s) for s in range(2)
    ]
    saved.write_text(json.dumps({"job": "training_step(batch_size=2)", "trials": trials}))
    sessions = load_sessions([saved])
    assert len(sessions) == 5 and [s.same_code for s in sessions] == [True] * 3 + [False] * 2
    (cells,) = measure(sessions).values()
    for score in SCORES:  # 10% against rounds 1% apart: every score finds both, none cries wolf
        assert cells[score]["found"] == {0.0: [False] * 3, 0.10: [True] * 2}, score
        assert len(cells[score]["z"]) == 3
    text = format_scores(measure(sessions), len(sessions))
    assert ["10%", "slower"] + ["2/2"] * len(SCORES) in [line.split() for line in text.splitlines()]
    assert "same-code sessions: 3, 0 would fail" in null_summary(sessions, 0.01, 0.02)
    broken = tmp_path / "broken.json"
    broken.write_text('{"job": "x"}')
    with pytest.raises(BenchInputError, match=r"broken.json: not a `power --ab` result"):
        load_sessions([broken])
    with pytest.raises(BenchInputError, match="nowhere: not a saved A/B pair folder"):
        load_sessions([tmp_path / "nowhere"])


def test_power_scores_on_the_command_line_prints_its_three_tables(tmp_path, capsys):
    from bench.__main__ import main

    saved = tmp_path / "power.json"
    trials = [synthetic_trial(0.0, seed) for seed in range(2)] + [synthetic_trial(0.05, 20)]
    saved.write_text(json.dumps({"job": "training_step(batch_size=2)", "trials": trials}))
    assert main(["power", "--scores", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "3 saved sessions; per benchmark the median half-width" in out
    assert "power of `ab`'s verdict" in out and "same-code sessions: 2, 0 would fail" in out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert main(["power", "--scores", str(tmp_path / "nowhere")]) == 2
    err = " ".join(capsys.readouterr().err.split())  # errors wrap at 100 columns
    assert "nowhere: not a saved A/B pair folder or `power --ab` result" in err


def test_power_scores_on_a_file_of_no_trials_is_an_error(tmp_path, capsys):
    from bench.__main__ import main

    saved = tmp_path / "power.json"
    saved.write_text(json.dumps({"job": "training_step(batch_size=2)", "trials": []}))
    assert main(["power", "--scores", str(saved)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"error: --scores {saved}: holds no paired benchmark (0 sessions" in err


def test_a_pair_prints_as_markdown_for_a_pull_request_and_as_csv(tmp_path, capsys):
    """`--format markdown|csv`, here through `compare --ab PAIR` (the same printing as `ab`)."""
    from bench.__main__ import main

    pair = save_pair(tmp_path, "s1", fake_pair(1.10))
    assert main(["compare", "--ab", str(pair), "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "**A/B session s1, saved in ab/0001_s1**"
    header = "| benchmark | baseline | change [99%] | by | raw | calib. | p Holm | verdict |"
    at = lines.index(header)
    assert lines[at + 1] == "|" + " --- |" * 8
    cells = lines[at + 2].split(" | ")
    assert cells[0] == "| `x`" and cells[1] == "1.016 s" and cells[2].startswith("+10.0% [")
    assert cells[3] == "raw[1]" and cells[-1] == "regression |"
    assert "[1] raw decides: the sides' software differs (torch 2.11 vs 2.13)  " in lines
    assert "**1 regression**" in lines and "<details><summary>how to read this table</summary>" in lines
    assert main(["compare", "--ab", str(pair), "--format", "csv", "--fail-on-regression"]) == 1
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["benchmark"] == "bench/x.py::test_x" and row["verdict"] == "regression"
    assert row["decided_by"] == "raw" and float(row["change"]) == pytest.approx(0.10, abs=1e-9)
    assert float(row["low"]) < 0.10 < float(row["high"]) and float(row["p_holm"]) < 0.01
    assert float(row["candidate_seconds"]) / float(row["baseline_seconds"]) == pytest.approx(1.10)
    assert row["reason"] == "the sides' software differs (torch 2.11 vs 2.13)"


def test_the_session_bars_show_servers_then_each_benchmark_against_its_budget():
    """What `ab` draws on the terminal (fixtures/ab.py), fed the events a session sends."""
    import io

    from fixtures.ab import Bars

    out = io.StringIO()
    bars = Bars(out, budget=20.0, every=0)  # every event drawn
    for ready in range(5):
        bars.servers(ready, 4)
    bars.begin("[ 1/2] attention_step[w32-L512-b2-hf-forward]")
    bars.sampling(started=3, workers=4, rounds=0, elapsed=0.0, ratio=None)
    bars.sampling(started=4, workers=4, rounds=12, elapsed=25.0, ratio=1.0312)
    bars.close()
    text = out.getvalue()
    assert "starting servers (each imports torch)" in text and "4/4" in text
    assert "[ 1/2] attention_step[w32-L512-b2-hf-forward]" in text and "starting workers 3/4" in text
    assert "20/20 s, 12 rounds a worker, candidate/baseline 1.031" in text  # the bar stops at its budget


def test_ab_prints_pytests_summary_alone_when_the_session_passed():
    from bench.cli.ab import pytest_summary

    text = (
        "header\n....\n===== short test summary info =====\nSKIPPED [1] x: why\n== 1 passed, 1 skipped ==\n"
    )
    assert (
        pytest_summary(text)
        == "===== short test summary info =====\nSKIPPED [1] x: why\n== 1 passed, 1 skipped =="
    )
    assert pytest_summary("header\n....\n== 2 passed in 3s ==\n") == "== 2 passed in 3s =="

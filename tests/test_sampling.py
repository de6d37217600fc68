"""Worker processes: one sample per process, every round kept, failures reported with their cause."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from bench.harness.options import option_defaults
from bench.measure import profile, sampling
from bench.measure.jobs import FAST_BATCHES, train_step_params
from bench.measure.profile import COMPILED, op_name
from bench.measure.sampling import Job, Server, Side, WorkerFailed, WorkerPool, schedule, summary
from fixtures.sampling import INJECT_ENV, injected_slowdown

PARAMS = {"implementation": "blocked", "window": 32, "seq_len": 512, "batch": 2, "passes": "forward"}
JOB = Job("attention_step", PARAMS, rounds=2, warmup=1)


@pytest.fixture(scope="module")
def server():
    """One server's imports for the module (each costs seconds); every pool forks its own workers."""
    server = Server(Side(), option_defaults(), threads=1)
    yield server
    server.close()


@pytest.fixture(scope="module")
def pool(server):
    with WorkerPool(option_defaults(), workers=2, threads=1, server=server) as workers:
        yield workers


def check_samples(samples) -> None:
    assert len(samples) == 2
    assert len({s.pid for s in samples}) == 2 and os.getpid() not in {s.pid for s in samples}
    for sample in samples:
        assert len(sample.seconds) == len(sample.calibration) == JOB.rounds
        assert all(v > 0 for v in (*sample.seconds, *sample.calibration))


def test_each_worker_is_its_own_process_and_keeps_every_round(pool):
    samples = pool.sample(JOB)
    check_samples(samples)
    info = summary(samples, JOB, threads=1)
    assert info["workers"] == 2 and info["rounds_per_worker"] == 2 and info["worker_threads"] == 1
    assert info["process_rounds"] == [s.seconds for s in samples]
    ratios = [s / c for s, c in zip(samples[0].seconds, samples[0].calibration, strict=True)]
    assert info["normalized_medians"][0] == pytest.approx(sum(ratios) / 2)  # median of two rounds


def test_sequential_sampling_keeps_the_same_shape(server):
    with WorkerPool(option_defaults(), workers=2, threads=1, interleave=False, server=server) as workers:
        check_samples(workers.sample(JOB))
    server.spawn(want_facts=False).close()  # a pool leaves the server it was given running


def test_a_failing_job_names_itself_and_its_cause_and_the_pool_goes_on(pool):
    bad = Job("attention_step", {**PARAMS, "implementation": "nope"}, rounds=1)
    with pytest.raises(
        WorkerFailed, match=r"(?s)attention_step\(implementation=nope.*ValueError: unknown attention 'nope'"
    ):
        pool.sample(bad)
    check_samples(pool.sample(JOB))


def test_a_closed_worker_has_exited_and_a_dead_one_troubles_nobody(pool):
    """close() returns once the process is gone, not a zombie of its server, so the next workers
    never start beside one still exiting; closing one that died and was reaped already is fine."""
    worker = pool.server.spawn(want_facts=False)
    worker.close()
    with pytest.raises(ProcessLookupError):
        os.kill(worker.pid, 0)
    dead = pool.server.spawn(want_facts=False)
    os.kill(dead.pid, signal.SIGKILL)
    assert pool.server.exitcode(dead.pid) == -9
    dead.close()
    assert pool.server.exitcode(dead.pid) == "unknown"  # the server still answers
    check_samples(pool.sample(JOB))


def test_a_workers_counts_are_the_same_after_other_jobs_as_alone(pool, server):
    """The epoch's counted round (bench/measure/counts.py; its peak is the epoch benchmark's memory
    figure) counts its own work: a worker that ran the attention rows first gives the counts a fresh
    worker gives, the peak bytes included."""
    params = {"data_path": "device", "rounds": 2, "max_samples": 4, "warmup_steps": 1, "batch_size": 4}
    epoch = Job("epoch", params, rounds=1, warmup=0)
    pool.sample(JOB)
    after = pool.sample(epoch)
    with WorkerPool(option_defaults(), workers=1, threads=1, server=server) as fresh:
        (alone,) = fresh.sample(epoch)
    assert [s.exact for s in after] == [alone.exact] * 2
    assert alone.exact["peak_bytes"] > 0


def test_a_worker_that_dies_is_reported(server):
    with WorkerPool(option_defaults(), workers=1, threads=1, server=server) as workers:
        os.kill(workers.workers[0].pid, signal.SIGKILL)
        with pytest.raises(WorkerFailed, match=r"worker \d+ died \(exit code -9\)"):
            workers.sample(JOB)


def test_a_server_that_cannot_start_says_why(tmp_path):
    """An interpreter without the suite's packages: its error comes back, before anything is timed."""
    no_site = tmp_path / "python"
    no_site.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    no_site.chmod(0o755)
    with pytest.raises(WorkerFailed, match=r"(?s)could not start.*No module named 'torch'"):
        WorkerPool(option_defaults(), workers=1, threads=1, side=Side(python=str(no_site)))


@pytest.mark.parametrize(("value", "message"), [("x", "not a number"), ("-0.1", "must be >= 0")])
def test_the_injected_slowdown_is_checked(monkeypatch, value, message):
    monkeypatch.setenv(INJECT_ENV, value)
    with pytest.raises(pytest.UsageError, match=message):
        injected_slowdown()


def test_a_finished_job_gives_its_memory_back_through_one_code_path(run_spec):
    """bench/measure/worker.py's release_memory runs when a job ends on any device: the side's cached
    initial model goes (on CUDA the caching allocator's blocks follow with empty_cache), so the next
    job, or the other A/B side's process, has the device to itself."""
    from bench.measure import workloads
    from bench.measure.worker import release_memory

    workloads.initial_model(run_spec)
    assert workloads._initial_models
    release_memory(run_spec.device)
    assert workloads._initial_models == {}  # the worker holds the weights no more


# operators the profiler and the dispatch-mode counter (counts.py) both see once a call: kernels
# that autograd or the model call and no other kernel calls inside itself (a composite such as
# aten::linear reaches the profiler but not the counter, which sees what it decomposes into; a
# copy_ or empty inside a kernel reaches the profiler alone)
LEAF_OPS = ("mm", "addmm", "bmm", "gelu", "gelu_backward", "native_layer_norm", "_softmax", "embedding")


def test_a_profiled_pass_counts_the_calls_the_counted_round_counts(pool):
    """After its timed rounds every worker profiles one more round of the same step
    (bench/measure/profile.py): its leaf operators' calls are the exact counts' op calls, and the
    summary keeps one table a process; a job not profiled keeps none."""
    job = Job("training_step", train_step_params("hf", FAST_BATCHES[-1]), rounds=1, warmup=1, profiled=True)
    samples = pool.sample(job)
    for sample in samples:
        calls = {op: entry[1] for op, entry in sample.profile["ops"].items()}
        assert {op: calls[f"aten::{op}"] for op in LEAF_OPS} == {
            op: sample.exact[f"op_calls.aten.{op}"] for op in LEAF_OPS
        }
        assert all(entry[0] >= 0 and entry[2] == 0 for entry in sample.profile["ops"].values())  # no CUDA
        assert sample.profile["device"] is False and sample.profile["seconds"] > 0
    profile = summary(samples, job, threads=1)["profile"]
    assert profile["ops"] == sorted(samples[0].profile["ops"].keys() | samples[1].profile["ops"].keys())
    assert len(profile["self_us"]) == len(profile["calls"]) == len(profile["seconds"]) == 2
    assert "device_us" not in profile
    assert "profile" not in summary(pool.sample(JOB), JOB, threads=1)


def test_the_profiled_pass_keeps_within_its_budget(pool):
    """No time for two slots' estimate: no worker profiles; an infinite budget: every one."""
    job = Job("attention_step", PARAMS, rounds=1, warmup=1, profiled=True)
    slots = [[worker] for worker in pool.workers]
    assert [s.profile for s in schedule(slots, job, True, profile_seconds=0.0).values()] == [None, None]
    assert all(s.profile["ops"] for s in schedule(slots, job, True).values())


def test_the_profiled_passs_estimate_counts_the_rounds_profile_py_takes():
    """sampling.py cannot import profile.py (import-linter: no torch below the verdicts), so it
    keeps its own copy of the rounds a pass profiles: the two must agree."""
    assert sampling.PROFILE_ROUNDS == profile.PROFILE_ROUNDS


def test_the_profile_keeps_aten_operators_and_compiled_graphs_under_one_name():
    """flex_attention on the CPU and --compile run as compiled graphs, each an event named by its
    hash with no aten operator inside: their time is kept, under one name; dynamo's ranges not."""
    assert op_name("aten::gelu") == "aten::gelu"
    assert op_name("## Call CompiledFxGraph ffmmxhgrhz2iyznw ##") == COMPILED == "compiled::graphs"
    assert [op_name(key) for key in ("Torch-Compiled Region: 0/0", "TorchDynamo Cache Lookup")] == [
        None,
        None,
    ]

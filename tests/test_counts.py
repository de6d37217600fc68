"""Exact counts of one round (bench/measure/counts.py, the workers' counted round): values derived by
hand on tiny work, the same counts twice, in two worker processes and in-process, and an error that
names the keys where the processes of a benchmark disagree."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from bench.harness.options import option_defaults
from bench.harness.spec import build_spec
from bench.measure import worker
from bench.measure.ab import BASELINE, CANDIDATE, Pair
from bench.measure.counts import count_round
from bench.measure.jobs import ATTENTION_WARMUP, TRAIN_STEP_WARMUP, train_step_params
from bench.measure.sampling import CountsDiffer, Job, ProcessSample, Server, Side, WorkerPool, summary
from bench.measure.workloads import Workload, attention_step, build, release, training_step
from bench.verdicts.pairs import side_json

FLOAT = 4  # bytes of a float32
CPU = torch.device("cpu")


def test_a_matmuls_flops_and_what_it_saves_are_derived_exactly():
    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 32, bias=False)
    x = torch.randn(8, 64)

    def step() -> None:
        layer.weight.grad = None
        layer(x).relu().sum().backward()

    counts = count_round(step, CPU, lambda: [layer.weight])
    # x @ W^T forward, and the weight's gradient of the same size (x needs none): 2 * 8 * 64 * 32 each
    assert counts["flops"] == 2 * (2 * 8 * 64 * 32)
    # the matmul keeps x for the weight's gradient, relu keeps its output
    assert counts["saved_bytes"] == (8 * 64 + 8 * 32) * FLOAT
    assert counts["op_calls.aten.mm"] == 2
    assert counts["op_calls"] == sum(n for key, n in counts.items() if key.startswith("op_calls."))


def test_a_storage_saved_twice_or_through_two_views_counts_once():
    v = torch.randn(1000, requires_grad=True)
    assert count_round(lambda: (v * v).sum(), CPU)["saved_bytes"] == 1000 * FLOAT
    assert count_round(lambda: (v[:500] * v[500:]).sum(), CPU)["saved_bytes"] == 1000 * FLOAT


def test_the_peak_is_the_held_state_and_the_most_alive_at_once_and_ops_count_by_packet():
    held = torch.ones(1000)

    def step() -> None:
        a = torch.ones(500)
        b = a * 2  # 1000 + 500 + 500 floats alive together
        del a
        c = torch.ones(250)  # then 1000 + 500 + 250
        del b, c

    assert count_round(step, CPU, lambda: [held]) == {
        "flops": 0,
        "op_calls": 3,
        "op_calls.aten.mul": 1,
        "op_calls.aten.ones": 2,
        "peak_bytes": 2000 * FLOAT,
        "saved_bytes": 0,
    }
    assert "peak_bytes" not in count_round(step, CPU, peak=False)


def test_a_held_grad_that_the_round_sets_to_none_stops_counting_when_freed():
    weight = torch.nn.Parameter(torch.zeros(1000))
    weight.grad = torch.ones(1000)

    def step() -> None:
        weight.grad = None  # as zero_grad(set_to_none=True): 1000 floats freed
        weight.grad = torch.ones(1000)

    peak = count_round(step, CPU, lambda: [weight, weight.grad])["peak_bytes"]
    assert peak == 2000 * FLOAT  # not 3000: the held list does not keep the old grad alive


# the fast profile's training step at batch 2 (embedded model), and a fast attention row
TRAIN = Job("training_step", train_step_params("hf", 2), rounds=1, warmup=TRAIN_STEP_WARMUP)
ROW = {"implementation": "hf", "window": 32, "seq_len": 512, "batch": 2, "passes": "forward_backward"}
ATTENTION = Job("attention_step", ROW, rounds=1, warmup=ATTENTION_WARMUP)


def in_process(job: Job) -> dict[str, int]:
    """The job's counts as a worker takes them: built, warmed up, then one round counted."""
    spec = build_spec(**option_defaults())
    work = build(spec, job.workload, job.params)
    for _ in range(job.warmup):
        work.step()
    counts = count_round(work.step, spec.device, work.held)
    release()
    return counts


@pytest.fixture(scope="module")
def pool():
    server = Server(Side(), option_defaults(), threads=1)
    try:
        with WorkerPool(option_defaults(), workers=2, threads=1, server=server) as workers:
            yield workers
    finally:
        server.close()


@pytest.mark.parametrize("job", [TRAIN, ATTENTION], ids=["training step", "attention row"])
def test_the_counts_are_the_same_twice_in_two_workers_and_in_process(pool, job):
    here = in_process(job)
    assert in_process(job) == here
    samples = pool.sample(job)
    assert [s.exact for s in samples] == [here, here]
    assert summary(samples, job, threads=1)["exact"] == here
    assert here["flops"] > 0 and here["saved_bytes"] > 0 and here["peak_bytes"] > 0
    assert here["op_calls.aten.bmm"] > 0  # HF's layer multiplies its chunks batched


def test_the_counted_round_is_never_one_of_the_timed_rounds(pool):
    job = Job("attention_step", {**ROW, "passes": "forward"}, rounds=2, warmup=1)
    for counted, samples in (
        (True, pool.sample(job)),
        (False, pool.sample(dataclasses.replace(job, counted=False))),
    ):
        for sample in samples:
            assert len(sample.seconds) == len(sample.calibration) == len(sample.info) == job.rounds
            assert (sample.exact is not None) == counted


def differing(flops: tuple[int, int], ops: tuple[int, int]) -> list[ProcessSample]:
    return [
        ProcessSample(pid, [1.0], [1.0], exact={"flops": f, "op_calls": o, "saved_bytes": 8})
        for pid, f, o in zip((11, 12), flops, ops, strict=True)
    ]


def test_processes_that_count_differently_are_an_error_naming_the_benchmark_and_the_keys():
    job = Job("training_step", {}, rounds=1)
    with pytest.raises(
        CountsDiffer, match=r"test_x: .*2 of 3 keys: flops: 5 \(process 11\), 6 \(process 12\); op_calls"
    ):
        summary(differing((5, 6), (1, 2)), job, 1, "test_x")
    with pytest.raises(CountsDiffer, match=r"^test_x \(baseline\): .*1 of 3 keys: op_calls: 1"):
        Pair({BASELINE: job, CANDIDATE: job}, {BASELINE: differing((5, 5), (1, 2)), CANDIDATE: []}).exact(
            "test_x"
        )
    assert summary(differing((5, 5), (1, 1)), job, 1)["exact"] == {
        "flops": 5,
        "op_calls": 1,
        "saved_bytes": 8,
    }
    assert "exact" not in summary([ProcessSample(1, [1.0], [1.0])], job, 1)  # a run counted nothing


def test_an_ab_pair_keeps_each_sides_counts_in_both_files():
    job = Job("training_step", {}, rounds=1)
    old, new = {"flops": 5, "op_calls": 1}, {"flops": 5, "op_calls": 2}
    samples = {
        BASELINE: [ProcessSample(1, [1.0], [1.0], exact=old)],
        CANDIDATE: [ProcessSample(2, [1.0], [1.0], exact=new)],
    }
    pairs = {"t.py::test_x": ({BASELINE: job, CANDIDATE: job}, samples)}
    session = {"benchmarks": [{"fullname": "t.py::test_x", "extra_info": {}}]}
    ab = {"sides": {BASELINE: {}, CANDIDATE: {}}}
    for side in (BASELINE, CANDIDATE):
        (entry,) = side_json(session, side, pairs, 1, ab)["benchmarks"]
        assert entry["extra_info"]["exact"] == {BASELINE: old, CANDIDATE: new}


def test_the_worker_counts_an_old_layouts_workload_without_a_peak_and_a_new_ones_eager_step(monkeypatch):
    """A baseline checkout from before `held`, `eager_step` and `counts` (getattr): counted all the
    same, but with no peak (what it holds is unknown). A new one: its eager step is the one counted,
    its own counts merged in."""
    ran: list[str] = []

    def work(name: str):
        return lambda: (ran.append(name), torch.ones(10) * 2)

    built = {
        "old": SimpleNamespace(step=work("step")),
        "new": Workload(
            work("step"), held=list, eager_step=work("eager"), counts=lambda: {"graph_breaks": 3}
        ),
    }
    monkeypatch.setattr(
        worker, "side_module", lambda _: SimpleNamespace(build=lambda s, name, p: built[name])
    )
    job = {"params": {}, "rounds": 1, "warmup": 1, "slowdown": 0.0, "counted": True}
    ops = {"flops": 0, "op_calls": 2, "op_calls.aten.mul": 1, "op_calls.aten.ones": 1, "saved_bytes": 0}
    assert worker.TimedJob(SimpleNamespace(device=CPU), {**job, "workload": "old"}).exact == ops
    ran.clear()
    new = worker.TimedJob(SimpleNamespace(device=CPU), {**job, "workload": "new"})
    assert ran == ["step", "eager"]  # the warm-up round, then the counted one
    assert new.exact == {**ops, "graph_breaks": 3, "peak_bytes": 2 * 10 * FLOAT}


def test_a_round_no_dispatch_mode_can_run_is_counted_only_where_none_is_needed(monkeypatch):
    """flex_attention (a higher-order operator) runs under none of the counters: its workloads say
    so, and on the CPU nothing of such a round is counted (on CUDA its allocator peak is)."""
    spec = build_spec(**option_defaults())
    assert attention_step(spec, "flex", 32, 128, 1, "forward").uncounted
    assert not attention_step(spec, "hf", 32, 128, 1, "forward").uncounted
    assert not training_step(spec, "hf", 2, 1).uncounted and training_step(spec, "flex", 2, 1).uncounted
    assert count_round(lambda: torch.ones(10), CPU, modes=False) == {}
    uncountable = Workload(lambda: torch.ones(10), held=list, uncounted="no mode runs it")
    monkeypatch.setattr(worker, "side_module", lambda _: SimpleNamespace(build=lambda s, n, p: uncountable))
    job = {"workload": "x", "params": {}, "rounds": 1, "warmup": 0, "slowdown": 0.0, "counted": True}
    assert worker.TimedJob(SimpleNamespace(device=CPU), job).exact is None

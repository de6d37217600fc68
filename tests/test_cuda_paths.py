"""Every branch that only CUDA takes, run on the CPU against a torch.cuda that refuses what torch does.

No GPU runs in CI, so `torch.cuda` is stood in for by FakeCuda: two visible devices; `set_device`
refuses a device without an index exactly as torch does (torch._utils._get_device_index with
optional=False: `ValueError: Expected a torch.device with a specified index`); every call that takes
a device resolves it as torch does (no index: the current device) and is recorded, so that each test
asserts the call went to the run's device; events refuse `elapsed_time` before their end is
synchronized. What needs tensors on a CUDA device cannot run here (docs/development.md lists it).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch
from torch._utils import _get_device_index

import bench.benchmarks.test_attention_step as attention_benchmark
import bench.benchmarks.test_epoch_throughput as epoch_benchmark
import bench.benchmarks.test_train_step as train_step_benchmark
from bench.base.errors import BenchInputError
from bench.harness import distributed, fingerprint, metrics, runner
from bench.harness.device import PRECISIONS, resolve_device, resolve_precision, synchronize
from bench.harness.distributed import World, close_world, init_world, wrap
from bench.harness.options import option_defaults
from bench.harness.spec import build_spec, check_attention
from bench.harness.timing import Marks
from bench.harness.train import EpochRecord
from bench.measure import worker
from bench.measure.jobs import EPOCH_ROUNDS
from bench.measure.sampling import ProcessSample

VISIBLE = 2  # CUDA devices the stand-in shows: enough that a wrong index lands on another card


@dataclass(frozen=True)
class Stream:
    device: torch.device


class FakeCuda:
    """torch.cuda as far as the suite uses it, with no GPU behind it."""

    def __init__(self) -> None:
        self.current = 0  # torch's current device until set_device
        self.calls: list[tuple[str, torch.device]] = []
        self.allocated = self.peak = 0
        self.clock_ms = 0.0
        self.Event = self.event_class()

    def resolve(self, device) -> torch.device:
        """A device argument as torch.cuda resolves it: no index (or None) means the current one."""
        index = _get_device_index(device, optional=True)
        return torch.device("cuda", self.current if index in (None, -1) else index)

    def record(self, what: str, device) -> torch.device:
        resolved = self.resolve(device)
        self.calls.append((what, resolved))
        return resolved

    def devices(self, what: str) -> set[torch.device]:
        return {device for name, device in self.calls if name == what}

    def is_available(self) -> bool:
        return True

    def device_count(self) -> int:
        return VISIBLE

    def set_device(self, device) -> None:
        index = _get_device_index(device, optional=False)  # what torch.cuda.set_device does
        if not 0 <= index < VISIBLE:
            raise RuntimeError(f"CUDA error: invalid device ordinal {index}")
        self.current = index
        self.calls.append(("set_device", torch.device("cuda", index)))

    def current_device(self) -> int:
        return self.current

    def synchronize(self, device=None) -> None:
        self.record("synchronize", device)

    def current_stream(self, device=None) -> Stream:
        return Stream(self.record("current_stream", device))

    def reset_peak_memory_stats(self, device=None) -> None:
        self.record("memory", device)
        self.peak = self.allocated

    def memory_allocated(self, device=None) -> int:
        self.record("memory", device)
        return self.allocated

    def max_memory_allocated(self, device=None) -> int:
        self.record("memory", device)
        return self.peak

    def empty_cache(self) -> None:
        self.calls.append(("empty_cache", self.resolve(None)))

    def get_device_name(self, device=None) -> str:
        self.record("get_device_name", device)
        return "NVIDIA H200"

    def event_class(self) -> type:
        cuda = self

        class Event:
            def __init__(self, enable_timing: bool = False) -> None:
                self.enable_timing, self.at_ms, self.done = enable_timing, None, False

            def record(self, stream: Stream | None = None) -> None:
                stream = stream or cuda.current_stream()  # torch: the current device's stream
                cuda.calls.append(("event", stream.device))
                cuda.clock_ms += 250.0
                self.at_ms = cuda.clock_ms

            def synchronize(self) -> None:
                self.done = True

            def elapsed_time(self, end: Event) -> float:
                if not (self.enable_timing and end.enable_timing):
                    raise RuntimeError("Both events must be created with argument 'enable_timing=True'.")
                if self.at_ms is None or end.at_ms is None or not end.done:
                    raise RuntimeError("Both events must be recorded and completed before elapsed_time")
                return end.at_ms - self.at_ms

        return Event

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in (
            "is_available",
            "device_count",
            "set_device",
            "current_device",
            "synchronize",
            "current_stream",
            "reset_peak_memory_stats",
            "memory_allocated",
            "max_memory_allocated",
            "empty_cache",
            "get_device_name",
            "Event",
        ):
            monkeypatch.setattr(torch.cuda, name, getattr(self, name))


@pytest.fixture
def cuda(monkeypatch) -> FakeCuda:
    fake = FakeCuda()
    fake.install(monkeypatch)
    return fake


def cuda_spec(run_spec, index: int = 0):
    """The session's run spec (built on the CPU) as if its device were cuda:`index`."""
    return dataclasses.replace(run_spec, device=torch.device("cuda", index))


def test_every_cuda_device_is_resolved_with_its_index(cuda):
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(BenchInputError, match=f"only {VISIBLE} CUDA device"):
        resolve_device(f"cuda:{VISIBLE}")


class Pipe:
    """A worker's end of the pipe: the messages it will receive, and what it sends back."""

    def __init__(self, messages: list) -> None:
        self.messages, self.sent = list(messages), []

    def recv(self):
        return self.messages.pop(0)

    def send(self, answer) -> None:
        self.sent.append(answer)


@pytest.mark.parametrize("option", ["auto", "cuda", "cuda:1"])
def test_a_worker_computes_on_the_run_device(cuda, monkeypatch, option):
    """The default (--device auto) crashed every worker on its first GPU: `torch.cuda.set_device`
    refuses a device without an index. The spec is built from the option, as the server builds it;
    what would put tensors on the device (the workload, the calibration) is stood in for."""
    spec = build_spec(**{**option_defaults(), "device": option})
    built: list[torch.device] = []

    class Yardstick:
        def __init__(self, device) -> None:
            self.device = device
            built.append(device)

        def seconds(self) -> float:
            worker.synchronize(self.device)  # calibration.py's synchronize, as the real one ends
            return 0.5

    def build(spec, name, params):
        built.append(spec.device)
        return SimpleNamespace(step=lambda: {"name": name})

    workloads = SimpleNamespace(build=build, release=lambda: None)
    monkeypatch.setattr(worker, "side_module", lambda name: workloads)
    monkeypatch.setattr(worker, "Calibration", Yardstick)
    monkeypatch.setattr(worker, "ExtraWork", lambda device: built.append(device))
    job = {"workload": "step", "params": {}, "rounds": 1, "warmup": 1, "slowdown": 0, "counted": False}
    pipe = Pipe([("start", job, False), ("round", None, True), ("finish", None, False), None])
    worker.worker_loop(pipe, spec)

    assert [status for status, _ in pipe.sent] == ["ok", "ok", "ok"], pipe.sent[0][1]
    assert pipe.sent[1][1][2] == {"name": "step"}
    assert spec.device.index is not None and cuda.devices("set_device") == {spec.device}
    assert set(built) == {spec.device}  # the workload, the calibration and the slowdown's buffers
    assert cuda.devices("synchronize") == {spec.device}  # every timed round's synchronization
    assert [name for name, _ in cuda.calls].count("empty_cache") == 2  # before the job, after it


@pytest.mark.parametrize("option", ["auto", "cuda:1"])
def test_a_single_process_run_sets_the_run_device(cuda, monkeypatch, option):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    device = resolve_device(option)
    world, used = init_world(device)
    assert world == World(1, 0, 0) and used == device
    assert cuda.devices("set_device") == {device} and cuda.current == device.index


@pytest.mark.parametrize(
    "option, backend, device, device_ids",
    [("cuda:0", "nccl", torch.device("cuda", 1), [1]), ("cpu", "gloo", torch.device("cpu"), None)],
)
def test_torchrun_ranks_take_their_local_gpu_and_nccl(cuda, monkeypatch, option, backend, device, device_ids):
    """Under torchrun each rank computes on the GPU of its local rank, whatever --device named."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    groups: list[str] = []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: bool(groups))
    monkeypatch.setattr(distributed.dist, "init_process_group", groups.append)
    monkeypatch.setattr(distributed.dist, "destroy_process_group", groups.clear)
    wrapped: list[dict] = []

    def ddp(model, **kwargs):
        wrapped.append(kwargs)
        return model

    monkeypatch.setattr(distributed.nn.parallel, "DistributedDataParallel", ddp)
    world, used = init_world(resolve_device(option))
    assert (world, used, groups) == (World(2, 1, 1), device, [backend])
    assert cuda.devices("set_device") == ({device} if device.type == "cuda" else set())
    model = torch.nn.Linear(2, 2)
    assert wrap(model, world, used) is model
    assert wrapped == [{"device_ids": device_ids, "find_unused_parameters": True}]
    close_world(world)
    assert groups == []


def test_step_marks_time_the_run_devices_stream(cuda):
    """cuda:1 while the current device is still cuda:0: the events name the run's device's stream,
    and `seconds` reads them only after synchronizing the end (torch refuses otherwise)."""
    marks = Marks(torch.device("cuda", 1))
    start, end = marks.mark(), marks.mark()
    assert marks.seconds(start, end) == 0.25
    assert cuda.devices("event") == {torch.device("cuda", 1)}


@pytest.mark.parametrize("device", [torch.device("cuda", 1), torch.device("cpu")])
def test_only_cuda_synchronizes_and_on_the_run_device(cuda, device):
    synchronize(device)
    worker.synchronize(device)  # calibration.py's, loaded by path
    assert cuda.devices("synchronize") == ({device} if device.type == "cuda" else set())


def test_peak_memory_is_read_on_the_run_device(cuda, model):
    """While the current device is cuda:0, the run's cuda:1 is the one measured; the peak counts
    what the function allocated on top of what was resident."""
    from bench.harness.train import make_optimizer

    device = torch.device("cuda", 1)
    cuda.allocated = 1000

    def train() -> None:
        cuda.peak = 1700

    assert metrics.peak_cuda_bytes(train, device) == 700
    optimizer = make_optimizer(model)
    state = metrics.training_state_bytes(model, optimizer)
    assert metrics.training_peak_cuda_bytes(train, device, model, optimizer) == state + 700
    assert cuda.devices("memory") == cuda.devices("synchronize") == {device}


def test_the_counted_rounds_peak_on_cuda_is_the_held_state_and_the_allocators_peak(cuda):
    """bench/measure/counts.py on CUDA: the held bytes (each storage once) plus the allocator's
    peak above what was allocated when the round began, read on the run's device after a reset."""
    from bench.measure.counts import count_round

    device = torch.device("cuda", 1)
    cuda.allocated = 1000  # the process's other tensors: not the round's
    weight = torch.ones(100)

    def step() -> None:
        cuda.peak = cuda.allocated + 700

    counts = count_round(step, device, lambda: [weight, weight[:10]])
    assert counts["peak_bytes"] == 100 * 4 + 700
    assert cuda.devices("memory") == cuda.devices("synchronize") == {device}
    # a round no dispatch mode can run (flex attention): its peak alone
    assert count_round(step, device, lambda: [weight], modes=False) == {"peak_bytes": 100 * 4 + 700}


def test_precisions_on_cuda(cuda, monkeypatch):
    """TF32 is accepted on a CUDA device and on only inside the step; bf16 autocasts on the CUDA
    device type (torch.autocast is stood in for: the real one needs the GPU's properties)."""
    device = torch.device("cuda", 0)
    assert resolve_precision("tf32", device) is PRECISIONS["tf32"]
    autocasts: list[tuple[str, torch.dtype]] = []

    @dataclass
    class Autocast:
        device_type: str
        dtype: torch.dtype

        def __enter__(self) -> None:
            autocasts.append((self.device_type, self.dtype))

        def __exit__(self, *exc) -> None:
            return None

    monkeypatch.setattr(torch, "autocast", Autocast)
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    for name, tf32 in (("tf32", True), ("bf16", False), ("fp32", False)):
        with resolve_precision(name, device).active(device):
            assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (tf32, tf32)
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    assert autocasts == [("cuda", torch.bfloat16)]


def test_the_fingerprint_names_the_run_devices_card(cuda, monkeypatch):
    monkeypatch.setattr(fingerprint, "nvidia_driver", lambda: "570.1")
    machine = fingerprint.machine_fingerprint(torch.device("cuda", 1), "bf16")
    assert (machine["device"], machine["gpu_name"], machine["gpu_count"], machine["gpu_driver"]) == (
        "cuda",
        "NVIDIA H200",
        VISIBLE,
        "570.1",
    )
    assert cuda.devices("get_device_name") == {torch.device("cuda", 1)}


def test_flex_trains_only_on_cuda(run_spec):
    config = copy.deepcopy(run_spec.config)
    config.attention_probs_dropout_prob = 0.0
    check_attention("flex", torch.device("cuda", 0), config)  # accepted
    with pytest.raises(BenchInputError, match="no backward on the CPU"):
        check_attention("flex", torch.device("cpu"), config)


def test_conftest_skips_gpu_tests_only_without_cuda(monkeypatch):
    import conftest

    def items() -> list[SimpleNamespace]:
        item = SimpleNamespace(keywords={"gpu": True}, markers=[])
        item.add_marker = item.markers.append
        return [item]

    with_gpu = items()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    conftest.pytest_collection_modifyitems(None, with_gpu)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    without = items()
    conftest.pytest_collection_modifyitems(None, without)
    assert with_gpu[0].markers == [] and [m.name for m in without[0].markers] == ["skip"]


def test_cuda_out_of_memory_ends_the_run_with_advice(run_spec, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(runner, "Trainer", out_of_memory)
    record = runner.run_training(run_spec, World(1, 0, 0), n_epochs=1, max_steps=1)
    assert record["status"] == "out_of_memory" and not record["finished"]
    assert "lower --batch-size or --seq-len" in record["error"]


def probe_of(median: float):
    return lambda job: ProcessSample(pid=0, seconds=[median], calibration=[median], info=[None])


def test_cuda_plans_whole_epochs_first_and_steps_at_the_run_batch(run_spec):
    """On CUDA the fast profile's epoch benchmark tries whole epochs before slices, and its training
    step trains at the run's batch; the CPU plans slices from the same probe."""
    fast = probe_of(1e-4)
    plan, planned = epoch_benchmark.fast_plan(fast, cuda_spec(run_spec), None)
    assert (plan.max_samples, plan.rounds, plan.warmup_rounds, planned) == (0, EPOCH_ROUNDS, 0, "probed")
    assert epoch_benchmark.fast_plan(fast, run_spec, None)[0].max_samples > 0
    assert train_step_benchmark.fast_batch(fast, cuda_spec(run_spec), None)[0] == run_spec.batch_size


def test_cuda_epochs_report_the_cards_peak_and_mfu(cuda, run_spec):
    spec = cuda_spec(run_spec)
    record = EpochRecord(0, 2, 32, 1.0, [0.5, 0.5], [0.4, 0.4], [3.0, 2.5])
    epochs = [
        {
            "record": record,
            "train_seconds": 1.2,
            "accuracy": 0.1,
            "eval_samples": 8,
            "process_max_rss_bytes": 10,
        }
    ]
    benchmark = SimpleNamespace(extra_info={"exact": {"peak_bytes": 9}})  # the counted round's
    plan = epoch_benchmark.EpochPlan(0, EPOCH_ROUNDS, 0)
    epoch_benchmark.record_epochs(lambda *args: epochs, benchmark, spec, "device", plan)
    info = benchmark.extra_info
    assert (info["peak_tensor_bytes"], info["peak_tensor_kind"]) == (9, "cuda allocator")
    assert info["peak_flops_per_s"] == metrics.PEAK_FLOPS["NVIDIA H200"]["fp32"]
    assert info["mfu"] == info["achieved_flops_per_s"] / info["peak_flops_per_s"]
    assert cuda.devices("get_device_name") == {spec.device}


def test_cuda_attention_layers_report_their_peak_memory(run_spec, monkeypatch):
    """On CUDA a layer's memory is its peak on the device; the layer itself is built on the CPU here."""
    measured: list[torch.device] = []

    def peak(step, device) -> int:
        measured.append(device)
        return 4096

    on_cpu = attention_benchmark.attention_step
    monkeypatch.setattr(
        attention_benchmark, "attention_step", lambda spec, **params: on_cpu(run_spec, **params)
    )
    monkeypatch.setattr(attention_benchmark, "peak_cuda_bytes", peak)
    exact = {"flops": 7, "saved_bytes": 5, "peak_bytes": 3}  # the workers' counted round's
    benchmark = SimpleNamespace(extra_info={"process_medians": [0.01], "exact": exact})
    params = attention_benchmark.layer_params("blocked", (32, 64, 1), "forward")
    attention_benchmark.measure_layer(lambda *args: None, benchmark, cuda_spec(run_spec, 1), params)
    assert benchmark.extra_info["peak_cuda_bytes"] == 4096
    assert benchmark.extra_info["counted_flops"] == 7
    assert "saved_bytes_for_backward" not in benchmark.extra_info
    assert measured == [torch.device("cuda", 1)]

"""Peak tensor memory (bench/measure/memory.py): exact bytes, the job's own, growing with its batch."""

from __future__ import annotations

import pytest
import torch

from bench.measure.memory import TensorMemory, peak_tensor_bytes, training_peak_tensor_bytes

FLOAT = 4  # bytes of a float32
# From batch 4 to 16 the embedded model's training tensors grew 3.6x by MemTracker, its worker's
# RSS 1.4x (issue 29): a figure of the training's own memory grows at least this much.
GROWTH = 2.5


def test_it_counts_allocations_once_and_never_views_in_place_ops_or_what_was_there():
    before = torch.zeros(1000)
    assert peak_tensor_bytes(lambda: torch.ones(1000)) == 1000 * FLOAT
    assert peak_tensor_bytes(lambda: torch.ones(1000).add_(1).view(10, 100)[2:].t()) == 1000 * FLOAT
    assert peak_tensor_bytes(lambda: (before.add_(1), before[10:].view(-1, 10))) == 0
    assert peak_tensor_bytes(lambda: before + 1) == 1000 * FLOAT


def test_what_is_freed_stops_counting_and_the_peak_is_the_most_alive_at_once():
    def work() -> None:
        a = torch.ones(1000)
        b = torch.ones(500)
        del a  # 1500 floats were alive together
        c = torch.ones(1200)  # then 500 + 1200
        del b, c

    assert peak_tensor_bytes(work) == 1700 * FLOAT
    with TensorMemory() as memory:
        work()
    assert memory.live == 0 and memory.peak == 1700 * FLOAT


def test_held_tensors_count_from_the_start_until_they_are_freed():
    held = [torch.ones(1000)]
    assert peak_tensor_bytes(lambda: torch.ones(10), held) == 1010 * FLOAT
    assert peak_tensor_bytes(lambda: (held.clear(), torch.ones(900)), held) == 1000 * FLOAT


def small_training():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.GELU(), torch.nn.Linear(256, 64))
    optimizer = torch.optim.AdamW(model.parameters())

    def step(batch: int) -> None:
        model(torch.randn(batch, 64)).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(2)  # AdamW's moments exist from here on
    return model, optimizer, step


def test_a_training_step_counts_exactly_what_torchs_own_mem_tracker_counts():
    """torch's MemTracker (a private module of torch.distributed) counts storages the same way; on a
    step whose every tensor it tracks (the model and optimizer handed to it), the peaks agree."""
    try:
        from torch.distributed._tools.mem_tracker import MemTracker
    except ImportError as err:
        pytest.skip(f"torch has no MemTracker to agree with here: {err}")
    model, optimizer, step = small_training()
    for batch in (4, 64):
        ours = training_peak_tensor_bytes(lambda: step(batch), model, optimizer)  # noqa: B023
        tracker = MemTracker()
        tracker.track_external(model, optimizer)
        with tracker:
            step(batch)
        (theirs,) = tracker.get_tracker_snapshot("peak").values()
        assert ours == theirs["Total"]


def epoch_peak(run_spec, batch: int) -> int:
    """The epoch workload's counted round at `batch` (one step, its evaluation at the same batch),
    as the worker counts it (bench/measure/counts.py): its peak, the training state included."""
    from bench.measure.counts import count_round
    from bench.measure.workloads import epoch

    work = epoch(run_spec, "device", 1, max_samples=batch, warmup_steps=1, batch_size=batch)
    return count_round(work.step, run_spec.device, work.held)["peak_bytes"]


def test_the_epoch_peak_is_the_jobs_own_and_grows_with_the_batch(run_spec):
    """The same bytes before and after the attention rows ran in the process (they hold nothing
    afterwards but what the process keeps: caches, the allocator's free memory), and the training's
    tensors (activations) grow with the batch where the process's RSS barely did (issue 29)."""
    from bench.measure.workloads import attention_step, release

    if run_spec.device.type != "cpu":
        pytest.skip("tensors are tracked on the CPU; CUDA's counted round reads the allocator's peak")
    small, large = epoch_peak(run_spec, 4), epoch_peak(run_spec, 16)
    for implementation in ("hf", "blocked"):
        attention_step(run_spec, implementation, 32, 512, 2, "forward_backward").step()
    release()
    assert epoch_peak(run_spec, 4) == small
    assert large / small >= GROWTH

"""Exact counts of one round of work: FLOPs, bytes saved for backward, the peak of live tensor bytes,
and aten operator calls, all taken in one pass. The same code, stack and input give the same counts.

The worker (worker.py, the driving checkout's copy) loads this file from its own folder, as it
loads calibration.py, so that both sides of an A/B session, an old baseline's checkout too, are
counted by the same instrument; it imports torch and memory.py beside it (relatively), nothing of
the suite by name. The counts of a round (`count_round`), a flat dict[str, int]:

- `flops`: torch.utils.flop_counter.FlopCounterMode's total (matmul-like operators only: mm, bmm,
  addmm, convolutions, SDPA, the CPU flash kernel included below; elementwise work is no FLOP to it);
- `saved_bytes`: bytes of the tensors autograd packs for backward (torch.autograd.graph.
  saved_tensors_hooks), each storage once however often or through whichever view it is saved;
- `peak_bytes`: live tensor bytes at their most, the workload's `held` state (parameters, grads,
  optimizer state) counted from the start: on the CPU memory.py's TensorMemory (what operators
  allocate), on CUDA the held bytes plus the allocator's peak above what was allocated at the start;
- `op_calls` and `op_calls.<packet>` (e.g. `op_calls.aten.mm`): aten operator calls that reach the
  dispatcher's Python key, by overload packet.

The three dispatch modes are stacked so each sees every operator of the round once: TensorMemory
entered first (called last, so it sees what the others pass down), then the operator counter, then
FlopCounterMode, which is called first and decomposes the operators it has no formula for inside
itself, so the modes below it count the decomposed operators, the ones that actually run.
"""

from __future__ import annotations

import contextlib
import gc
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from . import memory  # relative: in the worker, the driving checkout's memory.py beside this file

OP_PREFIX = "op_calls."


def _cpu_flash_sdpa(query, key, value, *args, out_val=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_flash_sdpa_backward(grad_out, query, key, value, *args, out_val=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


# torch's counter knows the CUDA SDPA kernels but not the CPU flash kernel; count it the same way.
CPU_SDPA_FORMULAS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_sdpa,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_flash_sdpa_backward,
}


def flop_counter() -> FlopCounterMode:
    return FlopCounterMode(display=False, custom_mapping=CPU_SDPA_FORMULAS)


def counted_flops(fn: Callable[[], object]) -> int:
    """FLOPs torch's flop counter attributes to one call of `fn` (forward and any backward in it)."""
    with flop_counter() as counter:
        fn()
    return int(counter.get_total_flops())


class OpCalls(TorchDispatchMode):
    """Calls of every aten operator run inside it, by overload packet ('aten.mm')."""

    def __init__(self) -> None:
        super().__init__()
        self._by_overload: Counter = Counter()  # by the overload object: no name made per call

    @property
    def calls(self) -> Counter[str]:
        calls: Counter[str] = Counter()
        for func, n in self._by_overload.items():
            calls[str(func.overloadpacket)] += n
        return calls

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self._by_overload[func] += 1
        return func(*args, **(kwargs or {}))


class SavedBytes(contextlib.AbstractContextManager):
    """Bytes of the storages autograd saves for backward inside it, each storage once: a storage
    already seen is known by identity while it lives (a WeakSet: a freed storage's address, reused
    by a new one, is a new storage), so the count does not depend on where the allocator put it."""

    def __init__(self) -> None:
        self.bytes = 0
        self._seen: weakref.WeakSet[torch.UntypedStorage] = weakref.WeakSet()
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda tensor: tensor)

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage not in self._seen:
            self._seen.add(storage)
            self.bytes += storage.nbytes()
        return tensor

    def __enter__(self) -> SavedBytes:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


def saved_bytes_for_backward(fn: Callable[[], object]) -> int:
    """Bytes of the distinct storages autograd keeps for backward while `fn` runs."""
    with SavedBytes() as saved:
        fn()
    return saved.bytes


def storage_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind `tensors` (a view and its base count once)."""
    return sum({id(s): s.nbytes() for t in tensors for s in [t.untyped_storage()]}.values())


@contextlib.contextmanager
def no_collection() -> Iterator[None]:
    """The cycle collector off inside: when it would run depends on what the process allocated
    before (a worker's history), and a cycle it freed mid-round would move the peak. Off, the
    round's own cyclic garbage counts as live until the round ends, in every process alike. (A full
    collection before the round would do too, but costs 0.3-0.4 s with torch and transformers
    loaded, more than most counted rounds.)"""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def count_round(
    step: Callable[[], object],
    device: torch.device,
    held: Callable[[], list[torch.Tensor]] | None = None,
    peak: bool = True,
    modes: bool = True,
) -> dict[str, int]:
    """The exact counts of one call of `step` (the module's docstring), keys sorted. `held` gives the
    state alive between rounds, counted in the peak from the start; `peak` False leaves the peak out
    (a workload that cannot say what it holds: its peak would be a different figure). `modes` False
    (a round no dispatch mode can run) counts only what needs none: on CUDA the peak, on the CPU
    nothing."""
    state = held() if held is not None else []
    held_bytes = storage_bytes(state)
    on_cuda = device.type == "cuda"
    with contextlib.ExitStack() as stack:
        stack.enter_context(no_collection())
        tracked = peak and modes and not on_cuda
        tensors = stack.enter_context(memory.TensorMemory()) if tracked else None
        if tensors is not None:
            tensors.hold(state)
        del state  # a grad the round sets to None is freed then, not kept alive by this list
        if modes:
            calls = stack.enter_context(OpCalls())
            saved = stack.enter_context(SavedBytes())
            flops = stack.enter_context(flop_counter())  # entered last: called first (see above)
        if on_cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
        step()
        if on_cuda:
            torch.cuda.synchronize(device)
            cuda_peak = held_bytes + torch.cuda.max_memory_allocated(device) - before
    counts: dict[str, int] = {}
    if modes:
        by_packet = calls.calls
        counts.update(
            flops=int(flops.get_total_flops()), saved_bytes=saved.bytes, op_calls=sum(by_packet.values())
        )
        counts.update({OP_PREFIX + name: n for name, n in by_packet.items()})
    if peak and on_cuda:
        counts["peak_bytes"] = cuda_peak
    elif tracked:
        counts["peak_bytes"] = tensors.peak
    return dict(sorted(counts.items()))

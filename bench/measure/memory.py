"""The peak bytes of the tensors a piece of work holds at once, counted tensor by tensor on any device.

On CUDA the caching allocator keeps its own peak (bench/harness/metrics.py `peak_cuda_bytes`); the
CPU has no such counter, and a process's resident size is mostly torch itself and whatever ran in
the process before. `TensorMemory` is a dispatch mode that sees every operator's outputs: a storage
that none of the operator's inputs holds is new, and counts from then until it is freed (a weakref
finalizer: torch keeps one Python object a storage for as long as the storage lives). The figure is
exact for what it counts and depends on nothing but the work: the same work gives the same bytes,
whatever the process did before. It leaves out what no operator returns (a kernel's own scratch
buffers, tensors made from NumPy arrays or received from a DataLoader's worker processes) and a
storage resized behind the dispatcher's back (`UntypedStorage.resize_`, which FSDP uses).

torch's own `MemTracker` (torch.distributed._tools.mem_tracker) counts the same way, but it is a
private module of torch.distributed, adds module and optimizer hooks and a snapshot per operator,
and counts the whole storage of a view of an untracked tensor (a batch sliced from the data set)
as new memory; this mode counts allocations only.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


def _storages(tree: object) -> list[torch.UntypedStorage]:
    leaves, _ = tree_flatten(tree)
    return [leaf.untyped_storage() for leaf in leaves if isinstance(leaf, torch.Tensor)]


class TensorMemory(TorchDispatchMode):
    """Live and peak bytes of the storages the operators run inside it allocate, plus those handed
    to `hold` (state that exists before the work and may be freed inside it, such as gradients)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self.sizes: dict[int, int] = {}  # id of a live tracked storage -> its bytes

    def hold(self, tensors: Iterable[torch.Tensor]) -> None:
        """Count these tensors' storages from now on, as if allocated here."""
        for storage in {id(s): s for t in tensors for s in _storages(t)}.values():
            self._count(storage)

    def _count(self, storage: torch.UntypedStorage) -> None:
        key, size = id(storage), storage.nbytes()
        if key not in self.sizes:
            weakref.finalize(storage, self._free, key).atexit = False  # none left to count then
            self.sizes[key] = 0
        self.live += size - self.sizes[key]  # a tracked storage that an operator resized: the change
        self.sizes[key] = size
        self.peak = max(self.peak, self.live)

    def _free(self, key: int) -> None:
        self.live -= self.sizes.pop(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = {id(s) for s in _storages((args, kwargs))}
        out = func(*args, **kwargs)
        for storage in _storages(out):
            key = id(storage)
            if key in self.sizes or key not in inputs:  # new, or tracked and maybe resized in place
                self._count(storage)
        return out


def peak_tensor_bytes(fn: Callable[[], object], held: Iterable[torch.Tensor] = ()) -> int:
    """The most bytes of tensors alive at once while `fn` runs: those it allocates, plus `held`
    (counted from the start, and until they are freed). Garbage from before is collected first,
    so that when a cycle is collected inside `fn` does not depend on what the process did."""
    gc.collect()
    with TensorMemory() as memory:
        memory.hold(held)
        fn()
    return memory.peak


def training_tensors(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """What a training run keeps between steps: parameters, gradients, optimizer state (the same
    as bench/harness/metrics.py `training_state_bytes` counts)."""
    tensors = list(model.parameters())
    tensors += [p.grad for p in model.parameters() if p.grad is not None]
    tensors += [t for state in optimizer.state.values() for t in state.values() if torch.is_tensor(t)]
    return tensors


def training_peak_tensor_bytes(
    fn: Callable[[], object], model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> int:
    """The training's own peak while `fn` trains, counted by tensor: its state at the start
    (training_tensors) and what `fn` allocates, at their most; the data set and anything else the
    process holds are left out, as `training_peak_cuda_bytes` leaves them out on CUDA."""
    return peak_tensor_bytes(fn, training_tensors(model, optimizer))

"""Structural regressions for measuring the exact counts: transformers' Longformer made to do more.

On PYTHONPATH with LFBENCH_STRUCTURAL set to a comma list of these names, every interpreter that
imports transformers' Longformer (the pytest process, `python -m bench ab`'s servers and so their
forked workers) gets its classes patched as the module is imported:

- `saved-activation`: the feed-forward block's activation (LongformerIntermediate's output) is
  multiplied by a fresh tensor of ones, which autograd keeps for backward: one more saved tensor of
  batch x seq x intermediate elements in every layer; the values and gradients are unchanged.
- `item`: every layer (LongformerLayer) first asks the host whether its input holds a NaN
  (`.isnan().any().item()`): a host sync, and a graph break under torch.compile; nothing else.
- `mlm-matmul`: the MLM head (LongformerLMHead) multiplies its input by an identity matrix first:
  one more batch*seq x hidden x hidden matrix product forward and one backward, the result
  unchanged.
- `slow-gelu`: the feed-forward activation (LongformerIntermediate's, gelu) is applied
  LFBENCH_SLOW_GELU_TIMES - 1 more times (default 10 in all) in every layer, to a tensor of its
  size, without autograd, the results thrown away: more work of one aten operator kind
  (aten::gelu) alone, the output unchanged. The injection `ab --explain` is checked against
  (docs/ab.md, "Where the time went").

Unset or empty: nothing is changed. An unknown name stops the interpreter at its start (exit 2)
with a message naming the variable. Not part of the suite: the measurements in docs/verdicts.md
point `ab` at it (the baseline given `--baseline-env LFBENCH_STRUCTURAL=`); tests/test_structural.py
imports it by path and uses `injected` to patch and restore in-process.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator

VARIABLE = "LFBENCH_STRUCTURAL"
TARGET = "transformers.models.longformer.modeling_longformer"
MARK = "lfbench_structural"  # set on every patched method: the injection's name


def with_saved_ones(module) -> tuple[type, Callable]:
    """`saved-activation`: the class to patch and its new forward."""
    original = module.LongformerIntermediate.forward

    def forward(self, hidden_states):
        out = original(self, hidden_states)
        return out * module.torch.ones_like(out)  # the ones are saved for out's gradient

    return module.LongformerIntermediate, forward


def with_item(module) -> tuple[type, Callable]:
    """`item`: the class to patch and its new forward."""
    original = module.LongformerLayer.forward

    def forward(self, hidden_states, *args, **kwargs):
        hidden_states.isnan().any().item()  # a NaN check that syncs with the host
        return original(self, hidden_states, *args, **kwargs)

    return module.LongformerLayer, forward


def with_identity_matmul(module) -> tuple[type, Callable]:
    """`mlm-matmul`: the class to patch and its new forward."""
    original = module.LongformerLMHead.forward

    def forward(self, features, **kwargs):
        torch = module.torch
        identity = torch.eye(features.shape[-1], dtype=features.dtype, device=features.device)
        return original(self, features @ identity, **kwargs)

    return module.LongformerLMHead, forward


SLOW_GELU_VARIABLE = "LFBENCH_SLOW_GELU_TIMES"
SLOW_GELU_TIMES = 10  # its default


def slow_gelu_times() -> int:
    """How many times `slow-gelu` computes the activation; ValueError naming the variable if bad."""
    value = os.environ.get(SLOW_GELU_VARIABLE, "") or str(SLOW_GELU_TIMES)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{SLOW_GELU_VARIABLE}={value}: expected a positive integer")
    return int(value)


def with_slow_gelu(module) -> tuple[type, Callable]:
    """`slow-gelu`: the class to patch and its new forward (the activation is the config's, gelu)."""
    original, times = module.LongformerIntermediate.forward, slow_gelu_times()

    def forward(self, hidden_states):
        out = original(self, hidden_states)
        with module.torch.no_grad():  # nothing saved, no backward: only more aten::gelu
            for _ in range(times - 1):
                self.intermediate_act_fn(out)  # the same size as the activation's input
        return out

    return module.LongformerIntermediate, forward


INJECTIONS = {
    "saved-activation": with_saved_ones,
    "item": with_item,
    "mlm-matmul": with_identity_matmul,
    "slow-gelu": with_slow_gelu,
}


def requested(value: str) -> list[str]:
    """The injections a value of the variable names; ValueError naming the variable if one is unknown."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in INJECTIONS]
    if unknown:
        raise ValueError(
            f"{VARIABLE}={value}: unknown injection {', '.join(map(repr, unknown))}; "
            f"expected a comma list of {', '.join(INJECTIONS)}"
        )
    if "slow-gelu" in names:
        slow_gelu_times()  # a bad factor stops the interpreter at its start too
    return list(dict.fromkeys(names))


def patch(module, names: list[str]) -> Callable[[], None]:
    """Patch the Longformer `module`'s classes with the injections `names`; returns what restores them."""
    restore = []
    for name in names:
        owner, forward = INJECTIONS[name](module)
        restore.append((owner, owner.__dict__["forward"]))
        setattr(forward, MARK, name)
        owner.forward = forward

    def undo() -> None:
        for owner, original in reversed(restore):
            owner.forward = original

    return undo


@contextlib.contextmanager
def injected(names: list[str]) -> Iterator[None]:
    """The injections `names` in this process while the block runs (tests), then the classes as they were."""
    undo = patch(importlib.import_module(TARGET), requested(",".join(names)))
    try:
        yield
    finally:
        undo()


def active(module) -> list[str]:
    """The injections patched into `module`'s classes now."""
    owners = (module.LongformerIntermediate, module.LongformerLayer, module.LongformerLMHead)
    return [getattr(owner.forward, MARK) for owner in owners if hasattr(owner.forward, MARK)]


class PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds transformers' Longformer module as usual and patches its classes once it has run."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET:
            return None
        sys.meta_path.remove(self)  # once, and so that the real finders find it
        spec = importlib.util.find_spec(fullname)
        if spec is None:
            return None
        run = spec.loader.exec_module

        def exec_module(module) -> None:
            run(module)
            patch(module, self.names)

        spec.loader.exec_module = exec_module
        return spec


def install(value: str) -> None:
    """At interpreter start: the variable's injections patched in on import, or exit 2 if it is bad."""
    try:
        names = requested(value)
    except ValueError as err:
        sys.stderr.write(f"scripts/structural/sitecustomize.py: {err}\n")
        sys.stderr.flush()
        os._exit(2)  # site.py would print a raised error and go on unpatched
    if names:
        sys.meta_path.insert(0, PatchOnImport(names))


if __name__ == "sitecustomize":
    install(os.environ.get(VARIABLE, ""))

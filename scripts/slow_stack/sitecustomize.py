"""A stack-wide slowdown for measuring the verdicts: torch's matrix products made slower.

On PYTHONPATH with LFBENCH_SLOW_MATMUL=F set (a fraction, e.g. 0.3), every matrix product this
interpreter asks torch for through Python (torch.mm, matmul, bmm, addmm, baddbmm, einsum,
nn.functional.linear and the Tensor methods) is computed once more every 1/F calls, so that work
costs about 1 + F times as much. It reaches everything that calls those functions: the benchmarks'
forward passes and the workers' calibration (torch.mm) alike, as a slower BLAS or torch build would;
backward's matmuls (autograd's C++) are untouched. Unset or 0: nothing is changed. Not part of the
suite: `python -m bench ab` and `pytest` runs are pointed at it by the measurements in docs/.
"""

import os

FRACTION = float(os.environ.get("LFBENCH_SLOW_MATMUL") or 0)

if FRACTION > 0:
    import functools

    import torch

    debt = [0.0]

    def slowed(op):
        @functools.wraps(op)
        def run(*args, **kwargs):
            out = op(*args, **kwargs)
            debt[0] += FRACTION
            while debt[0] >= 1.0:
                debt[0] -= 1.0
                op(*args, **kwargs)
            return out

        run.lfbench_slowed = FRACTION
        return run

    for owner, names in (
        (torch, ("mm", "matmul", "bmm", "addmm", "baddbmm", "einsum")),
        (torch.nn.functional, ("linear",)),
        (torch.Tensor, ("mm", "matmul", "bmm", "__matmul__")),
    ):
        for name in names:
            setattr(owner, name, slowed(getattr(owner, name)))

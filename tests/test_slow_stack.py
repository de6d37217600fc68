"""The stack-wide slowdown the verdict measurements inject (scripts/slow_stack/sitecustomize.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SLOW_STACK = Path(__file__).resolve().parents[1] / "scripts" / "slow_stack"
PROBE = """
import json, torch
a = torch.ones(4, 4)
print(json.dumps({
    "slowed": getattr(torch.mm, "lfbench_slowed", None),
    "linear": getattr(torch.nn.functional.linear, "lfbench_slowed", None),
    "same": all(bool((torch.mm(a, a) == 4).all()) for _ in range(10)),
}))
"""


def probe(fraction: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(SLOW_STACK), "LFBENCH_SLOW_MATMUL": fraction}
    run = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_the_slowdown_wraps_torchs_matrix_products_and_keeps_their_results():
    seen = probe("0.3")
    assert seen == {"slowed": 0.3, "linear": 0.3, "same": True}


def test_without_the_variable_nothing_is_changed():
    assert probe("0") == {"slowed": None, "linear": None, "same": True}

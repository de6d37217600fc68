"""longformer-bench: the library under the benchmarks, importable without pytest.

Layers, top to bottom (each may import the ones below it, never one above; `make lint` checks it):

    bench/benchmarks/, bench/cli/   the pytest benchmarks and `python -m bench`'s commands
    bench/power/                    how often the verdicts find a known slowdown
    bench/verdicts/                 what saved values mean (no torch)
    bench/measure/                  how values are obtained: workers, calibration, the A/B pool
    bench/harness/                  what trains Longformer the way FlagPerf does
    bench/base/                     the input error and the results store

The pytest side's fixtures and options live in `fixtures/` and `conftest.py` at the top level.
"""

import os

# Nothing in this suite may reach a model hub at run time: only local directories are loaded.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

"""longformer-bench: the library under the benchmarks, importable without pytest.

Three layers, top to bottom: the commands (`python -m bench`, bench/__main__.py); the verdicts on
saved values (stats, verdict, history, compare, changes, pairs, scores, summary, report: no torch,
checked by `make lint`), and the detection-power tools (power, step_power); the measuring engine
(sampling, worker, workloads, ab, budget, jobs) over the training harness (model, data, masking,
attention, train, runner, spec, device, distributed, metrics, fingerprint, flagperf_data,
prepare). The pytest side lives in `fixtures/` and `bench/benchmarks/`; no library module imports
a benchmark module.
"""

import os

# Nothing in this suite may reach a model hub at run time: only local directories are loaded.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

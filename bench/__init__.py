"""longformer-bench harness: model, data, masking, timing and machine identity.

Importable without pytest; the pytest side lives in `fixtures/` and `bench/benchmarks/`.
"""

import os

# Nothing in this suite may reach a model hub at run time: only local directories are loaded.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

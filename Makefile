# Two entry points on a fresh machine with Python 3.11 and pip:
#   make bench   set up .venv from the lock, run the fast benchmarks, save the run, print the table
#   make test    set up .venv from the lock, run every test that needs no GPU and no real checkpoint
#                (all but the time-to-train benchmark, whose wall-clock budget no shared machine promises)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest

.PHONY: setup bench test test-gpu-stack lint format embedded report compare changes ab clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

bench: $(STAMP)
	$(PYTEST) -m fast --benchmark-autosave

# The time-to-train benchmark (slow and convergence) is left to `pytest -m convergence`: it must
# reach 90% within a wall-clock budget, which a slow or shared machine cannot promise.
test: $(STAMP)
	$(PYTEST) --benchmark-disable -m "not (slow and convergence)"

# The same tests with the lent GPU machine's versions (Python 3.12, torch 2.11, transformers 5.17),
# on this CPU, in a second venv from requirements-gpu-stack.lock. Not in CI: torch 2.11 is PyPI's CUDA
# build, a few GB to download and install. GPU_STACK_PYTHON names another Python 3.12 if needed.
GPU_STACK_PYTHON ?= $(firstword $(wildcard /usr/bin/python3.12 /usr/local/bin/python3.12 \
	$(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3.12)
GPU_STACK := .venv-gpu-stack
GPU_STACK_STAMP := $(GPU_STACK)/.installed

$(GPU_STACK_STAMP): requirements-gpu-stack.lock pyproject.toml
	test -x $(GPU_STACK)/bin/python || $(GPU_STACK_PYTHON) -m venv $(GPU_STACK)
	$(GPU_STACK)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-gpu-stack.lock
	$(GPU_STACK)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(GPU_STACK_STAMP)

test-gpu-stack: $(GPU_STACK_STAMP)
	$(GPU_STACK)/bin/python -c "import sys, torch, transformers; \
		print('python', sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__)"
	$(GPU_STACK)/bin/python -m pytest --benchmark-disable -m "not (slow and convergence)"

# Trend charts per benchmark and one self-contained HTML page over results/.
report: $(STAMP)
	$(BIN)/python -m bench report

# The newest saved run against the one before it (same fingerprint): change, interval, verdict.
compare: $(STAMP)
	$(BIN)/python -m bench compare $(COMPARE_ARGS)

# Where each benchmark's level stepped and stayed over the saved runs, and what changed there.
changes: $(STAMP)
	$(BIN)/python -m bench changes $(CHANGES_ARGS)

# This checkout against a baseline, both sampled in one session (the pull-request check): the fast
# training step and the attention layers that train (-m pr); the whole fast profile, e.g.
#   make ab AB_ARGS="--baseline-ref origin/main -m fast --fail-on-regression"
# Rows still inconclusive after the first look (12 s a row) are sampled again, 2 looks within a
# --budget of 120 s (docs/ab.md, "Sampling until decided"); e.g. --looks 3 --budget 180 for more.
AB_ARGS ?= --baseline-ref origin/main -m pr --fail-on-regression --fail-on-growth
ab: $(STAMP)
	$(BIN)/python -m bench ab $(AB_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Rebuild fixtures/embedded/ (byte-identical with the pinned versions).
embedded: $(STAMP)
	$(BIN)/python -m fixtures.make_embedded

clean:
	rm -rf $(VENV) $(GPU_STACK) .pytest_cache .ruff_cache .import_linter_cache *.egg-info

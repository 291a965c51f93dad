# Two commands: `make bench` (set up, run the benchmark) and `make test` (set up, run the tests).
# Both create .venv on first use. TORCH_SPEC pins the CPU build of torch that lies on this
# project's machines; on a machine with a GPU, set TORCH_SPEC=torch (or a CUDA build) instead.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
BENCH_ARGS ?= --methods all --tasks all --seeds 3 --executor pool --workers 2
SIIT_BENCH_ARGS ?= --methods all --tasks 'siit-*' --seeds 3 --executor pool --workers 2
TEST_ARGS ?=

.PHONY: setup test test-all bench bench-siit siit-models speed lint

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev,ray]"
	touch $@

test: setup
	$(PY) -m pytest -q $(TEST_ARGS)

test-all: setup
	$(PY) -m pytest -q --runslow $(TEST_ARGS)

bench: setup
	$(PY) -m eval.run $(BENCH_ARGS)

bench-siit: setup
	$(PY) -m eval.run $(SIIT_BENCH_ARGS)

siit-models: setup
	$(PY) scripts/train_siit_models.py

speed: setup
	$(PY) -m eval.speed

lint: setup
	$(PY) -m ruff check models patching methods tasks eval tests

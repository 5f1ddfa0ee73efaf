# The two commands that matter: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install run test test-fast test-under-load lint bench

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(INSTALLED)

# Temporal dev server (state in .data/, Web UI on :8233), the worker and the API (:8000).
run: $(INSTALLED)
	$(BIN)/python -m devstack.stack

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

test: lint
	$(BIN)/pytest

# The whole suite three times in a row beside a busy loop on one core: where flakes show.
test-under-load: $(INSTALLED)
	$(BIN)/python -m tests.under_load 3

# The unit tests alone (the domain, the replay guard, the deploy files): seconds, no server.
test-fast: $(INSTALLED)
	$(BIN)/pytest tests/unit -q

# The pipeline against its Temporal and HTTP floors, growth and backlog (~25 min here;
# BENCH_ARGS=--quick ~3 min; BENCH_ARGS=--growth the growth tables). Results go to
# bench/results/; docs/benchmarks.md explains them.
bench: $(INSTALLED)
	$(BIN)/python -m bench $(BENCH_ARGS)

# The two commands that matter: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two installs, each with its stamp: the service alone (`make run`), and the service with the
# test, lint and benchmark tools of the `dev` extra (everything else).
SERVICE_INSTALLED := $(VENV)/.installed-service
INSTALLED := $(VENV)/.installed-dev

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(SERVICE_INSTALLED): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(INSTALLED): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@ $(SERVICE_INSTALLED)

# None of these names a file; `bench` also names a folder, which made `make bench` "up to date".
.PHONY: install run receiver lint test test-under-load test-fast bench

install: $(INSTALLED)

# Temporal dev server (state in .data/, Web UI on :8233), the worker and the API (:8000).
run: $(SERVICE_INSTALLED)
	$(BIN)/python -m devstack.stack

# A webhook receiver on 127.0.0.1:9000 that prints what it gets and checks signatures (README, Quick start).
receiver: $(SERVICE_INSTALLED)
	$(BIN)/python -m tools.receiver $(RECEIVER_ARGS)

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

# The pipeline against its Temporal and HTTP floors, growth and backlog (~14 min here;
# BENCH_ARGS=--quick ~3 min; BENCH_ARGS=--growth the growth tables). Results go to
# bench/results/; docs/benchmarks.md explains them.
bench: $(INSTALLED)
	$(BIN)/python -m bench $(BENCH_ARGS)

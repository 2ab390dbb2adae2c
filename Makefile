# Every target bootstraps .venv from the lock file on a fresh machine (Python ≥ 3.11 and
# network access to PyPI are all it needs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.synced

.PHONY: up test check lint typecheck imports bench clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(BIN)/uv pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --frozen --quiet --python $(BIN)/python
	@touch $(STAMP)

## up: set everything up and run engage (:8400) and analytics (:8401) on SQLite under ./var
up: $(STAMP)
	$(BIN)/cohortbridge up

## test: run the test suite on SQLite and PostgreSQL (PostgreSQL skipped, visibly, if absent)
test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

## check: exactly what CI runs (static checks, then the README's test command)
check:
	bash .ci/run

## bench: run the benchmarks in bench/ (each prints JSON; see docs/benchmarks.md)
bench: $(STAMP)
	$(BIN)/python -m bench.users_track
	$(BIN)/python -m bench.cohort_import
	$(BIN)/python -m bench.segments
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.cohorts
	$(BIN)/python -m bench.cohort_sync
	$(BIN)/python -m bench.streaming

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache

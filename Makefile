# `make demo` and `make test` each create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: demo test lint typecheck bench clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: $(BIN)/python requirements.lock pyproject.toml
	$(PIP) -r requirements.lock
	$(PIP) --no-deps --no-build-isolation -e . || $(PIP) --no-deps -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.lock
	$(PIP) -r requirements-dev.lock
	touch $@

demo: $(VENV)/.runtime
	$(BIN)/daglake validate examples/products
	$(BIN)/daglake run examples/products --full-refresh
	$(BIN)/daglake show final.products examples/products --limit 5

system-deps:
	bash scripts/system-deps.sh

test: $(VENV)/.dev system-deps
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(VENV)/.dev
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .venv-airflow .venv-bqemu examples/*/.daglake examples/*/lake

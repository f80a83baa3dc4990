# epochline — `make help` lists the targets.
# What makes .venv: the first of these that is Python 3.11 or newer (Debian 13 and Ubuntu
# 24.04 ship 3.13 and 3.12 only). `make setup PYTHON=/path/to/python3.12` picks one.
PYTHON ?= python3.11 python3.12 python3.13 python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Stage commands in dvc.yaml call `python`: it must be the venv's.
export PATH := $(abspath $(BIN)):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help setup pipeline test test-fast test-random bench screenshots lint ui team-up team-down lock clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.lock pyproject.toml
	@test -x $(BIN)/python || { python=$$($(SHELL) scripts/find-python.sh $(PYTHON)) \
	  && echo "$$python -m venv $(VENV)" && $$python -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

setup: $(BIN)/.installed ## Create .venv and install the pinned dependencies

pipeline: setup ## Set up, then run the whole pipeline (dvc repro) and summarise it
	$(BIN)/epochline repro

# Test files run TEST_WORKERS at a time (pytest-xdist), each file whole in one worker, so
# that a module's shared project or server stack is made once.
TEST_WORKERS ?= 2

test: setup ## Run every test tier, slow end-to-end tests included
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

test-fast: setup ## Run the tests not marked slow
	$(BIN)/python -m pytest -m "not slow"

# pytest-randomly shuffles the files and the tests in each; the seed it prints replays an
# order: make test-random SEED=1234. TEST_ARGS narrows it (TEST_ARGS='-m "not slow"').
SEED ?=
test-random: setup ## Run the tests in a random order (SEED=n replays one), as `test` does
	$(BIN)/python -m pytest -p randomly $(if $(SEED),--randomly-seed=$(SEED)) \
	  -n $(TEST_WORKERS) --dist loadfile $(TEST_ARGS)

# Not part of `test`: minutes of CPU at 10 M rows. BENCH_ARGS='--rows 1000,1000000' etc.
bench: setup ## Benchmark the stages against their floors at 1 K, 1 M, 10 M rows (bench/)
	$(BIN)/python -m bench $(BENCH_ARGS)

screenshots: setup ## Re-take the README's MLflow UI and plots screenshots into reports/ui/
	EPOCHLINE_SCREENSHOTS=$(CURDIR)/reports/ui $(BIN)/python -m pytest tests/e2e/test_ui.py

lint: setup ## ruff (lint and format check) and mypy
	$(BIN)/ruff check src tests bench devtools
	$(BIN)/ruff format --check src tests bench devtools
	$(BIN)/mypy
	$(BIN)/mypy bench devtools

ui: setup ## Open the MLflow UI on the local store (http://127.0.0.1:5000)
	@echo "In the UI pick *Model training* (top left; it is remembered), then the experiment."
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

team-up: setup ## Start a local team stack (PostgreSQL, S3, MLflow with auth); prints the env
	$(BIN)/python -m devtools.teamstack up --dir .team

team-down: setup ## Stop the local team stack and delete its state (.team/)
	$(BIN)/python -m devtools.teamstack down --dir .team

lock: setup ## Re-pin requirements.lock from the venv
	{ head -2 requirements.lock; $(BIN)/pip freeze --exclude-editable | grep -v '^epochline' \
	  | sed 's/^torch==\(.*\)+cpu$$/torch==\1/'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean: ## Remove the venv, DVC outputs, the local MLflow store and generated files
	rm -rf $(VENV) mlflow.db .mlflow.db.lock mlartifacts data/raw.parquet data/raw_manifest.json \
	  data/normalized.parquet data/schema.json data/preprocessor.json data/split models/model.pt models/model.json \
	  reports/test_predictions.parquet reports/retrain dvc_plots predictions bench/results .epochline-retrain.lock* \
	  .pytest_cache .ruff_cache .mypy_cache src/epochline.egg-info
	@test ! -d .team || echo "note: a team stack may still run from .team/: make team-down"

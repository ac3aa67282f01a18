# Two commands set everything up: `make run` and `make test` (each creates or reuses .venv).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.greenpipe-installed
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DVC_NO_ANALYTICS ?= 1
export MLFLOW_DISABLE_TELEMETRY ?= true
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install run test browser compare lint format bench bench-sweep mlflow-ui prefect-ui clean-outputs

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# pip's "Location ... is ignored" notes about extra local indexes are noise: filter them
	set -o pipefail; $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 \
		| { grep -v "^WARNING: Location .* is ignored" || true; }
	@touch $(STAMP)

install: $(STAMP)

## run: the default experiment (Prefect flow -> DVC stages), then push data to the DVC remote
run: install
	@test -d .git || (git init -q && git add -A && git -c user.email=greenpipe@localhost -c user.name=greenpipe commit -qm "initial commit")
	$(BIN)/greenpipe run
	$(BIN)/dvc push --quiet
	@echo "report: reports/report.html | MLflow UI: make mlflow-ui, then the link above"

## test: unit, contract and end-to-end tests
test: install browser
	$(BIN)/pytest -q -n auto --dist loadgroup

## browser: Debian's chromium + chromium-driver for the report's browser test (root only;
## elsewhere the test is skipped and says why)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "note: chromium and chromium-driver are missing (apt-get install chromium chromium-driver): the browser test is skipped"; fi

## compare: the DVC experiments side by side: the params and headline metrics that differ
## (the hash columns of changed model files and stage records dropped)
compare: install
	$(BIN)/dvc exp show --only-changed --drop 'models/|metrics/'

## bench: benchmarks that measure ratios side by side, one summary table (see benchmarks/)
bench: install
	$(BIN)/python benchmarks/run_all.py

## bench-sweep: the same, plus the sweep speed-up (1 against 2 Dask workers)
bench-sweep: install
	$(BIN)/python benchmarks/run_all.py --sweep

lint: install
	$(BIN)/ruff check src pipelines flows tests
	$(BIN)/ruff format --check src pipelines flows tests

format: install
	$(BIN)/ruff format src pipelines flows tests
	$(BIN)/ruff check --fix src pipelines flows tests

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

prefect-ui: install
	$(BIN)/prefect server start --host 127.0.0.1 --port 4200

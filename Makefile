# Two commands set everything up: `make run` and `make test` (each creates or reuses .venv).
# GPU=1 (e.g. `make run GPU=1`) installs TensorFlow's CUDA build instead of tensorflow-cpu.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TF_BUILD := $(if $(GPU),gpu,cpu)
STAMP := $(VENV)/.greenpipe-installed$(if $(GPU),-gpu,)
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DVC_NO_ANALYTICS ?= 1
export MLFLOW_DISABLE_TELEMETRY ?= true
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install run test browser compare lint format bench bench-sweep mlflow-ui prefect-ui clean-outputs gpu-wheels gpu-check

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# the other TensorFlow build would overwrite (or be overwritten by) this one's files
	@$(BIN)/python -m pip uninstall --quiet --yes $(if $(GPU),tensorflow-cpu,tensorflow) 2>/dev/null || true
	@# pip's "Location ... is ignored" notes about extra local indexes are noise: filter them
	set -o pipefail; $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,$(TF_BUILD)]' 2>&1 \
		| { grep -v "^WARNING: Location .* is ignored" || true; }
	@rm -f $(VENV)/.greenpipe-installed*
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

## gpu-wheels: what `make gpu-check` needs beside a bare CUDA machine's Python and torch, as
## wheels of the versions installed here, for Python $(GPU_PY) on x86-64 Linux, into $(WHEELS)/
## (ignored; about 14 MiB). Run where pip reaches PyPI, after `make install`.
GPU_PY ?= 3.12
WHEELS ?= .whl
GPU_WHEELS := codecarbon pycountry rapidfuzz pydantic pydantic-core annotated-types typing-inspection typing-extensions
MANYLINUX := $(foreach n,17 24 27 28 31 34,--platform manylinux_2_$(n)_x86_64) --platform manylinux2014_x86_64
gpu-wheels:
	@test -x $(BIN)/python || { echo "run make install first: the wheels are the versions it installed"; exit 2; }
	rm -rf $(WHEELS) && mkdir -p $(WHEELS)
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: --python-version $(GPU_PY) \
		--implementation cp $(MANYLINUX) -d $(WHEELS) $$($(BIN)/python -c \
		"import importlib.metadata as m; print(*(f'{n}=={m.version(n)}' for n in '$(GPU_WHEELS)'.split()))")
	@du -sh $(WHEELS)

## gpu-check: the GPU tests and a short torch-only pipeline (tests/gpu) on a bare CUDA machine:
## its Python with torch (GPU_PYTHON), plus $(WHEELS)/ from `make gpu-wheels` installed into
## GPU_SITE; no network, no .venv. Without CUDA the gpu tests skip and the pipeline runs on CPU.
GPU_PYTHON ?= python3
GPU_SITE ?= /tmp/greenpipe-gpu-site
gpu-check:
	@test -n "$$(ls $(WHEELS)/*.whl 2>/dev/null)" || { echo "no wheels in $(WHEELS)/: run make gpu-wheels where pip reaches PyPI"; exit 2; }
	$(GPU_PYTHON) -m pip install --quiet --no-index --no-deps --no-compile --upgrade --target $(GPU_SITE) $(WHEELS)/*.whl
	PYTHONPATH=$(abspath $(GPU_SITE)):$(abspath src) $(GPU_PYTHON) -m pytest -q -p no:cacheprovider tests/gpu

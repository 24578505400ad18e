# The front door. `make run` and `make test` bootstrap what they need by themselves.
SHELL := /bin/bash
PY := .venv/bin/python
# Where the Kaggle files are; empty means "download them" (data/download.py, pinned sha256).
DATA_DIR ?=
MLFLOW_PORT ?= 5000
S3_PORT ?= 9000
export DATA_DIR MLFLOW_PORT S3_PORT

.PHONY: help venv lock run serve test bench lint format compile clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

venv: ## create .venv from requirements.lock (once)
	@bash scripts/bootstrap.sh

lock: ## re-resolve requirements.lock (dev) and requirements-runtime.lock (images) together
	uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock
	uv pip compile pyproject.toml --python-version 3.11 -c requirements.lock -o requirements-runtime.lock

run: venv ## train, register and serve on the embedded default (local KFP, MLflow, S3, KServe, UI)
	@$(PY) -m pipelines.run_local run

serve: venv ## serve a model: make serve MODEL_URI=<folder | s3://bucket/prefix (with AWS_* set)>
	@test -n "$(MODEL_URI)" || { echo "usage: make serve MODEL_URI=<model folder or s3://bucket/prefix>" >&2; exit 2; }
	@$(PY) -m serving --model_dir "$(MODEL_URI)"

compile: venv ## compile the pipeline to its IR YAML (pipelines/disease_training_pipeline.yaml)
	@$(PY) pipelines/compile.py

test: venv ## unit, data, integration, browser and infrastructure tests
	@bash scripts/apt-deps.sh chromium fonts-nanum prometheus
	@$(PY) -m pytest --ignore=tests/infra
	@bash scripts/test-infra.sh  # terraform fmt, checkov, tests/infra

bench: venv ## serving benchmark: ours vs stock-style KServe vs bare HTTP floor
	@bash scripts/apt-deps.sh wrk
	@$(PY) bench/serving_bench.py

lint: venv ## ruff lint and format check
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .

format: venv ## apply ruff formatting and safe fixes
	@$(PY) -m ruff check --fix .
	@$(PY) -m ruff format .

clean: ## remove local state (MLflow db, S3 data, runs); keeps .venv
	rm -rf .state

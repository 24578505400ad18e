# The front door. `make run` and `make test` bootstrap what they need by themselves.
SHELL := /bin/bash
PY := .venv/bin/python
# Where the Kaggle files are; empty means "download them" (data/download.py, pinned sha256).
DATA_DIR ?=
MLFLOW_PORT ?= 5000
S3_PORT ?= 9000
# Where `make images` tags (and with PUSH=1 pushes) the images; the defaults are the
# references manifests/base/kustomization.yaml and the committed pipeline name.
REGISTRY ?= ghcr.io/symptom-dx
TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
PUSH ?= 0
# pytest-xdist workers of make test: each file on one worker, the longest first; one more
# than the 2 cores of CI, as the workers spend a third of their time waiting on servers
TEST_WORKERS ?= 3
# make test-fast: the in-process tier, CPU-bound (one worker a core): by marker, no server or
# container (integration), no browser, no program make test installs outside the venv (tools),
# and not the fuzzing (hypothesis's own marker), a search with a budget of about a minute
FAST_WORKERS ?= 2
FAST_TIER := not integration and not browser and not tools and not hypothesis
export DATA_DIR MLFLOW_PORT S3_PORT REGISTRY TAG PUSH

.PHONY: help venv lock run serve test test-fast test-images test-cluster test-cluster-app cluster-up cluster-down bench lint format compile images clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

venv: ## create .venv from requirements.lock (once)
	@bash scripts/bootstrap.sh

lock: ## re-resolve requirements.lock, the one source of pins (venv and every image)
	uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

run: venv ## train, register and serve on the embedded default (local KFP, MLflow, S3, KServe, UI, Prometheus); PARAMS="NAME=VALUE ..." sets pipeline parameters
	@bash scripts/apt-deps.sh prometheus prometheus-alertmanager
	@$(PY) -m pipelines.run_local run $(PARAMS)

serve: venv ## serve a model: make serve MODEL_URI=<folder | s3://bucket/prefix (with AWS_* set)>
	@test -n "$(MODEL_URI)" || { echo "usage: make serve MODEL_URI=<model folder or s3://bucket/prefix>" >&2; exit 2; }
	@$(PY) -m serving --model_dir "$(MODEL_URI)"

compile: venv ## compile the pipeline to its IR YAML (pipelines/disease_training_pipeline.yaml)
	@$(PY) -m pipelines.compile

images: venv ## build the images as REGISTRY/<name>:TAG for IMAGE_PLATFORM (linux/amd64), PUSH=1 pushes (ECR: logs in), point manifests/ and the IR at them
	@bash scripts/images.sh

test: venv ## unit, data, integration, browser, container and infrastructure tests
	@bash scripts/apt-deps.sh chromium fonts-nanum prometheus prometheus-alertmanager docker.io debootstrap
	@REGISTRY= TAG= bash scripts/images.sh  # the images manifests/ names, which the tests run
	@bash scripts/k8s-tools.sh >/dev/null && bash scripts/go-tools.sh >/dev/null  # kubectl, helm, actionlint
	@$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15 --ignore=tests/infra --ignore=tests/cluster
	@bash scripts/test-infra.sh  # terraform fmt, checkov, tests/infra

test-fast: venv ## the in-process tests alone (under a minute): no server, container, browser, images or apt
	@$(PY) -m pytest -n $(FAST_WORKERS) --dist loadfile -m "$(FAST_TIER)" --ignore=tests/infra --ignore=tests/cluster

test-images: venv ## build the images and run only the container tests
	@REGISTRY= TAG= bash scripts/images.sh
	@$(PY) -m pytest tests/images

cluster-up: venv ## a local single-node Kubernetes built from upstream modules, with KServe and MinIO (scripts/cluster/)
	@bash scripts/cluster/build.sh --with-kserve
	@bash scripts/cluster/up.sh
	@bash scripts/cluster/kserve.sh install

cluster-down: ## stop the local cluster: no process, mount or network namespace left
	@bash scripts/cluster/down.sh

# The local cluster, whatever KUBECONFIG the shell exports: this target starts and stops it.
test-cluster: venv ## Kubeflow Pipelines, kube-prometheus-stack and the application on the local cluster: trained by a KFP run, served, monitored, operated (then stopped; KEEP_CLUSTER=1 keeps it)
	@if [ "$(origin KUBECONFIG)" = "command line" ]; then echo "make test-cluster starts and checks the local cluster; for the one KUBECONFIG names: make test-cluster-app KUBECONFIG=$(KUBECONFIG)" >&2; exit 2; fi
	@bash scripts/apt-deps.sh docker.io debootstrap chromium  # chromium: the KFP dashboard test
	@REGISTRY= TAG= bash scripts/images.sh
	@# every binary and image the suite's cluster runs, built before the tests' time limits start (cold: most of an hour)
	@bash scripts/cluster/build.sh --with-kserve --with-kfp --with-monitoring --with-netpol
	@bash scripts/cluster/kfp/frontend/build.sh
	@status=0; KUBECONFIG= KUBE_CONTEXT= $(PY) -m pytest tests/cluster || status=$$?; \
	  if [ "$${KEEP_CLUSTER:-0}" != 1 ]; then bash scripts/cluster/down.sh || status=1; fi; exit $$status

test-cluster-app: venv ## the application suite on the cluster KUBECONFIG names (KUBE_CONTEXT: one of its contexts), e.g. EKS; builds, starts and stops nothing, skips what only the local cluster has (README)
	@test -n "$$KUBECONFIG" || { echo "usage: make test-cluster-app KUBECONFIG=<kubeconfig file> [KUBE_CONTEXT=<context>]; the local cluster: make test-cluster" >&2; exit 2; }
	@$(PY) -m pytest tests/cluster

bench: venv ## serving benchmark (ours vs stock-style KServe vs bare HTTP floor), free-text parsing (F1, speed) and make run's memory
	@bash scripts/apt-deps.sh wrk nghttp2-client prometheus prometheus-alertmanager
	@$(PY) bench/serving_bench.py
	@$(PY) bench/serving_ceiling.py
	@$(PY) bench/free_text_bench.py
	@$(PY) bench/stack_memory.py

lint: venv ## ruff lint and format check
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .

format: venv ## apply ruff formatting and safe fixes
	@$(PY) -m ruff check --fix .
	@$(PY) -m ruff format .

clean: ## remove local state (MLflow db, S3 data, runs, the local cluster); keeps .venv and .tools
	@if [ -d .state/cluster ]; then bash scripts/cluster/down.sh; fi  # never rm through live mounts
	rm -rf .state

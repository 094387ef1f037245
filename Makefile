# The project's commands. `make demo` runs the pipeline end to end on the embedded default;
# `make test` runs the whole test suite. Both set everything up on a fresh machine first.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
UV_VERSION := 0.13.9
DAY ?= 2013-06-30
PORT ?= 8080

# The virtualenv's tools first, and the project importable; the rest of the embedded default
# (everything inside the project's ignored .local/ folder) is devtools.environment's, run with $(EMBEDDED).
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)
export PATH := $(BIN):$(PATH)
EMBEDDED := python -m devtools.environment

.PHONY: help demo test test-fast browser horovod test-horovod lint bench backfill-preview manifests lock check-prereqs clean

help:
	@echo "make demo   - set up, then run the retraining DAG once for DAY=$(DAY) and print its report"
	@echo "make test   - set up, then run the whole test suite (end-to-end runs included)"
	@echo "make airflow - start a local Airflow (api-server, scheduler, dag-processor, triggerer, on PostgreSQL) on http://127.0.0.1:$(PORT); Ctrl-C stops it all"
	@echo "make controlplane - build the test Kubernetes control plane from the Go module proxy (7-25 min once, then cached)"
	@echo "make horovod - build Horovod (torch trainer's second backend) into $(VENV); ~4 min once, needs cmake and g++"
	@echo "make test-horovod - make horovod, then the Horovod backend's tests (left out of make test)"
	@echo "make lint   - ruff on the code, hadolint on Dockerfile and Dockerfile.spark"
	@echo "make backfill-preview FROM=YYYY-MM-DD TO=YYYY-MM-DD [CONF=json] - what a backfill would run and rewrite (dry run)"
	@echo "make manifests DATE=YYYY-MM-DD - write the SparkApplications of that day's run to build/manifests/"
	@echo "make bench  - benchmarks: parse time, demo per task vs a plain script, peak memory, waiting, validation engines, feature job and trainers, a 30-day backfill; ~35 min"
	@echo "make lock   - re-resolve requirements.txt and requirements-dev.txt from the .in files"
	@echo "make clean  - remove .local/ (data, MLflow store, Airflow home) and build/"

check-prereqs:
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found. Install Python 3.11 (or run make PYTHON=/path/to/python3.11)." >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "error: $(PYTHON) is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'); this project needs 3.11 (Airflow 3.3 and the pinned wheels). Run make PYTHON=/path/to/python3.11." >&2; exit 1; }
	@command -v java >/dev/null || { echo "error: java not found. Spark needs Java 17: install it (Debian: apt-get install openjdk-17-jre-headless) or put its bin/ folder on PATH." >&2; exit 1; }
	@java -version 2>&1 | grep -Eq 'version "(17|21)' || { echo "error: Spark 4 needs Java 17 or 21; found: $$(java -version 2>&1 | head -1)." >&2; exit 1; }

# The virtualenv is rebuilt when a lock file changes. uv installs the exact lock; pyspark-client
# is excluded because it overwrites pyspark's files (see README, "Dependencies").
$(VENV)/.installed: requirements.txt requirements-dev.txt excludes.txt | check-prereqs
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION) \
	  || { echo "error: could not install uv from PyPI; check the network or a pip index setting." >&2; exit 1; }
	@$(BIN)/uv pip install --quiet --python $(BIN)/python --excludes excludes.txt \
	  -r requirements.txt -r requirements-dev.txt \
	  || { echo "error: installing the pinned requirements failed (see above). Fix the cause, then run make again." >&2; exit 1; }
	@touch $@

# PyTorch, only for what needs it (the torch trainer and its tests, Horovod, the training benchmark):
# PyPI's CUDA build with its nvidia-* packages, several GB, which uv caches outside the checkout
# (~/.cache/uv), so a second install takes seconds. It runs on CPU. `make demo` never installs it.
$(VENV)/.torch-installed: requirements-torch-pypi.txt $(VENV)/.installed
	@echo "Installing PyTorch (requirements-torch-pypi.txt; the first time downloads several GB) ..."
	@$(BIN)/uv pip install --quiet --python $(BIN)/python --excludes excludes.txt -r requirements-torch-pypi.txt \
	  || { echo "error: installing PyTorch (requirements-torch-pypi.txt) failed (see above)." >&2; exit 1; }
	@touch $@

.local/airflow/airflow.db: $(VENV)/.installed
	@mkdir -p .local/airflow
	$(EMBEDDED) airflow db migrate >/dev/null

demo: $(VENV)/.installed .local/airflow/airflow.db
	$(EMBEDDED) python -m devtools.demo --day $(DAY)

# The UI test drives Debian's chromium through its chromedriver; installed with apt when missing.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then apt=(apt-get); elif sudo -n true 2>/dev/null; then apt=(sudo apt-get); \
	else echo "error: the UI test needs Chromium: apt-get install chromium chromium-driver (as root)." >&2; exit 1; fi; \
	echo "Installing chromium and chromium-driver with apt ..."; \
	export DEBIAN_FRONTEND=noninteractive; \
	"$${apt[@]}" install -y -q chromium chromium-driver >/dev/null \
	  || { "$${apt[@]}" update -q >/dev/null && "$${apt[@]}" install -y -q chromium chromium-driver >/dev/null; } \
	  || { echo "error: apt could not install chromium chromium-driver (see above)." >&2; exit 1; }

# `make airflow` and the real-Airflow tests keep Airflow's metadata in PostgreSQL (devtools/postgres.py):
# Debian's server, installed with apt when missing (the launcher starts its own, under AIRFLOW_HOME).
.PHONY: postgres
postgres:
	@if [ -n "$${POSTGRES_BIN_DIR:-}" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then apt=(apt-get); elif sudo -n true 2>/dev/null; then apt=(sudo apt-get); \
	else echo "error: make airflow needs PostgreSQL's server: apt-get install postgresql (as root)." >&2; exit 1; fi; \
	echo "Installing postgresql with apt ..."; \
	export DEBIAN_FRONTEND=noninteractive; \
	"$${apt[@]}" install -y -q postgresql >/dev/null \
	  || { "$${apt[@]}" update -q >/dev/null && "$${apt[@]}" install -y -q postgresql >/dev/null; } \
	  || { echo "error: apt could not install postgresql (see above)." >&2; exit 1; }

# Two pytest-xdist workers, one per core: the control-plane and end-to-end folders each run whole on
# one worker, first, while the other works through the remaining modules (tests/conftest.py).
test: $(VENV)/.torch-installed browser postgres controlplane
	python -m pytest -n 2

test-fast: $(VENV)/.torch-installed
	python -m pytest -m "not e2e and not controlplane"

# The test control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, the Spark
# Operator, KWOK), built from the Go module proxy at the versions testing/controlplane/*/go.sum pins,
# into ~/.cache/flight-delays/controlplane: 7 to 25 minutes once per machine on 2 cores, then seconds.
.PHONY: controlplane
controlplane:
	@command -v go >/dev/null || test -x /usr/local/go/bin/go \
	  || { echo "error: go not found. The control-plane tests build Kubernetes with Go 1.26 or newer: install it or put its bin/ folder on PATH." >&2; exit 1; }
	bash testing/controlplane/build.sh >/dev/null

# Horovod, the torch trainer's optional second backend, built from its sdist with C++17 (docs/HOROVOD.md).
horovod: $(VENV)/.torch-installed
	@python -c 'import horovod.torch' 2>/dev/null && echo "Horovod is installed in $(VENV)" \
	  || scripts/build_horovod.sh $(VENV) build/horovod

test-horovod: horovod
	python -m pytest -m horovod tests/spark_jobs/test_horovod.py

# ruff on the code; hadolint on both images (any finding, info included, fails).
lint: $(VENV)/.installed
	ruff check .
	hadolint Dockerfile Dockerfile.spark

backfill-preview: $(VENV)/.installed
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make backfill-preview FROM=YYYY-MM-DD TO=YYYY-MM-DD [CONF='{...}']" >&2; exit 2; }
	@$(EMBEDDED) python -m devtools.backfill_preview --from $(FROM) --to $(TO) $(if $(CONF),--conf '$(CONF)') 2>/dev/null

manifests: $(VENV)/.installed
	@test -n "$(DATE)" || { echo "usage: make manifests DATE=YYYY-MM-DD" >&2; exit 2; }
	$(EMBEDDED) python -m devtools.manifests --date $(DATE) $(if $(CONF),--conf '$(CONF)') $(if $(BACKFILL),--backfill)

bench: $(VENV)/.torch-installed
	python bench/run_benchmarks.py
	python bench/bench_waiting.py
	python bench/bench_validation.py
	python bench/bench_training.py
	python bench/bench_backfill.py

lock: $(VENV)/.installed
	uv pip compile requirements.in --python-version 3.11 --excludes excludes.txt -o requirements.txt
	uv pip compile requirements-dev.in --python-version 3.11 -o requirements-dev.txt
	uv pip compile requirements-torch-pypi.in --python-version 3.11 --excludes excludes.txt -o requirements-torch-pypi.txt
	uv pip compile requirements-spark.in --python-version 3.11 --excludes excludes.txt -o requirements-spark.txt
	uv pip compile requirements-spark-gpu.in --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	  --excludes excludes.txt -o requirements-spark-gpu.txt

clean:
	rm -rf .local build

# A real local Airflow on the embedded default, in the foreground; Ctrl-C stops every process it started.
.PHONY: airflow
airflow: $(VENV)/.installed postgres
	$(EMBEDDED) python -m devtools.local_airflow --port $(PORT)

# One environment's namespace-scoped objects as `kubectl apply -k deploy/overlays/ENV` would apply
# them, rendered by the venv's kubectl (built-in kustomize), for review or a GitOps repository.
.PHONY: deploy-render
DEPLOY_ENVS := dev test prod
deploy-render: $(VENV)/.installed
	@case " $(DEPLOY_ENVS) " in *" $(ENV) "*) ;; *) echo "usage: make deploy-render ENV=dev|test|prod (got '$(ENV)')" >&2; exit 2;; esac
	@mkdir -p build/deploy
	kubectl kustomize deploy/overlays/$(ENV) > build/deploy/$(ENV).yaml.tmp
	@mv build/deploy/$(ENV).yaml.tmp build/deploy/$(ENV).yaml && echo "wrote build/deploy/$(ENV).yaml"

# docstream: `make run` (the whole pipeline with the sample corpus) and `make test`.
# Everything installs itself: a venv in .venv (packages cached by uv outside the
# checkout), Kafka and Neo4j jars from Maven Central (cached in ~/.m2).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
PYTEST_ARGS ?=
# promtool, for the alert-rule unit tests of `make validate-deploy`. No Python
# package ships it; it comes from Debian's `prometheus` package, of which only
# the binary is unpacked (tools/validate_deploy/install_promtool.sh says why):
# a 19 MB download and seconds, where building the compose file's Prometheus
# (2.55.1) from the Go module proxy fetched 1.3 GB of modules and took 9.4
# CPU-minutes and 1.8 GB of memory on a 2-core machine (docs/DEPLOYMENT.md,
# promtool). The rule tests pass with both versions.
PROMTOOL_VERSION := 2.42.0
PROMTOOL := $(BIN)/promtool

# Chromium for the browser tests (tests/integration/test_browser.py): Debian's
# package, driven by Playwright through its executable path (no browser
# download by Playwright). Installing it needs root on a fresh machine.
CHROMIUM := /usr/bin/chromium

.PHONY: help venv promtool browser run run-cluster test test-unit test-integration test-faults bench lint validate-deploy services-up services-down services-status clean

help:
	@echo "make run                 stack + worker + API + sample corpus (Ctrl-C stops it)"
	@echo "make run-cluster         the same on 3 Kafka brokers, 3 Qdrant nodes, 2 workers, 2 APIs"
	@echo "make test                lint, unit and integration tests on real Kafka, Neo4j, Qdrant (tests/services)"
	@echo "make test-unit           unit tests only (no services)"
	@echo "make test-faults         the fault-injection suite on the real services (docs/RELIABILITY.md)"
	@echo "make bench               the benchmarks that fit this machine (docs/PERFORMANCE.md)"
	@echo "make lint                ruff + mypy"
	@echo "make validate-deploy     check Dockerfile, compose, k8s, Prometheus, Grafana (offline)"
	@echo "make promtool            install promtool in the venv (as root on a fresh machine: apt-get update)"
	@echo "make browser             install Debian's chromium for the browser tests (as root)"
	@echo "make services-up|down|status   the local Kafka + Neo4j stack"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	VIRTUAL_ENV=$(VENV) $(BIN)/uv pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

# Installed once: the binary is the stamp. Editing the script reinstalls it.
$(PROMTOOL): tools/validate_deploy/install_promtool.sh | $(STAMP)
	PROMTOOL_VERSION=$(PROMTOOL_VERSION) tools/validate_deploy/install_promtool.sh $@

promtool: $(PROMTOOL)

browser:
	test -x $(CHROMIUM) || { apt-get update && apt-get install -y chromium chromium-driver; }

run: venv
	$(BIN)/python -m tools.run

# The production topology on one machine: 3 Kafka brokers, 3 Qdrant nodes (QDRANT_BIN), Neo4j, 2 workers, 2 APIs.
run-cluster: venv
	$(BIN)/python -m tools.run --cluster

test: venv lint validate-deploy browser
	mkdir -p reports
	$(BIN)/pytest tests/unit tests/integration -ra --junitxml=reports/junit.xml $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/pytest tests/unit -ra $(PYTEST_ARGS)

test-integration: venv browser
	$(BIN)/pytest tests/integration -ra $(PYTEST_ARGS)

# Faults injected into the real services (the local stack, or containers); verdicts in reports/faults.json.
test-faults: venv
	mkdir -p reports
	$(BIN)/pytest tests/faults -ra --junitxml=reports/faults.xml $(PYTEST_ARGS)

# Figures next to their baselines; JSON records in bench/results/.
bench: venv
	$(BIN)/python -m bench.all $(BENCH_ARGS)

lint: venv
	$(BIN)/docstream schemas check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Offline checks of the deployment assets (docs/DEPLOYMENT.md says which).
# VALIDATE_DEPLOY_STRICT=1 (.ci/run sets it) turns a skipped check into a failure.
validate-deploy: venv $(PROMTOOL)
	PROMTOOL=$(abspath $(PROMTOOL)) $(BIN)/python -m tools.validate_deploy

services-up: venv
	$(BIN)/python -m tools.stack up

services-down: venv
	$(BIN)/python -m tools.stack down

services-status: venv
	$(BIN)/python -m tools.stack status

clean:
	rm -rf reports .pytest_cache .mypy_cache .ruff_cache

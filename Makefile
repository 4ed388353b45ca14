# Two commands matter: `make test` (everything, from a fresh machine) and `make demo`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck layering unit controlplane cluster-up cluster-down demo bench clean

$(STAMP): requirements-dev.txt packages/floating-ip/reconcile/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(STAMP)

# The deployer doctl's serverless plugin is forked from: builds the function's zip in tests.
DEPLOYER := tests/deployable/node_modules/.package-lock.json
$(DEPLOYER): tests/deployable/package-lock.json
	npm ci --prefix tests/deployable --no-audit --no-fund --loglevel=error
	touch $@

# Builds kube-apiserver and etcd from their Go modules once per machine (cached by version).
controlplane:
	@tests/controlplane/build.sh >/dev/null

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy lib event-forwarder annotator tests bench demo

layering: $(STAMP)
	PYTHONPATH=lib $(VENV)/bin/lint-imports

test: lint typecheck layering controlplane $(DEPLOYER)
	$(PY) -m pytest

cluster-up: $(STAMP) controlplane
	@$(PY) -m tests.bed.cluster up

# The whole system on this machine, narrated; stops everything by itself.
demo: $(STAMP) controlplane
	$(PY) -m demo

cluster-down: $(STAMP)
	@$(PY) -m tests.bed.cluster down

# Benchmarks of the parts and the whole; results in bench/results/ (not committed). Ends by itself.
bench: $(STAMP) controlplane $(DEPLOYER)
	PYTHONPATH=lib:event-forwarder:annotator $(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# Two commands matter: `make test` (everything, from a fresh machine) and `make demo`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The one declaration of where the Python packages live: the function's (lib), the in-cluster
# parts' (in-cluster), and the bed, tests, demo, benchmarks and tools (.). The venv gets them
# as a .pth file, so every Python run in it (pytest, lint-imports, demo, bench) sees the same
# layout; mypy reads them as MYPYPATH.
SOURCE_ROOTS := lib in-cluster .
SOURCE_PTH := $(VENV)/lib/python3.11/site-packages/doks-floating-ip.pth
empty :=
export MYPYPATH := $(subst $(empty) $(empty),:,$(SOURCE_ROOTS))

.PHONY: helm images docs dataplane host-tools test soak lint typecheck layering unit controlplane cluster-up cluster-down demo bench bench-publish clean openapi-subset openapi-subset-check mutation

$(STAMP): requirements-dev.txt packages/floating-ip/reconcile/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(SOURCE_PTH): $(STAMP) Makefile
	printf '%s\n' $(abspath $(SOURCE_ROOTS)) > $@

venv: $(STAMP) $(SOURCE_PTH)

# The deployer doctl's serverless plugin is forked from: builds the function's zip in tests.
DEPLOYER := testbed/deployable/node_modules/.package-lock.json
$(DEPLOYER): testbed/deployable/package-lock.json
	npm ci --prefix testbed/deployable --no-audit --no-fund --loglevel=error
	touch $@

# Builds kube-apiserver and etcd from their Go modules once per machine (cached by version).
controlplane:
	@testbed/controlplane/build.sh >/dev/null

# kube-proxy from its Go module, cached like the control plane (a key of its own), and the
# tools the data-path tests drive (nft, iptables, conntrack, ip; apt where root).
dataplane: host-tools
	@testbed/dataplane/build.sh >/dev/null

host-tools:
	@testbed/dataplane/host_tools.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy lib in-cluster testbed tests bench demo tools

layering: venv
	$(VENV)/bin/lint-imports

# Builds helm from its Go module once per machine (cached), for the chart's tests.
helm:
	@testbed/helm/build.sh >/dev/null

# The documentation site (mkdocs, Material theme) into site/; --strict: a broken link, anchor
# or generated table fails the build.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

test: lint typecheck layering docs controlplane dataplane helm $(DEPLOYER)
	$(PY) -m pytest

# The fast inner loop: lint, types, layering and the tests that start no process.
unit: lint typecheck layering
	$(PY) -m pytest -q -m "not bed and not slow" -p no:cacheprovider

# Long random histories of the decision core against its invariants, then the whole system
# under a random schedule of changes and faults (minutes; not in make test).
SOAK_EXAMPLES ?= 3000
SOAK_STEPS ?= 100
SOAK_ROUNDS ?= 40
soak: venv controlplane
	MODEL_SOAK_EXAMPLES=$(SOAK_EXAMPLES) MODEL_SOAK_STEPS=$(SOAK_STEPS) \
		$(PY) -m pytest -q -s -p no:cacheprovider --timeout=0 tests/core/test_model_based.py \
			tests/core/test_allocation_model.py
	SYSTEM_SOAK_ROUNDS=$(SOAK_ROUNDS) \
		$(PY) -m pytest -q -s -p no:cacheprovider --timeout=0 tests/forwarder/test_system_soak.py

# Mutation testing of the pure parts (targets and goals: [tool.mutation] in pyproject.toml),
# with a score per module; survivors must be killed or listed in tests/mutation/equivalent.txt.
# Not in make test (about 15 minutes on 2 cores). MUTATION_ARGS="--only PATH" narrows it.
mutation: venv
	$(PY) -m tools.mutation --source-roots "$(SOURCE_ROOTS)" $(MUTATION_ARGS)

# The DigitalOcean API subset the imitation is checked against, derived from the description
# handed to the project beside the repository (the only step that reads it).
# OPENAPI_SOURCE=FILE names another copy; by default the script finds the one handed over.
openapi-subset: venv
	$(PY) -m tools.derive_openapi $(OPENAPI_SOURCE)

openapi-subset-check: venv
	$(PY) -m tools.derive_openapi $(OPENAPI_SOURCE) --check

cluster-up: venv controlplane
	@$(PY) -m testbed.cluster up

# The whole system on this machine, narrated; stops everything by itself.
demo: venv controlplane dataplane
	$(PY) -m demo

cluster-down: venv
	@$(PY) -m testbed.cluster down

# Benchmarks of the parts and the whole; results in bench/results/ (not committed). Ends by itself.
bench: venv controlplane dataplane $(DEPLOYER)
	$(PY) -m bench $(BENCH_ARGS)

# The tables of the parts the last bench run measured, into docs/performance-data.json (the
# docs' performance tables; the other parts' tables stay). PUBLISH_ARGS="--results FILE".
bench-publish: venv
	$(PY) -m bench.publish $(PUBLISH_ARGS)

# Both images built with buildah and each entrypoint run once with podman (exit 2, uid 65532).
# Not part of `make test`: needs podman, buildah, runc and (offline) mmdebstrap.
images:
	tools/images.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache site

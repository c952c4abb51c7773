# calltrack: two commands on a fresh machine (Python 3.11, Node 20, apt): `make demo`, `make test`.
# Setup is idempotent and quiet on a second run (the stamp is rebuilt only when pyproject.toml changes).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.calltrack-installed
PYTEST_ARGS ?=

.PHONY: setup layer test lint typecheck unit integration demo bench serve clean help

help:
	@echo "make setup   create .venv and install calltrack with dev dependencies (idempotent)"
	@echo "make test    setup, ruff, mypy, then every test tier (unit, infra, integration, e2e)"
	@echo "make lint    ruff + mypy only"
	@echo "make demo    setup, then run the end-to-end demo on the local stack"
	@echo "make serve   setup, then 'calltrack local serve --port 8787'"
	@echo "make bench   setup, then the benchmarks"

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "installing calltrack into $(VENV) ..."
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# The Lambda layer's dependencies for arm64 (pip --platform ... --only-binary): the one step that
# downloads, so synth and the infra tests never touch the network. A no-op once built.
layer: $(STAMP)
	@$(BIN)/python -m infra.layer build >/dev/null

setup: $(STAMP) layer
	@:

lint: setup
	@$(BIN)/ruff check .
	@$(BIN)/mypy layers functions cli infra

typecheck: lint

# Unit tests run in their own process: they disable sockets, and moto's in-memory mocks they may
# use share state with the in-process emulator the other tiers run against.
unit: setup
	@$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

integration: setup
	@$(BIN)/pytest -q tests/infra tests/integration tests/e2e $(PYTEST_ARGS)

# pytest exits 5 when it collects no tests; make treats any non-zero exit as failure, so an
# empty tier cannot pass silently.
test: lint unit integration

# A month of a Tokyo dental clinic's calls through the local stack; `calltrack demo --help` to scale it.
demo: setup
	@$(BIN)/calltrack demo

serve: setup
	@$(BIN)/calltrack local serve --port 8787

bench: setup
	@$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache cdk.out

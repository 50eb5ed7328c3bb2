# citywatch: `make demo` runs the whole system, `make test` checks everything.
SHELL := /bin/bash
# The first of these that runs and is 3.11 or 3.12 (bytewax 0.21.1 has wheels for both).
PYTHON ?= $(shell for p in python3.11 python3.12 python3; do \
  $$p -c 'import sys; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12)))' 2>/dev/null \
  && { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium
PY_PATHS := citywatch models flows sinks simulators tests benchmarks
# Test processes: most tests wait (subprocesses, sockets, Redis), so 4 fill 2 cores.
TEST_WORKERS ?= 4

.DEFAULT_GOAL := help
.PHONY: help venv lint fmt test test-fast demo bench browser-deps clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

venv: $(STAMP) ## create or update .venv (quick when up to date)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "citywatch needs Python 3.11 or 3.12 (python3.11, python3.12 or python3 on PATH); none found" >&2; exit 2; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12)) and "citywatch needs Python 3.11 or 3.12, found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

lint: venv ## ruff + mypy --strict
	$(BIN)/ruff check $(PY_PATHS)
	$(BIN)/ruff format --check $(PY_PATHS)
	$(BIN)/mypy

fmt: venv ## format and autofix
	$(BIN)/ruff format $(PY_PATHS)
	$(BIN)/ruff check --fix $(PY_PATHS)

browser-deps: ## Debian's chromium for the console's browser test
	@if [ ! -x $(CHROMIUM) ]; then \
	  echo "installing Debian's chromium for the browser test"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

test: venv lint browser-deps ## lint, then the whole test suite (real Redis at 127.0.0.1:6379 or embedded)
	$(BIN)/pytest -q -n $(TEST_WORKERS)

test-fast: venv ## the test suite without lint and slow tests
	$(BIN)/pytest -q -n $(TEST_WORKERS) -m "not slow and not browser"

demo: venv ## the whole system on an embedded Redis (or REDIS_URL) until Ctrl-C
	$(BIN)/citywatch demo

bench: venv ## the 400M records/day benchmark
	$(BIN)/citywatch bench

clean: ## remove caches (keeps .venv)
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info

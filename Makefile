# Every target bootstraps .venv from pyproject.toml, pinned by constraints.txt,
# so `make demo` and `make test` work on a machine with only python3, make and git.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The demo needs only the package and moto's server, not the development tools.
DEMO_STAMP := $(VENV)/.demo-installed

# Two tiers (README, "Tests"). `make check`: lint, types and every in-process test
# (not marked e2e) on both cores with few hypothesis examples, well under a minute.
# `make test` (what CI runs): `make check`, then the e2e tests (subprocess CLI,
# moto's server, PostgreSQL, Prometheus) and the property tests at full size.
JOBS   ?= 2

.PHONY: venv check test lint typecheck unit e2e demo bench lock clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(DEMO_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[demo]'
	touch $(DEMO_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check homeostat tests benchmarks
	$(BIN)/ruff format --check homeostat tests benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	HYPOTHESIS_PROFILE=check $(BIN)/pytest -q -n $(JOBS) -m "not e2e"

check: lint typecheck unit

# Serial: these tests wait on processes and servers, and a second worker would only compete with them.
e2e: $(STAMP)
	./deploy/prometheus/ensure-prometheus.sh
	./tests/ensure-postgresql.sh
	./deploy/grafana/ensure-typecheck.sh
	./tests/ensure-chromium.sh
	HYPOTHESIS_PROFILE=full $(BIN)/pytest -q -m "e2e or hypothesis"

test: check e2e

demo: $(DEMO_STAMP)
	$(BIN)/homeostat demo $(DEMO_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# Refresh the pins after changing pyproject.toml's dependency ranges.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install --quiet --upgrade "pip>=24"
	.lockenv/bin/python -m pip install --quiet '.[dev]'
	.lockenv/bin/python -m pip freeze --exclude homeostat | sort > constraints.txt
	rm -rf .lockenv

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

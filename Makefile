# printapi: `make run` serves the demo on 127.0.0.1:8080, `make test` runs the suite.
# Both build .venv first. Without DATABASE_URL they use an embedded PostgreSQL under var/.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip
PYTEST := $(BIN)/pytest
RUFF := $(BIN)/ruff
PRINTAPI := $(BIN)/printapi
HOST ?= 127.0.0.1
PORT ?= 8080
PYTEST_ARGS ?=
FUZZ_EXAMPLES ?= 100
FUZZ_ARGS ?=

.PHONY: all
all: lint test

.PHONY: help
help:
	@echo "make run      serve the demo data on http://$(HOST):$(PORT) (Ctrl-C stops)"
	@echo "make test     run the test suite (DATABASE_URL=... to use a server of yours)"
	@echo "make lint     check the code's form with ruff"
	@echo "make format   let ruff fix the form"
	@echo "make fuzz     schemathesis against a served demo, checked against docs/openapi.json"
	@echo "make bench    measure the service under load; writes docs/performance.md"
	@echo "make install  build $(VENV) with the service and its test tools"
	@echo "make e2e-tools  install nginx and PgBouncer (Debian) for the deployment tests"
	@echo "make clean    remove $(VENV), var/ and caches"

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	touch $@

.PHONY: install
install: $(VENV)/.installed

.PHONY: run
run: install
	PRINTAPI_HOST=$(HOST) PRINTAPI_PORT=$(PORT) $(PRINTAPI) serve --demo

.PHONY: test
test: install
	$(PYTEST) $(PYTEST_ARGS)

.PHONY: fuzz
fuzz: install
	$(BIN)/python -m tests.fuzz --max-examples $(FUZZ_EXAMPLES) $(FUZZ_ARGS)

.PHONY: bench
bench: install
	$(BIN)/python -m bench.run

.PHONY: lint
lint: install
	$(RUFF) check service tests bench
	$(RUFF) format --check service tests bench

.PHONY: format
format: install
	$(RUFF) check --fix service tests bench
	$(RUFF) format service tests bench

# nginx and PgBouncer, which the deployment tests run in front of and behind the service.
# Debian's packages; without them those tests are skipped, except in CI, which calls this.
E2E_PACKAGES := nginx-light pgbouncer

.PHONY: e2e-tools
e2e-tools:
	@if ! command -v nginx >/dev/null || ! command -v pgbouncer >/dev/null; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q --no-install-recommends $(E2E_PACKAGES) \
	    || { apt-get update -q && apt-get install -y -q --no-install-recommends $(E2E_PACKAGES); }; \
	fi

.PHONY: clean
clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info

# The two commands of a newcomer: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=
BENCH_ARGS ?= --json bench/results.json

.PHONY: run test bench lint typecheck pytest services system-packages check-default-jobs clean node-packages screenshot

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.runtime

## run: set up and run the worker on the embedded default (SQLite in ./f8a-jobs.sqlite, no server needed)
run: $(VENV)/.runtime
	$(BIN)/f8a-jobs-worker run

## test: set up, start the services the tests need, lint, type-check and run the whole test suite
test: system-packages $(VENV)/.dev node-packages services lint typecheck pytest

## bench: run the benchmarks against PostgreSQL and RabbitMQ on 127.0.0.1 (about 10 minutes; docs/benchmarks.md)
bench: system-packages $(VENV)/.dev node-packages services
	$(BIN)/python -m bench $(BENCH_ARGS)

## node-packages: the npm packages of the Node.js client example, of the third-party contract checks and of the
## benchmarks' second load driver, as locked
NODE_DIRS := docs/examples/node tests/node bench/node
node-packages: $(addsuffix /node_modules/.installed,$(NODE_DIRS))

%/node_modules/.installed: %/package-lock.json | system-packages
	cd $* && npm ci --no-audit --no-fund --loglevel=error
	touch $@

services:
	scripts/services start

## system-packages: the Debian packages the tests use (amqp-tools, Node.js), installed when missing
system-packages:
	scripts/system-packages

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/deptry .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

pytest: $(VENV)/.dev
	$(BIN)/pytest $(PYTEST_ARGS)

## screenshot: docs/dashboard.png, taken by the browser tests (Chromium, through Playwright) of a failing job's page
screenshot: system-packages $(VENV)/.dev services
	$(BIN)/pytest -q -p no:cacheprovider "tests/test_ui.py::test_a_failing_job_shows_its_traceback_and_a_paused_one_shows_paused"
	cp "test-artifacts/ui/test_a_failing_job_shows_its_traceback_and_a_paused_one_shows_paused[rabbitmq].png" docs/dashboard.png

check-default-jobs: $(VENV)/.runtime
	$(BIN)/f8a-jobs-worker check-default-jobs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache f8a-jobs.sqlite*

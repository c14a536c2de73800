# Bulletin: `make run` starts the daemon on embedded defaults; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast test-next-year lint arch bench clean

# Prints the console's address and, the first time, a one-time link for its first admin.
run: $(VENV)/.installed
	$(BIN)/bulletin init --first-admin
	$(BIN)/bulletin daemon

# Four workers on any machine: most tests wait on servers and processes, not on the CPU.
test: $(VENV)/.installed-test
	$(BIN)/pytest -n 4

# The tests that start no daemon process, PostgreSQL, SeaweedFS or browser.
test-fast: $(VENV)/.installed-test
	$(BIN)/pytest -n 4 -q -m "not slow and not postgres and not s3" -k "not axe and not layout_reflows"

# The suite with the wall clock a year ahead (libfaketime). Left out: the browser tests
# (Chromium does not start under libfaketime) and SeaweedFS, whose Object Lock keeps real time.
test-next-year: $(VENV)/.installed-test
	tools/faketime/year-ahead.sh $(BIN)/pytest -q -m "not s3" -k "not axe and not layout_reflows"

lint: arch
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# The arrows of docs/architecture.md: what may import what ([tool.importlinter] in pyproject).
arch: $(VENV)/.installed-test
	$(BIN)/lint-imports --no-cache

bench: $(VENV)/.installed-test
	$(BIN)/python bench/bench_publish.py --records 20000

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/bin/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $(VENV)/.installed $@

clean:
	rm -rf $(VENV) bulletin-data .pytest_cache .mypy_cache .ruff_cache

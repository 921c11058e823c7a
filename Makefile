# Two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck doctest pytest bench mutation system-deps clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian's redis-server, postgresql, chromium and nodejs, for the tests that run the real thing.
system-deps:
	bash scripts/install-system-deps.sh

demo: $(STAMP)
	$(PY) -m examples.starlette_app

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict src

pytest: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The examples in src/'s docstrings run too (README's blocks: tests/test_readme.py).
doctest: $(STAMP)
	$(PY) -m pytest -q --doctest-modules src

test: system-deps $(STAMP)
	$(MAKE) --no-print-directory lint typecheck doctest pytest

bench: $(STAMP)
	bash scripts/install-system-deps.sh --bench
	$(PY) -m bench

# Mutation testing of the security-critical modules (slow, not part of `make test`):
# a copy of the tree in .mutation/, a table per module, fails under 90 % or on an
# unexplained survivor (tests/mutation/survivors.txt). MUTATION_ARGS='--module whop_oauth._callback'.
$(VENV)/.mutation-installed: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,mutation]'
	touch $@

mutation: $(VENV)/.mutation-installed
	$(PY) scripts/mutation.py $(MUTATION_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-output .mutation

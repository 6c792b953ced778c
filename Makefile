# Two commands from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-test

.PHONY: demo test lint lock bench bench-quick bench-tenants clean

# constraints.txt is the lock: every package pinned, so a fresh install is the one tested.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/wallboard demo

lint: $(STAMP)
	$(BIN)/ruff check wallboard tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick

# The tenants phase alone (also the last phase of `make bench`): 500 tenants on one process.
bench-tenants: $(STAMP)
	$(BIN)/python -m bench.tenants

# A new lock: the newest releases pyproject.toml admits, installed into a throwaway venv.
lock:
	@set -e; tmp=$$(mktemp -d); \
	$(PYTHON) -m venv $$tmp; \
	$$tmp/bin/python -m pip install -q --upgrade pip; \
	$$tmp/bin/python -m pip install -q -e '.[test]'; \
	{ echo "# The lock: \`make lock\` writes it (pip freeze of a fresh venv), \`make\` installs with it."; \
	  echo "# tests/test_dependencies.py checks it against pyproject.toml."; \
	  $$tmp/bin/python -m pip freeze --exclude-editable; } > constraints.txt; \
	rm -rf $$tmp

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

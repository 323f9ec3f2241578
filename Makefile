# The two commands that matter: `make run` and `make test`. Both create .venv on first use and install the
# project into it again whenever pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# DEMO ONLY: `make run DEMO_DAY_SECONDS=10` makes one collections day last 10 real seconds.
DEMO_DAY_SECONDS ?=

.PHONY: run test lint typecheck reset clean

$(STAMP): pyproject.toml
	@echo "Installing Overdue into $(VENV) (first run, or pyproject.toml changed)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(if $(DEMO_DAY_SECONDS),OVERDUE_DEMO_DAY_SECONDS=$(DEMO_DAY_SECONDS) )$(BIN)/python -m stack

# pytest exits 5 when it collected no tests: that is a broken test run (a bad path, a collection filter),
# never a pass, so it fails with a message saying so instead of a bare "Error 5".
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy .
	@$(BIN)/python -m pytest -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests (exit 5): failing" >&2; fi; \
	exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

# Forget the embedded demo state (Temporal history, PostgreSQL data, logs). Stop `make run` first.
reset:
	rm -rf .state

clean:
	rm -rf $(VENV) .state .pytest_cache .mypy_cache .ruff_cache

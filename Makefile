# Two commands on a fresh clone: `make run` and `make test`. Setup output goes to stderr so
# that `echo question | make run` prints nothing but answers on stdout.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup run test lint bench clean

setup: $(INSTALLED)

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) >&2
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[train,dev]' >&2
	@touch $@

run: setup
	@$(BIN)/qabot run

test: setup
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	@$(BIN)/ruff check bot model tests bench migrations

bench: setup
	@$(BIN)/python bench/clinc150.py

# The virtual environment, build output and caches only: never var/ (the database and every
# model version live there).
clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
	find . -name __pycache__ -type d -not -path './var/*' -prune -exec rm -rf {} +

# Two commands on a fresh clone: `make run` and `make test`. Setup output goes to stderr so
# that `echo question | make run` prints nothing but answers on stdout.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Every dependency (with the train and dev extras) at the version tested, with its hashes.
LOCK := requirements.lock
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check

.PHONY: setup lock run test lint typecheck bench clean

setup: $(INSTALLED)

# The locked stack first, then the project itself without resolving anything again.
$(INSTALLED): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) >&2
	@$(PIP) install --require-hashes -r $(LOCK) >&2
	@$(PIP) install --no-deps -e . >&2
	@touch $@

# Refresh the lock after editing the dependencies in pyproject.toml: keeps every pin that
# still fits and resolves what changed. `make lock LOCK_ARGS=--upgrade` moves every package
# to the newest version its range allows.
lock: setup
	@CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet $(LOCK_ARGS) \
		--extra train --extra dev --strip-extras --allow-unsafe --generate-hashes \
		--no-emit-index-url --no-emit-find-links --output-file $(LOCK) pyproject.toml

run: setup
	@$(BIN)/qabot run

# One process by default: the whole suite has not yet been shown reliable spread over the
# cores on a busy machine. `make test TEST_WORKERS=auto` runs one process per core
# (pytest-xdist).
TEST_WORKERS ?= 0
test: setup
	@$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: setup typecheck
	@$(BIN)/ruff check bot model tests bench migrations
	@$(BIN)/ruff format --check bot model tests bench migrations

# mypy's settings and the folders it checks are in pyproject.toml ([tool.mypy]).
typecheck: setup
	@$(BIN)/mypy

bench: setup
	@$(BIN)/python bench/clinc150.py

# The virtual environment, build output and caches only: never var/ (the database and every
# model version live there).
clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
	find . -name __pycache__ -type d -not -path './var/*' -prune -exec rm -rf {} +

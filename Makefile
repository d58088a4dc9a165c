# Two commands (see README): `make demo` sets everything up and runs the main job on the built-in
# default data; `make test` sets everything up and runs lint, type checks and the test suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup data test lint demo clean

setup: $(VENV)/.installed data

$(VENV)/.installed: pyproject.toml scripts/install-python-deps.sh scripts/install-i3d.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/install-python-deps.sh
	touch $@

data:
	bash scripts/install-data.sh

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -x --durations=15

demo: setup
	$(BIN)/ul demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

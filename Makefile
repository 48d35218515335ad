PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test soak lint clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/satchel serve

lint: $(STAMP)
	$(BIN)/ruff check satchel tests
	$(BIN)/ruff format --check satchel tests
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/pytest -q

# The long crash, concurrency and full-disk runs (about half an hour); prints their figures.
soak: $(STAMP)
	$(BIN)/pytest -q -s -m soak tests/soak

clean:
	rm -rf $(VENV) satchel-data .pytest_cache .mypy_cache .ruff_cache

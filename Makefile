PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test soak lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

serve: $(STAMP)
	$(BIN)/satchel serve

lint: $(STAMP)
	$(BIN)/ruff check satchel tests bench
	$(BIN)/ruff format --check satchel tests bench
	$(BIN)/mypy

# The benchmark suite of issue 4 (about 20 minutes); installs wrk and nginx with apt-get when missing.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run

test: $(STAMP) lint
	$(BIN)/pytest -q

# The long crash, concurrency and full-disk runs (about 5 minutes on 2 cores); prints their figures.
soak: $(STAMP)
	$(BIN)/pytest -q -s -m soak tests/soak

clean:
	rm -rf $(VENV) satchel-data .pytest_cache .mypy_cache .ruff_cache

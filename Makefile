PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test soak lint bench clean

SERVE_STAMP := $(VENV)/.installed-serve

# Serving needs only the package's own dependencies; the development tools come with `make test`.
$(SERVE_STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $(SERVE_STAMP)

$(STAMP): $(SERVE_STAMP)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

serve: $(SERVE_STAMP)
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

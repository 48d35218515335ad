PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test preflight js soak lint bench bench-versus clean

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

# The benchmarks (about 20 minutes); they install wrk and nginx with apt-get when missing (as root).
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run

# B1 and B2 of this tree beside an earlier one (REV=commit), on this machine, in turns (about 5 minutes).
bench-versus: $(BENCH_STAMP)
	$(BIN)/python -m bench.versus $(REV) --workers 1,2

# What the tests need beyond the virtualenv is checked first: a missing tool is named with its apt-get package
# (PREFLIGHT=--strict, as .ci/run sets, stops on any; otherwise only on PostgreSQL, and the rest skip).
# The suite runs in TEST_PROCESSES pytest processes (pytest-xdist), each test module whole in one of them (its
# servers started once); TEST_PROCESSES=0 runs it in this one. A process that crashes ends the run, its test named:
# pytest-xdist restarting it under loadfile waits forever for work it never hands out.
TEST_PROCESSES ?= 2
test: preflight js lint
	$(BIN)/pytest -q -n $(TEST_PROCESSES) --dist loadfile --max-worker-restart=0

preflight: $(STAMP)
	$(BIN)/python -m tests.preflight $(PREFLIGHT)

# The JavaScript suites' packages, from the npm registry as tests/js/package-lock.json pins them (when npm is here).
JS_STAMP := tests/js/node_modules/.package-lock.json

js:
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory $(JS_STAMP); fi

$(JS_STAMP): tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error

# The long crash, concurrency and full-disk runs (about 5 minutes on 2 cores); prints their figures.
soak: $(STAMP)
	$(BIN)/pytest -q -s -m soak tests/soak

clean:
	rm -rf $(VENV) satchel-data .pytest_cache .mypy_cache .ruff_cache

# geoaware: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS ?= dev,fl,ml,image

# Offline machines keep the public files under ../shared/data with the releases' own paths.
ifneq ($(wildcard ../shared/data),)
export GEOAWARE_MIRROR ?= $(abspath ../shared/data)
endif

.PHONY: install demo test test-fast lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

demo: install
	$(BIN)/geoaware demo --out demo-output

test: install
	$(BIN)/python -m pytest -n 2 --doctest-modules src/geoaware tests

test-fast: install
	$(BIN)/python -m pytest -n 2 -m "not slow" --doctest-modules src/geoaware tests

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: install
	for b in benchmarks/bench_*.py; do GEOAWARE_BENCH_QUICK=1 $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache

# geoaware: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS ?= dev,fl,ml,image,hf,docs

# Offline machines keep the public files under ../shared/data with the releases' own paths.
ifneq ($(wildcard ../shared/data),)
export GEOAWARE_MIRROR ?= $(abspath ../shared/data)
endif

.PHONY: install demo test test-fast lint bench docs clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	# GeoCLIP's shipped weights (geolocate predict geoclip); --no-deps: its torchvision pin
	# would replace the CPU torch. What it imports is already here (transformers, pandas, tqdm).
	$(BIN)/python -m pip install --quiet --no-deps geoclip
	touch $(STAMP)

demo: install
	$(BIN)/geoaware demo --out demo-output --overwrite

test: install
	$(BIN)/python -m pytest -n 2 --doctest-modules src/geoaware tests

test-fast: install
	$(BIN)/python -m pytest -n 2 -m "not slow" --doctest-modules src/geoaware tests

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

# The documentation site (MkDocs + mkdocstrings) into site/, warnings as errors.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

bench: install
	for b in benchmarks/bench_*.py; do GEOAWARE_BENCH_QUICK=1 $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) demo-output site .pytest_cache .mypy_cache .ruff_cache

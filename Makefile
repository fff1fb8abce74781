# Everything runs from a project-local virtualenv created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: run test lint typecheck unit soak bench lock clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# The peers of bench/peers.py, on top of the dev install; never needed by `make test`.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,bench]"
	touch $(BENCH_STAMP)

run: $(STAMP)
	$(BIN)/hydra run

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q

# The reliability soaks at full length (the default suite runs them for 300 and 120 cycles).
soak: $(STAMP)
	HYDRA_SOAK_CYCLES=20000 $(BIN)/python -m pytest -q tests/reliability/test_soak.py
	HYDRA_PAPER_SOAK_CYCLES=420 $(BIN)/python -m pytest -q tests/reliability/test_paper_soak.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

lock: $(BENCH_STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | sed '/^-e /d' > constraints.tmp
	{ sed -n '1,2p' constraints.txt; cat constraints.tmp; } > constraints.txt.new && rm constraints.tmp && mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

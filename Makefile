# Two commands for a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv export clean-nbs check-sync nbtest pytest bench

$(STAMP): settings.ini setup.py
	bash scripts/setup-system.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel setuptools
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

# The kit's main job on the embedded dataset; writes demo_out/report.md (+ JSON, PNG).
demo: venv
	$(BIN)/wsol-demo --out demo_out

# Notebooks and library in sync (untracked files included), notebook tests, then pytest.
check-sync: venv
	$(BIN)/nbdev_clean
	$(BIN)/nbdev_export
	$(BIN)/python scripts/make_readme.py
	@if [ -n "$$(git status --porcelain)" ]; then \
	  echo "nbdev_clean/nbdev_export changed the tree: notebooks and library disagree:"; \
	  git status --porcelain; exit 1; fi

nbtest: venv
	HOME=$$(mktemp -d) $(BIN)/nbdev_test --n_workers 2 --timing

pytest: venv
	HOME=$$(mktemp -d) $(BIN)/python -m pytest -q tests

test: check-sync nbtest pytest

bench: venv
	$(BIN)/python benchmarks/bench_maxboxacc.py

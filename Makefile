# p3d: two commands do everything on a fresh machine: `make figures` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.p3d-installed
PRESET ?= cpu
# Training processes of the preset's grid (one torch thread each, so the results do not depend on it).
WORKERS ?= 2
# Test processes of make test and make test-fast (pytest-xdist; 0: none, the tests run in pytest's own process).
TEST_WORKERS ?= 2

.PHONY: setup test test-fast figures clean

# A .venv that works (imports p3d and its core dependencies) keeps its stamp; one that does not (a failed
# earlier attempt, an interpreter that moved) loses it, and the stamp rule rebuilds it.
setup:
	@$(PY) -c 'import p3d, numpy, scipy, pandas, torch' >/dev/null 2>&1 || rm -f $(STAMP)
	@$(MAKE) --no-print-directory $(STAMP)

# Idempotent: re-installs only when the dependency pins change. A .venv whose python or pip does not run
# is removed and created afresh (python -m venv over a broken one can leave it broken).
$(STAMP): pyproject.toml constraints.txt
	@if ! $(PY) -c 'import sys, pip' >/dev/null 2>&1; then \
	    echo "setup: $(VENV) is missing or broken: creating it afresh"; \
	    rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test,notebooks]"
	$(PY) -c 'import p3d, numpy, scipy, pandas, torch'
	@touch $(STAMP)

# Unit tests + nbval over every notebook at its smoke defaults; the 20 slowest listed at the end (the suite's
# budget is 15 minutes on the project's 2-core machines). TEST_WORKERS pytest-xdist processes, one torch thread
# each, take whole test files (--dist loadfile), and one of them all the notebooks, in order (they share data/
# and runs/; tests/conftest.py). TEST_WORKERS=0 runs everything in pytest's own process.
test: setup
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=20 --nbval-lax notebooks tests

# The unit tests without the slow end-to-end ones (@pytest.mark.slow) and without the notebooks.
test-fast: setup
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow" tests

# Every notebook in notebooks/, in order, with papermill at preset=$(PRESET). PRESET=full (trained to a validation
# plateau; seeds per arm: p3d.experiments.SPECS) writes the committed figures/, results/tables/, results/claims.md and results/provenance.json;
# the default, cpu (the quick look), writes the same files under results/cpu/. Executed copies: notebooks/ beside
# the provenance (results/notebooks/, results/cpu/notebooks/).
# EXTRA=1 also runs the analyses beyond the paper (p3d.notebook_runner.EXTRA_PARAMETER_SETS), outside the time budget.
# WORKERS=N trains N runs of the grid at a time (default 2, the project's 2-core machine).
figures: setup
	$(PY) -m p3d.notebook_runner --preset $(PRESET) --workers $(WORKERS) $(if $(EXTRA),--extra,)

clean:
	rm -rf results/notebooks results/cpu/notebooks .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

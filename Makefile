# p3d: two commands do everything on a fresh machine: `make figures` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.p3d-installed
PRESET ?= cpu

.PHONY: setup test figures clean

setup: $(STAMP)

# Idempotent: re-installs only when the dependency pins change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test,notebooks]"
	@touch $(STAMP)

# Unit tests + nbval over every notebook at its smoke defaults.
test: setup
	$(VENV)/bin/pytest -q --nbval-lax tests notebooks

# Every notebook in notebooks/, in order, with papermill at preset=$(PRESET); executed copies go to
# results/notebooks/, figures to figures/, tables to results/tables/, provenance to results/provenance.json.
# EXTRA=1 also runs the analyses beyond the paper (p3d.figures.EXTRA_PARAMETER_SETS), outside the time budget.
figures: setup
	$(PY) -m p3d.figures --preset $(PRESET) $(if $(EXTRA),--extra,)

clean:
	rm -rf results/notebooks .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

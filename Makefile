# Two entry points for a fresh machine: `make demo` (set up + run the offline demo) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# torch first and pinned: on a CPU machine 2.13.0 is the CPU build (a plain range would pull a CUDA build)
TORCH ?= torch==2.13.0

.PHONY: setup demo test

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/snakemake --profile profiles/local

test: setup
	$(PY) -m pytest -n 2 --dist loadfile --durations=15 tests

# The two set-up commands of the README: `make demo` and `make test`. Both create .venv if it is
# missing and install prefrl into it, with torch pinned by constraints.txt for every pip call.
VENV ?= .venv
PY := $(VENV)/bin/python
export PIP_CONSTRAINT := $(abspath constraints.txt)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-fast lint bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/prefrl demo

lint: install
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest

test-fast: lint
	$(VENV)/bin/pytest -m "not slow"

bench: install
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/cartpole_vs_sb3.py

clean:
	rm -rf $(VENV) runs

# Two commands matter: `make run` and `make test`. Both install first.
PYTHON_VERSION := $(shell cat .python-version)
PYENV_PYTHON := $(HOME)/.pyenv/versions/$(PYTHON_VERSION)/bin/python
BASE_PYTHON := $(if $(wildcard $(PYENV_PYTHON)),$(PYENV_PYTHON),python3.13)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test screenshots lint typecheck bench bench-quick clean

install: $(STAMP)

# Re-install only when the dependency list changes: quick and idempotent.
$(STAMP): pyproject.toml .python-version
	test -x $(PY) || $(BASE_PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: install
	$(PY) -m server

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# Tests save screenshots to build/screenshots/ only; this refreshes the README's on purpose.
screenshots: install
	UPDATE_SCREENSHOTS=1 $(PY) -m pytest -q -m screenshot tests/

lint: install
	$(PY) -m ruff check server tests bench examples
	$(PY) -m ruff format --check server tests bench examples
	$(PY) -m mypy

# The relay against the direct baseline; see bench/README.md. bench-quick: < 2 min.
bench: install
	$(PY) -m bench

bench-quick: install
	$(PY) -m bench --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

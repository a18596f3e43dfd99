# Two commands matter: `make run` and `make test`. Both install first.
PYTHON_VERSION := $(shell cat .python-version)
PYENV_PYTHON := $(HOME)/.pyenv/versions/$(PYTHON_VERSION)/bin/python
BASE_PYTHON := $(if $(wildcard $(PYENV_PYTHON)),$(PYENV_PYTHON),python3.13)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# uv installs from uv.lock, exactly (hashes checked); it lives in a venv of its own
# so that `uv sync`, which removes what the lock does not name, never removes itself.
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
# UV_COMPILE_BYTECODE: every .pyc written once, at install. Where PYTHONDONTWRITEBYTECODE
# is set (CI machines), each process the suite spawns would otherwise compile its imports
# afresh (the anthropic SDK alone is 3,000 modules).
UV_ENV := UV_PROJECT_ENVIRONMENT=$(VENV) UV_PYTHON=$(BASE_PYTHON) UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1

.PHONY: install lock run test screenshots lint typecheck bench bench-quick clean

install: $(STAMP)

$(UV):
	$(BASE_PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Re-install only when the lock changes: quick and idempotent. --frozen: the lock
# is used as it is, never re-resolved; --extra dev: the tests' tools too.
$(STAMP): uv.lock pyproject.toml .python-version | $(UV)
	$(UV_ENV) $(UV) sync --frozen --extra dev --quiet
	touch $(STAMP)

# Re-resolve within pyproject.toml's ranges. To move one dependency only:
# `$(UV) lock --upgrade-package NAME`. Then `make test` before committing uv.lock.
lock: $(UV)
	$(UV_ENV) $(UV) lock --upgrade

run: install
	$(PY) -m server

# compileall: our own modules' .pyc too, for the same reason as UV_COMPILE_BYTECODE.
test: install
	$(PY) -m compileall -q server tests
	$(PY) -m pytest $(PYTEST_ARGS)

# Tests save screenshots to build/screenshots/ only; this refreshes the README's on purpose.
screenshots: install
	UPDATE_SCREENSHOTS=1 $(PY) -m pytest -q -m screenshot tests/

lint: install
	$(PY) -m ruff check server tests bench examples clients
	$(PY) -m ruff format --check server tests bench examples clients
	$(PY) -m mypy

# The relay against the direct baseline; see bench/README.md. bench-quick: < 2 min.
bench: install
	$(PY) -m bench

bench-quick: install
	$(PY) -m bench --quick

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache

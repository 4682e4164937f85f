# Stratum task file: `make demo` runs the seeded demo, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps "kserve==0.21.0"  # pyproject [kserve-models] says why --no-deps
	@touch $(STAMP)

demo: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	STRATUM_HTTPS=false STRATUM_EMBEDDED_MONITOR=true $(PY) manage.py runserver 127.0.0.1:8000

test: setup
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -n 2 --dist loadfile

lint: setup
	$(PY) -m ruff check .

bench: setup
	@echo "Start a server first, then: $(PY) bench/registry_api.py --base-url http://127.0.0.1:8000 --token TOKEN"

clean:
	rm -rf $(VENV) var/*.sqlite3

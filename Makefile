# Huntaze: `make run` sets everything up and serves http://127.0.0.1:8000; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint format install migrate seed bench clean help

help:
	@echo "make run    set up (virtualenv, install, migrate, demo data) and serve web + worker + beat"
	@echo "make test   run the test suite (embedded default, or services when DATABASE_URL/REDIS_URL are set)"
	@echo "make lint   ruff"
	@echo "make bench  run every benchmark under bench/"

$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	@touch $(STAMP)

install: $(STAMP)

migrate: install
	DEBUG=$${DEBUG:-true} $(PY) manage.py migrate --noinput

seed: migrate
	DEBUG=$${DEBUG:-true} $(PY) manage.py seed_demo --if-empty

run: seed
	@echo "Huntaze is starting at http://127.0.0.1:8000 (web, worker and beat; Ctrl-C stops all three)"
	DEBUG=$${DEBUG:-true} PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho -f Procfile start

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-bench.lock
	@for script in bench/[!_]*.py; do [ -e "$$script" ] || continue; echo "== $$script"; $(PY) $$script --quick || exit 1; done

clean:
	rm -rf $(VENV) var/

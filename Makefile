# Huntaze: `make run` sets everything up and serves http://127.0.0.1:8000; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint format install migrate seed bench screenshots fuzz clean help

help:
	@echo "make run    set up (virtualenv, install, migrate, demo data) and serve web + worker + beat"
	@echo "make test   run the test suite (embedded default, or services when DATABASE_URL/REDIS_URL are set)"
	@echo "make lint   ruff"
	@echo "make bench  run every benchmark under bench/"
	@echo "make load   load test: 50 members browsing while 20 generations stream (locust, loopback, 60 s)"
	@echo "make screenshots  run the browser journeys and save each step under docs/screenshots/"
	@echo "make fuzz   fuzz the API with schemathesis, random seed (printed; FUZZ_SEED=<seed> make fuzz replays it)"

$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	@touch $(STAMP)

install: $(STAMP)

migrate: install
	DEBUG=$${DEBUG:-true} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-true} $(PY) manage.py declare_queues

seed: migrate
	DEBUG=$${DEBUG:-true} $(PY) manage.py seed_demo --if-empty

run: seed
	@echo "Huntaze is starting at http://127.0.0.1:8000 (web, worker and beat; Ctrl-C stops all three)"
	DEBUG=$${DEBUG:-true} SIMULATE_FANS=$${SIMULATE_FANS:-true} PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho -f Procfile start

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

# bench/load.py: locust's members on the dashboard, studio and idea board while studio
# websockets stream generations, on daphne and a database of its own (LOAD_ARGS=--quick: 20 s).
load: install
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-bench.lock
	$(PY) bench/load.py $(LOAD_ARGS)

# The browser journeys, saving a PNG per step (shown in README.md and docs/journeys.md).
JOURNEYS := tests/e2e/test_journeys.py tests/e2e/test_inbox.py tests/e2e/test_campaigns.py tests/e2e/test_automations.py tests/e2e/test_monitoring.py tests/e2e/test_optimization.py
screenshots: install
	rm -f docs/screenshots/*.png
	HUNTAZE_SCREENSHOTS=$(CURDIR)/docs/screenshots $(PY) -m pytest -q -m e2e $(JOURNEYS)

# The API fuzz gate of tests/test_api_fuzz.py (in `make test` with seed 17 and 10 examples per
# operation), with a random seed and FUZZ_MAX_EXAMPLES examples (default 100).
fuzz: install
	@seed=$${FUZZ_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; \
	echo "make fuzz: seed $$seed"; \
	FUZZ_SEED=$$seed FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-100} $(PY) -m pytest -q -s -m fuzz tests/test_api_fuzz.py $(PYTEST_ARGS); \
	status=$$?; echo "make fuzz: seed $$seed (replay: FUZZ_SEED=$$seed make fuzz)"; exit $$status

clean:
	rm -rf $(VENV) var/

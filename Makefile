# Two commands for a new user: `make run` and `make test`. Everything else is a step they call.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
PORT ?= 5000

.PHONY: setup run test bench soak lint translations extract-messages

setup: $(VENV)/.installed node_modules/.installed sapien/static/vendor/htmx.min.js contracts/build/.built translations

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

# `npm install --no-save` keeps the lock's pinned versions; `npm ci` trips over anvil's per-platform
# optional packages, which the lock records only for the platform that wrote it (an npm bug).
node_modules/.installed: package.json package-lock.json
	npm install --no-save --no-audit --no-fund --loglevel=error
	touch $@

# htmx comes from npm and is served from our own origin; the copy is not kept in git.
sapien/static/vendor/htmx.min.js: node_modules/.installed
	mkdir -p sapien/static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js $@

# ABI and bytecode are build outputs (not in git): solc from npm compiles contracts/*.sol against OpenZeppelin.
contracts/build/.built: node_modules/.installed contracts/build.js $(wildcard contracts/*.sol)
	node contracts/build.js
	touch $@

translations: $(VENV)/.installed
	$(VENV)/bin/pybabel compile --directory sapien/translations --domain messages > /dev/null

extract-messages: $(VENV)/.installed
	$(VENV)/bin/pybabel extract --mapping babel.cfg --keywords _l --keywords lazy_gettext --no-location --sort-output --output sapien/translations/messages.pot .
	$(VENV)/bin/pybabel update --input-file sapien/translations/messages.pot --output-dir sapien/translations --no-fuzzy-matching --ignore-obsolete

run: setup
	$(PY) scripts/devstack.py run --port $(PORT)

test: setup
	$(PY) scripts/devstack.py test -- $(PYTEST_ARGS)

bench: setup
	$(PY) scripts/devstack.py bench $(BENCH)

# Labeling, reviews, aggregation and board reads together against a real server and worker, then the
# invariants: 10 minutes unless SOAK_SECONDS says otherwise.
SOAK_SECONDS ?= 600
soak: setup
	SOAK_SECONDS=$(SOAK_SECONDS) $(PY) scripts/devstack.py soak

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

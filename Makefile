# Two commands set everything up on a fresh machine:
#   make run   - the service (API on :8000 plus the payout worker) on the embedded default or your URLs
#   make test  - every test, against real PostgreSQL and Redis
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
NODE_STAMP := tests/firebase/node_modules/.installed-$(shell cksum < tests/firebase/package-lock.json | cut -d' ' -f1)

.PHONY: run test lint format typecheck bench migrate verify postman clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

$(NODE_STAMP): tests/firebase/package.json tests/firebase/package-lock.json
	# --ignore-scripts: the only install script worth running would compile re2 (an optional regex engine for
	# the hosting emulator) with node-gyp for minutes; the auth emulator never loads it.
	cd tests/firebase && npm ci --no-audit --no-fund --loglevel=error --prefer-offline --ignore-scripts
	rm -f tests/firebase/node_modules/.installed-* && touch $@

run: $(STAMP)
	bin/run

test: $(STAMP) $(NODE_STAMP)
	bin/test $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrate: $(STAMP)
	$(BIN)/flask --app api db upgrade

verify: $(STAMP)
	$(BIN)/flask --app api ledger verify

postman: $(STAMP)
	$(BIN)/flask --app api postman

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) tests/firebase/node_modules var/*.sqlite3*

# Two commands set everything up on a fresh machine:
#   make run   - virtualenv, install, migrate the SQLite database, demo data if empty, serve on :9102
#   make test  - install what the tests need and run them (every reachable database engine)

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_PACKS ?= 120
PORT ?= 9102
PYTEST_ARGS ?=

.PHONY: run test install lint format bench clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3

$(STAMP): $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# Debian packages the project needs (only installed when missing; needs root, as on CI machines).
# chromium: browser tests; prometheus: promtool checks deploy/prometheus rules and their unit tests;
# ffmpeg and libmagic1: neonize (`omnizap bot whatsapp-web`) loads libmagic and calls the ffmpeg binary.
SYSTEM_PACKAGES := chromium prometheus ffmpeg libmagic1
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	    || { echo "could not install$$missing: run as root or install them yourself"; exit 1; }; \
	fi

run: install system-deps
	$(BIN)/omnizap migrate
	$(BIN)/omnizap demo seed --if-empty --packs $(DEMO_PACKS)
	$(BIN)/omnizap serve --port $(PORT)

test: install system-deps
	$(BIN)/ruff check omnizap tests bench
	$(BIN)/ruff format --check omnizap tests bench
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

lint:
	$(BIN)/ruff check omnizap tests bench

format:
	$(BIN)/ruff format omnizap tests bench
	$(BIN)/ruff check --fix omnizap tests bench

bench: install
	$(BIN)/python -m bench.ingest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

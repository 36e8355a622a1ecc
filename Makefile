# The two commands: `make demo` and `make test`. Everything else is for developers.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Two stamps: what runs the app (make demo) and what tests and checks it on top (make test, lint, audit).
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test install lint format check migrations-check audit deploy-check clean

$(RUNTIME_STAMP): requirements.txt
	@test -x $(PY) || "$$(bin/find-python)" -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(RUNTIME_STAMP)

$(DEV_STAMP): $(RUNTIME_STAMP) requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(DEV_STAMP)

install: $(DEV_STAMP)

# Embedded default: SQLite under var/ and Celery jobs in-process, whatever the shell has exported.
demo: export DATABASE_URL :=
demo: export REDIS_URL :=
demo: $(RUNTIME_STAMP)
	@test -f .env || echo "DEBUG=1" > .env
	$(PY) manage.py migrate --no-input
	$(PY) manage.py seed_demo --base-url http://$(HOST):$(PORT)/
	@echo ""
	@echo "Concord is running at http://$(HOST):$(PORT)/  —  admin: http://$(HOST):$(PORT)/admin/  (Ctrl-C stops it)"
	$(PY) manage.py runserver $(HOST):$(PORT)

test: $(DEV_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(DEV_STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrations-check: $(DEV_STAMP)
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

# Known vulnerabilities in every installed distribution (exit 1 on any); AUDIT_ARGS="--advisories all.zip --offline"
# checks against OSV's bulk file on disk.
audit: $(DEV_STAMP)
	$(PY) bin/audit_deps.py --accept .ci/audit-accept.txt $(AUDIT_ARGS)

# Django's deployment checklist with production values (DEBUG off, HTTPS, a real secret): 0 issues or exit 1.
deploy-check: $(DEV_STAMP)
	DEBUG=0 SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(64))')" \
	ALLOWED_HOSTS=labels.example.com CSRF_TRUSTED_ORIGINS=https://labels.example.com \
	$(PY) manage.py check --deploy --fail-level WARNING

check: lint migrations-check test

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

# The two commands: `make demo` and `make test`. Everything else is for developers.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test install lint format check migrations-check audit deploy-check clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || "$$(bin/find-python)" -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP)

# Embedded default: SQLite under var/ and Celery jobs in-process, whatever the shell has exported.
demo: export DATABASE_URL :=
demo: export REDIS_URL :=
demo: $(STAMP)
	@test -f .env || echo "DEBUG=1" > .env
	$(PY) manage.py migrate --no-input
	$(PY) manage.py seed_demo
	@echo ""
	@echo "Concord is running at http://$(HOST):$(PORT)/  —  admin: http://$(HOST):$(PORT)/admin/  (Ctrl-C stops it)"
	$(PY) manage.py runserver $(HOST):$(PORT)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrations-check: $(STAMP)
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

# Known vulnerabilities in every installed distribution (exit 1 on any); AUDIT_ARGS="--advisories all.zip --offline"
# checks against OSV's bulk file on disk.
audit: $(STAMP)
	$(PY) bin/audit_deps.py --accept .ci/audit-accept.txt $(AUDIT_ARGS)

# Django's deployment checklist with production values (DEBUG off, HTTPS, a real secret): 0 issues or exit 1.
deploy-check: $(STAMP)
	DEBUG=0 SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(64))')" \
	ALLOWED_HOSTS=labels.example.com CSRF_TRUSTED_ORIGINS=https://labels.example.com \
	$(PY) manage.py check --deploy --fail-level WARNING

check: lint migrations-check test

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

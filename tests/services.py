"""Markers for tests that need real services, and a real Celery worker in a subprocess.

Without ``DATABASE_URL=postgres://…`` / ``REDIS_URL=redis://…`` (a laptop) these tests are skipped with a reason
naming the variable; under CI (``CI`` set) ``tests/conftest.py`` refuses to run at all without both.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]

needs_postgres = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="needs PostgreSQL: set DATABASE_URL=postgres://…",
)
needs_redis = pytest.mark.skipif(settings.REDIS_URL is None, reason="needs a Redis broker: set REDIS_URL=redis://…")


def test_database_url() -> str:
    """The URL of the database the tests run on (pytest-django's ``test_…`` database)."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


@contextlib.contextmanager
def celery_worker(*, concurrency: int = 1, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """A real ``celery -A config worker`` on this run's queue and test database; stopped on exit. ``env`` adds
    to or overrides the worker's environment (another broker, a shorter visibility timeout)."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY,
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL or "",
        "CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "DATABASE_CONN_MAX_AGE": "0",
        **(env or {}),
    }
    log = open(ROOT / "var" / "test-celery-worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=prefork" if concurrency > 1 else "--pool=solo",
            f"--concurrency={concurrency}",
            "-Q",
            settings.CELERY_TASK_DEFAULT_QUEUE,
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"test-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()


def wait_for[T](probe: Callable[[], T], *, timeout: float = 60.0, what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy; fail with the worker log's tail on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    log = ROOT / "var" / "test-celery-worker.log"
    tail = log.read_text()[-3000:] if log.exists() else "(no worker log)"
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; worker log tail:\n{tail}")

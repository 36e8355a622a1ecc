"""Celery is configured for idempotent jobs: JSON only, late acks, one message at a time, time limits; every
Redis call (cache and broker) is bounded, and sessions do not depend on Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from config.celery import app

ROOT = Path(__file__).resolve().parents[2]


def test_celery_settings_are_safe_for_idempotent_jobs() -> None:
    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert 0 < conf.task_soft_time_limit < conf.task_time_limit


def test_eager_mode_follows_redis_url() -> None:
    # Embedded default: no broker, jobs run in-process. With REDIS_URL, the real broker is used.
    assert app.conf.task_always_eager is (settings.REDIS_URL is None)
    assert app.conf.broker_url == (settings.REDIS_URL or "memory://localhost/")


# --- Redis outages: every call bounded, sessions in the database ----------------------------------------------------
SETTINGS_PROBE = """
import json
from config import settings
print(json.dumps({
    "caches": settings.CACHES,
    "session_engine": settings.SESSION_ENGINE,
    "transport": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    "connection_timeout": settings.CELERY_BROKER_CONNECTION_TIMEOUT,
    "publish_retry": settings.CELERY_TASK_PUBLISH_RETRY_POLICY,
}))
"""


def _production_settings(**env: str) -> dict[str, Any]:
    """``config/settings.py`` as a server reads it, with ``env`` (and nothing of the test run's environment)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS", "DATABASE", "DJANGO", "SECRET", "DEBUG"))}
    result = subprocess.run(
        [sys.executable, "-c", SETTINGS_PROBE],
        cwd=ROOT,
        env={**keep, "DEBUG": "1", "CONCORD_VAR_DIR": str(ROOT / "var" / "test-settings"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_sessions_live_in_the_database_with_or_without_redis() -> None:
    """A Redis outage must neither sign anyone out nor fail their requests, and a sign-out must not come back to
    life from a cache once Redis returns: the database alone holds sessions."""
    for env in ({}, {"REDIS_URL": "redis://redis.internal:6379/0"}):
        assert _production_settings(**env)["session_engine"] == "django.contrib.sessions.backends.db", env


def test_every_redis_call_has_a_timeout() -> None:
    found = _production_settings(
        REDIS_URL="redis://redis.internal:6379/0", REDIS_SOCKET_TIMEOUT="2", REDIS_CONNECT_TIMEOUT="3"
    )
    assert found["caches"]["default"] == {
        "BACKEND": "config.cache.ResilientRedisCache",
        "LOCATION": "redis://redis.internal:6379/0",
        "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 3, "retry_interval": 5},
    }
    assert found["transport"]["socket_timeout"] == 2 and found["transport"]["socket_connect_timeout"] == 3
    assert found["connection_timeout"] == 3
    assert found["publish_retry"] == {"max_retries": 0}  # one attempt: a frozen broker costs one timeout
    defaults = _production_settings(REDIS_URL="redis://redis.internal:6379/0")
    assert defaults["caches"]["default"]["OPTIONS"] == {
        "socket_timeout": 1,
        "socket_connect_timeout": 1,
        "retry_interval": 5,
    }


def test_the_app_uses_the_bounded_broker_settings() -> None:
    conf = app.conf
    assert conf.broker_transport_options["socket_timeout"] == settings.REDIS_SOCKET_TIMEOUT
    assert conf.broker_transport_options["socket_connect_timeout"] == settings.REDIS_CONNECT_TIMEOUT
    assert conf.broker_connection_timeout == settings.REDIS_CONNECT_TIMEOUT
    assert conf.task_publish_retry_policy == {"max_retries": 0}


@pytest.mark.django_db
def test_a_message_queued_under_a_jobs_old_name_still_runs_the_job(monkeypatch: Any) -> None:
    """After an upgrade the broker still holds messages named as the previous release named its jobs: a worker
    loads every job and every old name (``config.legacy_jobs``), and an old name runs the new job."""
    from config import legacy_jobs

    assert "config.legacy_jobs" in app.conf.imports  # a worker imports it at start
    app.loader.import_default_modules()  # what a worker does at start: autodiscovery and CELERY_IMPORTS
    registered = set(app.tasks)
    assert set(legacy_jobs.LEGACY_NAMES) <= registered
    assert {job.name for job in legacy_jobs.LEGACY_NAMES.values()} <= registered
    ran: list[int] = []
    monkeypatch.setattr("quality.jobs.project_stats_refresh", lambda *, project_id: ran.append(project_id))
    # The alias queues the job under its new name; run what it queues here rather than on a worker.
    monkeypatch.setitem(app.conf, "task_always_eager", True)
    app.tasks["labeling.tasks.refresh_project_stats_task"].apply(args=(41,)).get()
    assert ran == [41]


def test_a_fresh_process_finds_every_job_by_name_from_many_threads_at_once() -> None:
    """Services queue jobs by name (``labeling.queueing.job_named``): in a new web process, eight threads asking
    at once for jobs whose modules nothing imported yet all get them (no reliance on Celery's lazy autodiscovery)."""
    script = """
import threading, django
django.setup()
from labeling.queueing import job_named
names = ["quality.jobs.refresh_project_stats_job", "quality.jobs.recompute_project_quality_job",
         "exchange.jobs.run_import_job", "labeling.jobs.refresh_project_ranks_job"]
errors, barrier = [], threading.Barrier(8)
def ask(i):
    barrier.wait()
    try:
        assert job_named(names[i % 4]).name == names[i % 4]
    except Exception as error:
        errors.append(repr(error))
threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
[thread.start() for thread in threads]
[thread.join() for thread in threads]
print("errors", errors)
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("errors []"), result.stdout

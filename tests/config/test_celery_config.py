"""Celery is configured for idempotent jobs: JSON only, late acks, one message at a time, time limits."""

from django.conf import settings

from config.celery import app


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

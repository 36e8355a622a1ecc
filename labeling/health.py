"""Readiness: can this process serve requests and queue jobs? Each dependency it needs answers ``ok`` or ``down``
with a short reason (never an address, URL or password), each check bounded by its dependency's timeouts.

The database is always checked. With ``REDIS_URL`` set, the Redis cache and the Celery broker are checked too;
the embedded default (a local memory cache, jobs run in-process) has neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from labeling.outages import BROKER_ERRORS, DATABASE_ERRORS, REDIS_ERRORS, outage_reason
from labeling.queueing import broker as queueing

Check = dict[str, str]


def _database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DATABASE_ERRORS as error:
        return {"status": "down", "reason": outage_reason(error)}
    return {"status": "ok"}


def _cache(ping: Callable[[], None]) -> Check:
    """A PING to Redis itself, past the cache's fallback (``config.cache.ResilientRedisCache.ping``)."""
    try:
        ping()
    except REDIS_ERRORS as error:
        return {"status": "down", "reason": outage_reason(error)}
    return {"status": "ok"}


def _broker() -> Check:
    """A connection to the broker and a PING, one attempt, bounded by the broker's socket timeouts. The answer also
    tells the breaker of job queueing (``labeling.queueing.broker``): probed every few seconds by a load balancer, a
    broker back up is used again at once."""
    options: dict[str, Any] = {
        **current_app.conf.broker_transport_options,
        "max_retries": 1,  # kombu counts the first attempt
        "interval_start": 0,
        "interval_step": 0,
    }
    try:
        with current_app.connection_for_write(transport_options=options) as broker:
            broker.default_channel.client.ping()
    except BROKER_ERRORS as error:
        queueing.record_failure(error, what="readiness check")
        return {"status": "down", "reason": outage_reason(error)}
    queueing.record_success()
    return {"status": "ok"}


def readiness() -> dict[str, Check]:
    """Each needed dependency's check, by name: ``database``, and with Redis ``cache`` and ``broker``."""
    checks = {"database": _database()}
    ping = getattr(cache, "ping", None)  # a shared cache (Redis); a local memory cache cannot be down
    if ping is not None:
        checks["cache"] = _cache(ping)
    if not settings.CELERY_TASK_ALWAYS_EAGER:  # jobs go through a broker
        checks["broker"] = _broker()
    return checks

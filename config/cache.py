"""The cache: Redis, with timeouts, and a process-local fallback while Redis is away.

Every user of the cache keeps working during a Redis outage, degraded, instead of failing the request: sign-in and
API throttles, the coalescing marks of background jobs, job progress, the count of lost job deliveries. What
degrades while Redis is away: each process (each gunicorn worker, each Celery worker) counts and remembers on its
own, so

- the sign-in and API throttles allow up to "limit x processes" within a window, and counts made during the
  outage are forgotten when Redis returns (counts made before it are kept by Redis);
- a job requested in two processes may be queued twice (jobs are idempotent; the coalescing is an optimisation);
- the progress of a running import or recompute is visible only in the process that runs it (the API shows the
  job's stored state instead).

Nothing that must outlive a request is kept only in the cache: sessions are in the database
(``SESSION_ENGINE`` is Django's ``db`` backend), jobs in the database and the broker.

Bounded: every Redis call has a connect and a read timeout (``REDIS_CONNECT_TIMEOUT``, ``REDIS_SOCKET_TIMEOUT``), so
a frozen Redis costs a call at most that. After a failure, calls skip Redis for ``REDIS_RETRY_INTERVAL`` seconds
(``labeling.outages.CircuitBreaker``), then one call probes it: a dead or frozen Redis costs one timeout per
interval per process, not one per call. One warning is logged when Redis goes away and one when it is back; the
fallback is emptied then, so that what it held is never served by a later outage.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

import redis
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.backoff import NoBackoff
from redis.retry import Retry

from labeling.outages import REDIS_ERRORS, CircuitBreaker

T = TypeVar("T")

DEFAULT_SOCKET_TIMEOUT: Final = 1.0
DEFAULT_CONNECT_TIMEOUT: Final = 1.0
DEFAULT_RETRY_INTERVAL: Final = 5.0
_FALLBACK_MAX_ENTRIES: Final = 50_000

_registry_lock = threading.Lock()
_breakers: dict[str, CircuitBreaker] = {}


def _breaker_for(location: str, retry_after: float) -> CircuitBreaker:
    """One breaker per Redis location and process: Django builds a cache object per thread, and a thread that
    found Redis down must spare the others the wait."""
    with _registry_lock:
        breaker = _breakers.get(location)
        if breaker is None:
            breaker = _breakers[location] = CircuitBreaker("Redis cache", retry_after=retry_after)
        return breaker


class ResilientRedisCache(RedisCache):
    """Django's ``RedisCache`` with timeouts, served from a process-local ``LocMemCache`` while Redis is unreachable.

    ``OPTIONS``: ``socket_timeout`` and ``socket_connect_timeout`` (seconds, default 1), ``retry_interval`` (seconds
    between probes of a Redis found down, default 5); the rest goes to redis-py's connection pool as usual.
    """

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS") or {})
        retry_interval = float(options.pop("retry_interval", DEFAULT_RETRY_INTERVAL))
        options.setdefault("socket_timeout", DEFAULT_SOCKET_TIMEOUT)
        options.setdefault("socket_connect_timeout", DEFAULT_CONNECT_TIMEOUT)
        # One retry on a connection error, none on a timeout: a pooled connection to a Redis that restarted fails
        # once and is replaced at once (that is not an outage), while a frozen Redis costs one timeout, not several.
        options.setdefault("retry", Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)))
        super().__init__(server, {**params, "OPTIONS": options})
        location = ",".join(self._servers)
        self.breaker = _breaker_for(location, retry_interval)
        fallback_params = {key: value for key, value in params.items() if key != "OPTIONS"}
        fallback_params["OPTIONS"] = {"MAX_ENTRIES": _FALLBACK_MAX_ENTRIES}
        # LocMemCache instances of one name share their storage: one fallback per process, whatever the thread.
        self.fallback = LocMemCache(f"concord-redis-fallback:{location}", fallback_params)

    def _degradable(self, operation: str, call: Callable[[], T], fallback: Callable[[], T]) -> T:
        if not self.breaker.allows():
            return fallback()
        try:
            result = call()
        except REDIS_ERRORS as error:
            self.breaker.record_failure(error, what=f"cache {operation}")
            return fallback()
        if self.breaker.is_open:
            self.breaker.record_success()
            self.fallback.clear()
        return result

    def ping(self) -> None:
        """Ask Redis itself (bounded by the timeouts), whatever the breaker says: the readiness check. Raises one
        of ``labeling.outages.REDIS_ERRORS`` when Redis does not answer, and updates the breaker either way."""
        try:
            self._cache.get_client(write=False).ping()
        except REDIS_ERRORS as error:
            self.breaker.record_failure(error, what="readiness check")
            raise
        if self.breaker.is_open:
            self.breaker.record_success()
            self.fallback.clear()

    # --- Django's cache API, each call degradable ---------------------------------------------------------------
    def add(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self._degradable(
            "add",
            lambda: super(ResilientRedisCache, self).add(key, value, timeout, version),
            lambda: self.fallback.add(key, value, timeout, version),
        )

    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        return self._degradable(
            "get",
            lambda: super(ResilientRedisCache, self).get(key, default, version),
            lambda: self.fallback.get(key, default, version),
        )

    def set(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        self._degradable(
            "set",
            lambda: super(ResilientRedisCache, self).set(key, value, timeout, version),
            lambda: self.fallback.set(key, value, timeout, version),
        )

    def touch(self, key: str, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self._degradable(
            "touch",
            lambda: super(ResilientRedisCache, self).touch(key, timeout, version),
            lambda: self.fallback.touch(key, timeout, version),
        )

    def delete(self, key: str, version: int | None = None) -> bool:
        return self._degradable(
            "delete",
            lambda: super(ResilientRedisCache, self).delete(key, version),
            lambda: self.fallback.delete(key, version),
        )

    def get_many(self, keys: Iterable[str], version: int | None = None) -> dict[str, Any]:
        keys = list(keys)
        return self._degradable(
            "get_many",
            lambda: super(ResilientRedisCache, self).get_many(keys, version),
            lambda: self.fallback.get_many(keys, version),
        )

    def has_key(self, key: str, version: int | None = None) -> bool:
        return self._degradable(
            "has_key",
            lambda: super(ResilientRedisCache, self).has_key(key, version),
            lambda: self.fallback.has_key(key, version),
        )

    def incr(self, key: str, delta: int = 1, version: int | None = None) -> int:
        """Raises ``ValueError`` for a missing key, from Redis and from the fallback alike."""
        return self._degradable(
            "incr",
            lambda: super(ResilientRedisCache, self).incr(key, delta, version),
            lambda: self.fallback.incr(key, delta, version),
        )

    def set_many(self, data: dict[str, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> list[str]:
        return self._degradable(
            "set_many",
            lambda: super(ResilientRedisCache, self).set_many(data, timeout, version),
            lambda: self.fallback.set_many(data, timeout, version),
        )

    def delete_many(self, keys: Iterable[str], version: int | None = None) -> None:
        keys = list(keys)
        self._degradable(
            "delete_many",
            lambda: super(ResilientRedisCache, self).delete_many(keys, version),
            lambda: self.fallback.delete_many(keys, version),
        )

    def clear(self) -> bool:
        self.fallback.clear()
        return self._degradable("clear", lambda: super(ResilientRedisCache, self).clear(), lambda: True)

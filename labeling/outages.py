"""What an outage of a dependency (the database, the Redis cache, the Celery broker) looks like, and a circuit
breaker that stops every call from waiting for a dependency known to be down.

The error classes are the ones that mean "unreachable or briefly unable, try again later", never a bug: the
request is answered 503 with ``Retry-After`` (``labeling.middleware``), a cache call is served from the
process-local fallback (``config.cache``), a job is retried (``exchange.import_jobs``).
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from typing import Final

import kombu.exceptions
import psycopg
import redis.exceptions
from django.db import InterfaceError, OperationalError

logger = logging.getLogger("concord.outage")

# psycopg's own classes too: the hand-written statements (routing.sql, quality.pgarrays, COPY in imports and
# exports) run on the raw psycopg connection, whose errors Django does not translate.
DATABASE_ERRORS: Final = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
# Redis unreachable, frozen (a timeout), still loading its data, or a replica that turned read-only in a failover.
# ``BusyLoadingError`` and ``AuthenticationError`` are ``ConnectionError``s.
REDIS_ERRORS: Final = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ReadOnlyError)
# Publishing a job: kombu wraps the transport's connection errors in its ``OperationalError`` once its retries are
# spent; a socket timeout can also surface as it is.
BROKER_ERRORS: Final = (kombu.exceptions.OperationalError, *REDIS_ERRORS, TimeoutError, ConnectionError)


class JobQueueUnavailable(Exception):
    """Work that must run as a background job could not be queued (the broker is down): nothing was kept, and the
    client is told to try again (503 with ``Retry-After``)."""


def outage_reason(error: BaseException) -> str:
    """A short, safe description of why a dependency failed: never its address, URL or password (exception
    messages carry the host and port, and a URL may carry a password)."""
    if isinstance(error, JobQueueUnavailable):
        return "the job could not be queued"
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    if any(isinstance(e, redis.exceptions.AuthenticationError) for e in chain):
        return "authentication failed"
    text = str(error).lower()
    if any(isinstance(e, (redis.exceptions.TimeoutError, TimeoutError)) for e in chain) or "timeout" in text:
        return "timed out"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in text:
        return "connection refused"
    if any(isinstance(e, OSError) and e.errno == errno.EHOSTUNREACH for e in chain):
        return "host unreachable"
    if any(isinstance(e, redis.exceptions.BusyLoadingError) for e in chain):
        return "loading its data"
    if any(isinstance(e, redis.exceptions.ReadOnlyError) for e in chain):
        return "read-only (a replica)"
    return f"unavailable ({type(error).__name__})"


class CircuitBreaker:
    """Tracks one dependency of this process. Closed: calls go through. After a failure it opens: for
    ``retry_after`` seconds callers are told to skip the dependency (``allows()`` is false) instead of each waiting
    for its timeout; then one caller at a time is let through to probe it, and its success closes the breaker.

    Logs one warning when the dependency goes down and one when it is back (with how long it was away), whatever
    the number of calls in between: an outage under load must not write a line per request.
    """

    def __init__(self, dependency: str, *, retry_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.dependency = dependency
        self.retry_after = retry_after
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_probe = 0.0
        self._skipped = 0

    @property
    def is_open(self) -> bool:
        return self._down_since is not None

    def skipping(self) -> bool:
        """Whether callers are being told to skip the dependency right now (without taking the probe's turn)."""
        return self._down_since is not None and self._clock() < self._next_probe

    def allows(self) -> bool:
        """Whether to call the dependency now: always while closed; while open, once per ``retry_after``."""
        if self._down_since is None:
            return True
        with self._lock:
            if self._down_since is None:
                return True
            now = self._clock()
            if now >= self._next_probe:
                self._next_probe = now + self.retry_after  # the others keep skipping while this caller probes
                return True
            self._skipped += 1
            return False

    def record_failure(self, error: BaseException, *, what: str = "") -> None:
        with self._lock:
            now = self._clock()
            self._next_probe = now + self.retry_after
            if self._down_since is not None:
                return
            self._down_since, self._skipped = now, 0
        logger.warning(
            "%s unavailable (%s)%s: skipping it for %.0f s at a time until it answers again",
            self.dependency,
            outage_reason(error),
            f" during {what}" if what else "",
            self.retry_after,
        )

    def record_success(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is None:
                return
            away, skipped = self._clock() - self._down_since, self._skipped
            self._down_since, self._skipped = None, 0
        logger.warning("%s available again after %.1f s (%d calls skipped meanwhile)", self.dependency, away, skipped)

"""Coalesced jobs: many requests for the same job on the same project queue one run.

A request made inside a transaction takes effect when it commits. While a run is queued (a cache mark holding its
ETA), further requests queue nothing; the job clears the mark (``coalesced_mark_clear``) before it reads, so a
request committed after that read always queues a fresh run. Each process also remembers the ETAs it saw and skips
even the cache round trip while a known queued run will start after "now" (on a busy project: one trip per delay).
With Celery eager (no broker) every request runs at once.

Queueing happens after the request's transaction committed, so a broker that is down must not turn the committed
write into an error: :func:`job_enqueue` logs it (once per outage) and reports it, the coalescing mark is dropped
so the next request tries again, and the work is caught up by a beat job (``sweep-quality`` recomputes every
project whose judgments are newer than its quality; stats are refreshed with it). While the broker is known to be
down, requests skip it for ``REDIS_RETRY_INTERVAL`` seconds instead of each waiting for its timeout.
"""

from __future__ import annotations

import importlib
import logging
import time
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from labeling.outages import BROKER_ERRORS, CircuitBreaker

logger = logging.getLogger("concord.outage")
_ETA_MARGIN_SECONDS = 0.25
_DELIVERY_MEMORY_SECONDS = 7 * 86_400
_known_eta: dict[tuple[str, int], float] = {}
_clock = time.time
broker = CircuitBreaker("Celery broker", retry_after=getattr(settings, "REDIS_RETRY_INTERVAL", 5))


def job_named(name: str) -> Any:
    """The Celery job registered as ``name`` (``"<app>.jobs.<function>"``).

    A service queues its own app's jobs by name: the jobs module imports the services it runs, so a service that
    imported it back would close a cycle. The first lookup imports the job's module by its name, which registers
    its jobs with the app (Python's import lock makes concurrent first lookups wait for it, and no Django checks
    run, as Celery's lazy autodiscovery would in a web process); an unknown name raises ``KeyError`` at once.
    """
    if name not in current_app.tasks:
        importlib.import_module(name.rpartition(".")[0])
    return current_app.tasks[name]


def _job(task: Any) -> Any:
    return job_named(task) if isinstance(task, str) else task


def job_enqueue(task: Any, args: tuple[Any, ...], *, countdown: float | None = None) -> bool:
    """Queue ``task(*args)`` (a job or its registered name); ``False`` when the broker is unavailable (logged once
    per outage by ``broker``).

    Bounded by the broker's timeouts and publish retry policy (``config/settings.py``); while the broker is known
    to be down, returns ``False`` at once. In-process (eager) jobs run here and their errors propagate: they are the
    job's, not the broker's.
    """
    task = _job(task)
    if settings.CELERY_TASK_ALWAYS_EAGER:
        _publish(task, args, countdown)
        return True
    if not broker.allows():
        return False
    try:
        _publish(task, args, countdown)
    except BROKER_ERRORS as error:
        broker.record_failure(error, what=f"queueing {task.name}")
        return False
    broker.record_success()
    return True


def job_queue_known_down() -> bool:
    """The broker failed a moment ago and is being skipped: work that must be queued can be refused before it starts
    (an import's body is not spooled to disk only to be thrown away)."""
    return not settings.CELERY_TASK_ALWAYS_EAGER and broker.skipping()


def _publish(task: Any, args: tuple[Any, ...], countdown: float | None) -> None:
    if countdown is None:
        task.delay(*args)
    else:
        task.apply_async(args, countdown=countdown)


def job_enqueue_on_commit(task: Any, args: tuple[Any, ...], *, if_lost: str) -> None:
    """Queue ``task(*args)`` once the current transaction commits. The commit stands if the broker is down: the
    job is then logged as not queued, with ``if_lost`` saying what that leaves undone."""

    job = _job(task)

    def enqueue() -> None:
        if not job_enqueue(job, args):
            logger.warning("%s%s not queued (the broker is unavailable): %s", job.name, args, if_lost)

    transaction.on_commit(enqueue)


def coalesced_mark(name: str, project_id: int) -> str:
    return f"concord:{name}-queued:{project_id}"


def coalesced_mark_clear(name: str, project_id: int) -> None:
    """Called by the job before it reads: requests from now on queue a new run."""
    cache.delete(coalesced_mark(name, project_id))


def schedule_coalesced(task: Any, project_id: int, *, name: str, delay: float) -> None:
    """Queue ``task(project_id)`` ``delay`` seconds after the current transaction commits, unless one is queued.

    Within one transaction the same request is registered once: a bulk operation (an import, the demo seed) that
    asks a thousand times commits one request, which matters most when jobs run in-process (no broker).
    """
    task = _job(task)
    key = (name, project_id)
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(
        getattr(callback, "coalesced_key", None) == key for _, callback, _ in connection.run_on_commit
    ):
        return

    def enqueue() -> None:
        now = _clock()
        eager = settings.CELERY_TASK_ALWAYS_EAGER  # the job ran at once: there is no queued job to rely on
        if not eager and now < _known_eta.get(key, 0.0) - _ETA_MARGIN_SECONDS:
            return  # a queued run will read after this commit
        eta = now + delay
        mark = coalesced_mark(name, project_id)
        if cache.add(mark, eta, timeout=max(60, int(delay * 10))):
            if job_enqueue(task, (project_id,), countdown=delay):
                _known_eta[key] = eta
            else:  # not queued: the next request must not believe a run is coming
                cache.delete(mark)
        elif isinstance(queued := cache.get(mark), float):
            _known_eta[key] = queued

    enqueue.coalesced_key = key  # type: ignore[attr-defined]
    transaction.on_commit(enqueue)


def _delivery_key(task_id: str) -> str:
    return f"concord:unfinished-deliveries:{task_id}"


def delivery_start(task_id: str) -> int:
    """Count a delivery of the job message ``task_id``; return how many earlier deliveries never finished.

    A delivery that never finishes killed its worker (out of memory, the hard time limit, a lost machine) and
    Celery delivers the message again (late acks): without a bound, a job that always does that would take a
    worker forever. ``delivery_finish`` (in a ``finally``) clears the count, so failures that raise are not
    counted here: Celery's own retry limits cover those.
    """
    key = _delivery_key(task_id)
    cache.add(key, 0, timeout=_DELIVERY_MEMORY_SECONDS)
    try:
        return int(cache.incr(key)) - 1
    except ValueError:  # expired in between
        cache.set(key, 1, timeout=_DELIVERY_MEMORY_SECONDS)
        return 0


def delivery_finish(task_id: str) -> None:
    cache.delete(_delivery_key(task_id))

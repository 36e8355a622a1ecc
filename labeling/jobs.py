"""Coalesced jobs: many requests for the same job on the same project queue one run.

A request made inside a transaction takes effect when it commits. While a run is queued (a cache mark holding its
ETA), further requests queue nothing; the job clears the mark (``coalesced_mark_clear``) before it reads, so a
request committed after that read always queues a fresh run. Each process also remembers the ETAs it saw and skips
even the cache round trip while a known queued run will start after "now" (on a busy project: one trip per delay).
With Celery eager (no broker) every request runs at once.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

_ETA_MARGIN_SECONDS = 0.25
_known_eta: dict[tuple[str, int], float] = {}
_clock = time.time


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
            task.apply_async((project_id,), countdown=delay)
            _known_eta[key] = eta
        elif isinstance(queued := cache.get(mark), float):
            _known_eta[key] = queued

    enqueue.coalesced_key = key  # type: ignore[attr-defined]
    transaction.on_commit(enqueue)

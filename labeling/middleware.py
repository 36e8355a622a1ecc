"""A dependency outage answers 503 with ``Retry-After``, never a 500 page.

A dropped database connection (a PostgreSQL restart or failover, a terminated backend, a network cut) or a database
that refuses work for a moment surfaces as Django's ``OperationalError`` or ``InterfaceError``. The request's
transaction has rolled back by then and Django reconnects on the next request, so the client should simply try
again: submissions are idempotent on their client id, so a retried judgment is stored once. Pages get a short HTML
page, the labeling page's script and the API get JSON (the API through ``api.base``'s exception handler).

Redis is not needed to answer a request: the cache falls back to a per-process store (``config.cache``), sessions
are in the database, and a job that cannot be queued after a commit is logged and caught up later
(``labeling.queueing``). What cannot degrade — an import that must be queued (``JobQueueUnavailable``) — and any Redis
or broker error that still reaches a view answer 503 the same way, with a message naming no internals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

import kombu.exceptions
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from labeling.outages import DATABASE_ERRORS, REDIS_ERRORS, JobQueueUnavailable, outage_reason

logger = logging.getLogger("concord.outage")

# What a request may meet when a dependency is away: answered 503, whichever view or middleware raised it.
OUTAGE_ERRORS: Final = (*DATABASE_ERRORS, *REDIS_ERRORS, kombu.exceptions.OperationalError, JobQueueUnavailable)
RETRY_AFTER_SECONDS: Final = 5
OUTAGE_MESSAGE: Final = "The database is briefly unavailable. Please try again in a few seconds."
SERVICE_OUTAGE_MESSAGE: Final = "A background service is briefly unavailable. Please try again in a few seconds."
QUEUE_OUTAGE_MESSAGE: Final = (
    "The job queue is briefly unavailable, so the import was not started and nothing was kept. "
    "Please send the file again in a few seconds."
)


def outage_message(error: BaseException) -> str:
    """What to tell the client about ``error`` (one of ``OUTAGE_ERRORS``): which kind of dependency, no detail."""
    if isinstance(error, DATABASE_ERRORS):
        return OUTAGE_MESSAGE
    if isinstance(error, JobQueueUnavailable):
        return QUEUE_OUTAGE_MESSAGE
    return SERVICE_OUTAGE_MESSAGE


def outage_log(request: HttpRequest, error: BaseException) -> None:
    if isinstance(error, DATABASE_ERRORS):
        logger.warning(
            "database unavailable: %s %s answered 503: %s", request.method, request.path, error, exc_info=error
        )
    else:  # the Redis and broker errors carry the server's address: the log has the reason only
        logger.warning(
            "%s: %s %s answered 503 (%s)", type(error).__name__, request.method, request.path, outage_reason(error)
        )


def wants_json(request: HttpRequest) -> bool:
    """The labeling page's script (``X-Requested-With: fetch``), an API call, or a client that asks for JSON."""
    return (
        request.headers.get("X-Requested-With") == "fetch"
        or request.path.startswith("/api/")
        or "application/json" in request.headers.get("Accept", "")
    )


def outage_response(request: HttpRequest, message: str = OUTAGE_MESSAGE) -> HttpResponse:
    """The 503 itself. It touches neither the database nor the session: the page renders without a request."""
    response: HttpResponse
    if wants_json(request):
        response = JsonResponse({"error": message, "retry_after": RETRY_AFTER_SECONDS}, status=503)
    else:
        page = render_to_string("503.html", {"message": message, "seconds": RETRY_AFTER_SECONDS})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseOutageMiddleware:
    """Turns a view's outage error (``OUTAGE_ERRORS``: the database, Redis, the broker) into a logged 503 with
    ``Retry-After``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OUTAGE_ERRORS):
            return None
        outage_log(request, exception)
        return outage_response(request, outage_message(exception))

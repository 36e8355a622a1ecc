"""A database outage answers 503 with ``Retry-After``, never a 500 page.

A dropped connection (a PostgreSQL restart or failover, a terminated backend, a network cut) or a database that
refuses work for a moment surfaces as Django's ``OperationalError`` or ``InterfaceError``. The request's
transaction has rolled back by then and Django reconnects on the next request, so the client should simply try
again: submissions are idempotent on their client id, so a retried judgment is stored once. Pages get a short HTML
page, the labeling page's script and the API get JSON (the API through ``labeling.api.base``'s exception handler).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

import psycopg
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

logger = logging.getLogger("concord.outage")

# psycopg's own classes too: the hand-written statements (routing.sql, quality.pgarrays, COPY in imports and
# exports) run on the raw psycopg connection, whose errors Django does not translate.
DATABASE_ERRORS: Final = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
RETRY_AFTER_SECONDS: Final = 5
OUTAGE_MESSAGE: Final = "The database is briefly unavailable. Please try again in a few seconds."


def database_outage_log(request: HttpRequest, error: BaseException) -> None:
    logger.warning("database unavailable: %s %s answered 503: %s", request.method, request.path, error, exc_info=error)


def wants_json(request: HttpRequest) -> bool:
    """The labeling page's script (``X-Requested-With: fetch``), an API call, or a client that asks for JSON."""
    return (
        request.headers.get("X-Requested-With") == "fetch"
        or request.path.startswith("/api/")
        or "application/json" in request.headers.get("Accept", "")
    )


def database_outage_response(request: HttpRequest) -> HttpResponse:
    """The 503 itself. It touches neither the database nor the session: the page renders without a request."""
    response: HttpResponse
    if wants_json(request):
        response = JsonResponse({"error": OUTAGE_MESSAGE, "retry_after": RETRY_AFTER_SECONDS}, status=503)
    else:
        page = render_to_string("503.html", {"message": OUTAGE_MESSAGE, "seconds": RETRY_AFTER_SECONDS})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseOutageMiddleware:
    """Turns a view's ``OperationalError``/``InterfaceError`` into a logged 503 with ``Retry-After``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_ERRORS):
            return None
        database_outage_log(request, exception)
        return database_outage_response(request)

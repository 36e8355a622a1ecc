"""Pages. Thin: parse, authorise through ``labeling.tenancy``, call a service or selector, render."""

from __future__ import annotations

import sys

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults
from django.views.decorators.http import require_GET, require_POST

from labeling.health import readiness
from labeling.middleware import OUTAGE_ERRORS, outage_log, outage_message, outage_response
from labeling.tenancy import organization_switch


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Readiness, for load balancers and orchestrators: 200 when every dependency this server needs answers, 503
    naming the one that does not (``labeling.health``). Unauthenticated, and bounded by each dependency's timeouts."""
    checks = readiness()
    ready = all(check["status"] == "ok" for check in checks.values())
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    response = JsonResponse(body, status=200 if ready else 503)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def organization_switch_view(request: HttpRequest) -> HttpResponse:
    try:
        organization_id = int(request.POST.get("organization", ""))
    except ValueError:
        organization_id = -1
    organization_switch(request, organization_id)
    # Back to the page the switcher was on: a path of this site only. Never through ``redirect()``, which would
    # also take a view name ("logout") or fail on a word it cannot resolve.
    target = request.POST.get("next", "")
    if not target.startswith("/") or not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("home")
    return HttpResponseRedirect(target)


def request_too_large_message() -> str:
    return f"The request is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes of form data or JSON."


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400, except for a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``: Django raises ``RequestDataTooBig``
    (a 400) wherever the body is first read, often in a middleware before any view; it is a 413, with nothing
    written. JSON under ``/api/``, a page elsewhere."""
    if not isinstance(exception, RequestDataTooBig):
        return defaults.bad_request(request, exception)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": request_too_large_message()}, status=413)
    # Rendered without the request: the middleware that sets the user may not have run.
    page = loader.render_to_string("413.html", {"message": request_too_large_message()})
    return HttpResponse(page, status=413)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500, except for a dependency outage raised outside a view (a middleware: the session saved on the
    way out, the organization looked up on the way in, a throttle's counter), which answers 503 like one inside a
    view (``labeling.middleware``). Django calls this while handling the exception, so ``sys.exc_info()`` holds
    it."""
    error = sys.exc_info()[1]
    if isinstance(error, OUTAGE_ERRORS):
        outage_log(request, error)
        return outage_response(request, outage_message(error))
    return defaults.server_error(request)

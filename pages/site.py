"""Pages. Thin: parse, authorise through ``labeling.tenancy``, call a service or selector, render."""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.template import loader
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from labeling.health import readiness
from labeling.invitations import (
    NewAccount,
    account_create_from_invitation,
    invitation_accept,
    invitation_from_token,
    invitation_matches,
    invitation_open,
)
from labeling.logins import password_reset_record, password_reset_retry_after, throttled_response
from labeling.middleware import OUTAGE_ERRORS, outage_log, outage_message, outage_response
from labeling.models import Invitation
from labeling.tenancy import organization_switch
from pages.forms import AccountFromInvitationForm, PasswordResetRequestForm


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


# --- Invitations -----------------------------------------------------------------------------------------------
def _invitation_invalid(request: HttpRequest) -> HttpResponse:
    """One answer for every link that cannot be used (forged, expired, used, revoked, resent), like a missing page."""
    return render(request, "invitations/invalid.html", status=404)


@never_cache
@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The invitee's page: the organization and role; accept (signed in with the invited address), sign in to
    accept, or create an account through it. Accepting never changes the session's organization."""
    found = invitation_from_token(token)
    if found is None:
        return _invitation_invalid(request)
    if not invitation_open(found):
        if request.method == "GET" and request.user.is_authenticated and found.accepted_by_id == request.user.pk:
            # Back here after accepting: the person may now switch to the organization they joined.
            return render(request, "invitations/joined.html", {"invitation": found})
        return _invitation_invalid(request)
    form = AccountFromInvitationForm()
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "accept" and request.user.is_authenticated:
            return _invitation_accept(request, found)
        if action == "create" and not request.user.is_authenticated:
            form = AccountFromInvitationForm(request.POST)
            if form.is_valid():
                account = NewAccount(name=form.cleaned_data["name"], password=form.cleaned_data["password1"])
                try:
                    user = account_create_from_invitation(invitation=found, account=account)
                except ValidationError as error:
                    if getattr(error, "code", None) == "invalid_link":
                        return _invitation_invalid(request)
                    form.add_error(None, error)  # per field (name, password) or for the form (account exists)
                else:
                    login(request, user)
                    return redirect("work")
    return render(request, "invitations/accept.html", _invitation_context(request, found, form))


def _invitation_accept(request: HttpRequest, found: Invitation) -> HttpResponse:
    try:
        invitation_accept(invitation=found, user=request.user)
    except ValidationError as error:
        if getattr(error, "code", None) == "invalid_link":
            return _invitation_invalid(request)
        return render(request, "invitations/accept.html", _invitation_context(request, found, None), status=403)
    return redirect(request.path)


def _invitation_context(request: HttpRequest, found: Invitation, form: AccountFromInvitationForm | None) -> dict:
    signed_in = request.user.is_authenticated
    return {
        "invitation": found,
        "form": form,
        "signed_in": signed_in,
        "matches": signed_in and invitation_matches(invitation=found, user=request.user),
        "login_url": f"{reverse('login')}?next={quote(request.path, safe='/')}",
    }


# --- Password reset ---------------------------------------------------------------------------------------------
class PasswordResetRequestView(auth_views.PasswordResetView):
    """Django's view, throttled per address asked for and per client address (429, ``Retry-After``), with the
    e-mail sent by a job: the answer is the same "check your inbox" page, as fast, for any address."""

    form_class = PasswordResetRequestForm
    template_name = "registration/password_reset_form.html"
    success_url = reverse_lazy("password_reset_done")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        wait = password_reset_retry_after(request, request.POST.get("email", ""))
        if wait:
            return throttled_response(request, "registration/password_reset_throttled.html", wait)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: PasswordResetRequestForm) -> HttpResponse:
        password_reset_record(self.request, form.cleaned_data["email"])
        return super().form_valid(form)


class PasswordResetLinkView(auth_views.PasswordResetConfirmView):
    """Django's view; a link that cannot be used answers 404, like a missing page, whoever's account it names."""

    template_name = "registration/password_reset_confirm.html"

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> HttpResponse:
        if not context.get("validlink"):
            kwargs["status"] = 404
        return super().render_to_response(context, **kwargs)


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

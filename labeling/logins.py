"""The sign-in guard: every sign-in attempt starts a fresh session and is throttled; so are password resets.

**Fresh session.** A sign-in POST (the site's form and the admin's) first ends any session it arrives with, then
authenticates: success signs the account in to a new session, failure leaves none. Without this, a session
cookie planted in a victim's browser survived: Django's ``LoginView`` with ``redirect_authenticated_user``
redirected a POST without checking the credentials, and a failed attempt left the planted session signed in, so the
victim worked inside the attacker's account. A GET of the sign-in page while signed in may still redirect.

**Throttling.** Repeated failed sign-ins for one account, or from one address, are refused with 429 (and
``Retry-After``) for a while and logged; so are repeated password-reset requests for one address or from one
address (every request counts: the answer never says whether an account exists, so success cannot be told apart).
Counted in the cache (Redis in production, shared by every worker), in fixed windows of ``LOGIN_FAILURE_WINDOW``
seconds. A successful sign-in clears its account's count; the address keeps its count, so one address cannot try
many accounts. The failures are counted from Django's ``user_login_failed`` signal (``labeling/apps.py``); the
refusal and the fresh session are :class:`LoginThrottleMiddleware`'s, after the CSRF check (a cross-site POST can
neither sign anyone out nor use up an account's attempts).

**Whose counter.** The account counter is keyed on the identity authentication itself resolves: the username
normalised exactly as Django's ``AuthenticationForm`` does (stripped, Unicode NFKC), and the account's id when one
matches, so every spelling of one account (``annotator2@…`` typed in fullwidth letters is ``annotator2@…`` to the
form) shares one counter. Names that match no account are counted casefolded.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, logout
from django.contrib.auth.forms import UsernameField
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from labeling.accounts import email_normalise

logger = logging.getLogger("concord.security")


def _address(request: HttpRequest | None) -> str:
    """The client's address: ``REMOTE_ADDR``, or behind ``TRUSTED_PROXIES`` reverse proxies the address the first
    of them saw (that many entries from the right of ``X-Forwarded-For``; what a client writes further left is
    not trusted). Behind a proxy, leaving the setting at 0 would count every client as the proxy's address."""
    if request is None:
        return "unknown"
    proxies = settings.TRUSTED_PROXIES
    if proxies:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR") or "unknown"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def sign_in_identity(username: str) -> str:
    """Who a sign-in attempt with ``username`` is for: ``id:<pk>:<hash>`` when authentication would check an
    account's password, else ``name:<hash>`` of the normalised, casefolded name.

    The username goes through Django's own ``UsernameField`` (what ``AuthenticationForm`` authenticates with), and
    the account is looked up as ``ModelBackend`` does (``get_by_natural_key``), so the counter is the one of the
    account whose password the attempt tests, however it is spelled."""
    User = get_user_model()
    max_length = User._meta.get_field(User.USERNAME_FIELD).max_length or 254
    normalised = UsernameField(max_length=max_length).to_python(username)
    # Longer than the field or holding a NUL, it names no account (and PostgreSQL refuses a NUL in a query).
    if normalised and len(normalised) <= max_length and "\x00" not in normalised:
        try:
            account = User._default_manager.get_by_natural_key(normalised)
        except User.DoesNotExist:
            pass
        else:
            # With the account's own name: an id used again (SQLite reuses the highest after a deletion, a test
            # database is created anew) starts a count of its own.
            return f"id:{account.pk}:{_digest(account.get_username())}"
    return f"name:{_digest(normalised.casefold())}"


@dataclass(frozen=True)
class Counter:
    """One throttle counter: its cache key and how many events the window allows."""

    key: str
    limit: int
    label: str  # for the log: "account" or "address"


def _sign_in_counters(request: HttpRequest | None, username: str) -> list[Counter]:
    return [
        Counter(f"login-failures:account:{sign_in_identity(username)}", settings.LOGIN_FAILURES_PER_ACCOUNT, "account"),
        Counter(f"login-failures:address:{_address(request)}", settings.LOGIN_FAILURES_PER_ADDRESS, "address"),
    ]


def _password_reset_counters(request: HttpRequest | None, email: str) -> list[Counter]:
    # The reset form finds accounts by e-mail compared NFKC-normalised and casefolded (PasswordResetForm.get_users):
    # the same identity keys the counter, without a query, so the answer takes as long for any address.
    identity = _digest(email_normalise(email))
    return [
        Counter(f"password-resets:account:{identity}", settings.PASSWORD_RESETS_PER_ACCOUNT, "account"),
        Counter(f"password-resets:address:{_address(request)}", settings.PASSWORD_RESETS_PER_ADDRESS, "address"),
    ]


def _retry_after(counters: list[Counter]) -> int:
    counts = cache.get_many([counter.key for counter in counters])
    if any(counts.get(counter.key, 0) >= counter.limit for counter in counters):
        return settings.LOGIN_FAILURE_WINDOW
    return 0


def _count(request: HttpRequest | None, counters: list[Counter], what: str, name: str) -> None:
    for counter in counters:
        cache.add(counter.key, 0, timeout=settings.LOGIN_FAILURE_WINDOW)
        try:
            count = cache.incr(counter.key)
        except ValueError:  # expired between add and incr
            cache.set(counter.key, count := 1, timeout=settings.LOGIN_FAILURE_WINDOW)
        if count == counter.limit:
            logger.warning(
                "%s throttled after %d: %s (account %r, address %s)",
                what,
                count,
                counter.label,
                name,
                _address(request),
            )


def login_retry_after(request: HttpRequest, username: str) -> int:
    """Seconds before this account may try again from this address (an upper bound), or 0 when it may now."""
    return _retry_after(_sign_in_counters(request, username))


def login_failure_record(request: HttpRequest | None, username: str) -> None:
    """Count a failed sign-in against the account and the address; log when a limit is reached."""
    _count(request, _sign_in_counters(request, username), "sign-in", username)


def login_success_record(request: HttpRequest | None, username: str) -> None:
    cache.delete(_sign_in_counters(request, username)[0].key)


def password_reset_retry_after(request: HttpRequest, email: str) -> int:
    """Seconds before a reset for this address may be asked for again from this address, or 0."""
    return _retry_after(_password_reset_counters(request, email))


def password_reset_record(request: HttpRequest, email: str) -> None:
    """Count a password-reset request against the address asked for and the client's address."""
    _count(request, _password_reset_counters(request, email), "password reset", email)


def throttled_response(request: HttpRequest, template: str, wait: int) -> HttpResponse:
    response = TemplateResponse(request, template, {"minutes": -(-wait // 60)}, status=429)
    response["Retry-After"] = str(wait)
    return response.render()


class LoginThrottleMiddleware:
    """On a sign-in POST (the site's and the admin's form), after the CSRF check: ends the session the request
    came with, then answers 429 (with ``Retry-After``) for an account or from an address over its limit, before
    the password is checked. Listed after ``CsrfViewMiddleware``, whose ``process_view`` runs first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.paths: set[str] | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        if request.method != "POST":
            return None
        if self.paths is None:
            self.paths = {reverse("login"), reverse("admin:login")}
        if request.path not in self.paths:
            return None
        if request.user.is_authenticated:
            # A sign-in always authenticates, from nothing: whatever session came with it (a planted one) ends here,
            # whether the credentials that follow are right or not.
            logout(request)
        username = request.POST.get("username", "")
        wait = login_retry_after(request, username)
        if wait:
            logger.warning("sign-in refused (throttled): account %r, address %s", username, _address(request))
            return throttled_response(request, "registration/throttled.html", wait)
        return None

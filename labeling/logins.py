"""Sign-in throttling: repeated failed sign-ins for one account, or from one address, are refused with 429 for a
while and logged. Counted in the cache (Redis in production, shared by every worker), in fixed windows of
``LOGIN_FAILURE_WINDOW`` seconds. A successful sign-in clears its account's count; the address keeps its count,
so one address cannot try many accounts. Covers every sign-in form (the site's and the admin's): the failures are
counted from Django's ``user_login_failed`` signal, the refusal is :class:`LoginThrottleMiddleware`."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

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


def _keys(request: HttpRequest | None, username: str) -> list[tuple[str, int]]:
    """The counters a sign-in attempt is held to, with their limits."""
    account = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [
        (f"login-failures:account:{account}", settings.LOGIN_FAILURES_PER_ACCOUNT),
        (f"login-failures:address:{_address(request)}", settings.LOGIN_FAILURES_PER_ADDRESS),
    ]


def login_retry_after(request: HttpRequest, username: str) -> int:
    """Seconds before this account may try again from this address (an upper bound), or 0 when it may now."""
    counts = cache.get_many([key for key, _ in _keys(request, username)])
    if any(counts.get(key, 0) >= limit for key, limit in _keys(request, username)):
        return settings.LOGIN_FAILURE_WINDOW
    return 0


def login_failure_record(request: HttpRequest | None, username: str) -> None:
    """Count a failed sign-in against the account and the address; log when a limit is reached."""
    for key, limit in _keys(request, username):
        cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, count := 1, timeout=settings.LOGIN_FAILURE_WINDOW)
        if count == limit:
            logger.warning(
                "sign-in throttled after %d failures: %s (account %r, address %s)",
                count,
                key.split(":")[1],
                username,
                _address(request),
            )


def login_success_record(request: HttpRequest | None, username: str) -> None:
    cache.delete(_keys(request, username)[0][0])


class LoginThrottleMiddleware:
    """Answers 429 (with ``Retry-After``) to a sign-in POST for an account or from an address over its limit,
    before the password is checked."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.paths: set[str] | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            if self.paths is None:
                self.paths = {reverse("login"), reverse("admin:login")}
            if request.path in self.paths:
                username = request.POST.get("username", "")
                wait = login_retry_after(request, username)
                if wait:
                    logger.warning("sign-in refused (throttled): account %r, address %s", username, _address(request))
                    response = TemplateResponse(
                        request, "registration/throttled.html", {"minutes": -(-wait // 60)}, status=429
                    )
                    response["Retry-After"] = str(wait)
                    return response.render()
        return self.get_response(request)

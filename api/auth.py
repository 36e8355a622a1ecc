"""Who is calling the API, for which organization, and what they may do.

Two ways in, both resolving the organization from the credential, never from the request:

- ``Authorization: Bearer cnc_…``: an organization API key (``labeling.apikeys``). Full keys read and write the
  organization's projects, tasks and data; read-only keys read and export. Keys are accepted in that header only
  (never in the query string, where they would land in access logs).
- A signed-in session (with CSRF on writes, as DRF's ``SessionAuthentication`` enforces): the admins and managers
  of the organization the user acts under (the organization switcher's choice). Annotators have no API access.

No credential: 401 with ``WWW-Authenticate: Bearer``. A credential without the right: 403. Throttled per key (or
per user for sessions) with the rates in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from labeling.apikeys import api_key_authenticate
from labeling.models import ApiKey, Organization, Role
from labeling.tenancy import membership_for_request


class ApiKeyPrincipal:
    """``request.user`` for a request made with an API key: authenticated, not a person."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}"


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer <key>``. Listed first, so a request without credentials gets 401, not 403."""

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Send the key as 'Authorization: Bearer <key>'.")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid or revoked API key.") from None
        api_key = api_key_authenticate(key=key)
        if api_key is None:
            raise AuthenticationFailed("Invalid or revoked API key.")
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class CsrfSessionAuthentication(SessionAuthentication):
    """A signed-in browser session; DRF enforces CSRF on unsafe methods."""


@dataclass(frozen=True)
class Caller:
    """The resolved principal: the organization acted for and whether it may write."""

    organization: Organization
    can_write: bool
    api_key: ApiKey | None
    user: Any  # the person for a session, None for a key

    @property
    def organization_id(self) -> int:
        return self.organization.pk

    @property
    def label(self) -> str:
        return f"key:{self.api_key.prefix}" if self.api_key else f"user:{self.user.pk}"


def caller_for(request: Request) -> Caller | None:
    """The request's :class:`Caller` (cached on it), or ``None`` when the credential reaches no organization's API
    (an annotator, or a signed-in user without memberships)."""
    cached = getattr(request, "_concord_caller", False)
    if cached is not False:
        return cached
    caller: Caller | None = None
    if isinstance(request.auth, ApiKey):
        key = request.auth
        caller = Caller(key.organization, not key.read_only, key, None)
    elif request.user and request.user.is_authenticated:
        membership = membership_for_request(request._request)
        if membership is not None and membership.role in (Role.ADMIN, Role.MANAGER):
            caller = Caller(membership.organization, True, None, request.user)
    request._concord_caller = caller  # type: ignore[attr-defined]
    return caller


class OrganizationAccess(BasePermission):
    """Authenticated (else 401), reaching an organization (else 403), and allowed to write for unsafe methods."""

    message = "This credential has no access to this API."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False  # DRF answers 401 (the first authenticator sends WWW-Authenticate)
        caller = caller_for(request)
        if caller is None:
            return False
        if request.method not in SAFE_METHODS and not caller.can_write:
            self.message = "This API key is read-only."
            return False
        return True


class CallerRateThrottle(SimpleRateThrottle):
    """Requests per key (or per signed-in user), rate ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api"]``."""

    scope = "api"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        caller = caller_for(request)
        ident = caller.label if caller else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """The key as an OpenAPI HTTP bearer scheme."""

    target_class = "api.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "cnc_<prefix>_<secret>",
            "description": "An organization API key, created in the admin or with manage.py create_api_key.",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    """A signed-in admin's or manager's session cookie (with the CSRF token on writes)."""

    target_class = "api.auth.CsrfSessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}

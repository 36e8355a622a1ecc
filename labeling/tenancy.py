"""Tenancy: the one choke point through which requests, admin classes, API views and jobs reach tenant data.

- A request's organization is the one recorded in its session: at sign-in (the person's only organization, or the
  first by name), then only by the person's own choice (the switcher) — never from the request body or URL, and
  never changed by a membership gained later (an accepted invitation). A session whose recorded organization is
  no longer one of the person's has none until they choose again.
- ``access_*`` helpers fetch one object inside an organization and raise ``Http404`` for "not yours" exactly as
  for "does not exist".
- Tenant models use ``TenantQuerySet`` (``Model.objects.for_org(org)``); ``labeling/admin_base.py`` applies it to
  every admin class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from labeling.models import Membership, Organization, Project, Task

SESSION_ORGANIZATION_KEY = "concord_organization_id"


def memberships_of(user: Any) -> list[Membership]:
    # An API key's principal is authenticated but is no person (no pk): it has no memberships.
    if not getattr(user, "is_authenticated", False) or getattr(user, "pk", None) is None:
        return []
    return list(
        Membership.objects.filter(user=user).select_related("organization").order_by("organization__name", "id")
    )


def request_memberships(request: HttpRequest) -> list[Membership]:
    """The signed-in user's memberships, read once per request."""
    cached = getattr(request, "_concord_memberships", None)
    if cached is None:
        cached = memberships_of(request.user)
        request._concord_memberships = cached  # type: ignore[attr-defined]
    return cached


def membership_for_request(request: HttpRequest) -> Membership | None:
    """The membership the request acts under: the organization recorded in the session, if the user is still a
    member of it; otherwise none (the person chooses with the switcher).

    Joining another organization must never move an open session into it: the session would then act there on its
    next request (a project the person creates would be stored in the organization that invited them). Sessions
    from before the organization was recorded at sign-in have no entry at all: with one membership that is the
    organization (recorded now, so a membership gained later does not change it); with several, none until chosen.
    """
    memberships = request_memberships(request)
    session = getattr(request, "session", None)
    if not memberships or session is None:
        return None
    if SESSION_ORGANIZATION_KEY not in session:
        if len(memberships) != 1:
            return None
        session[SESSION_ORGANIZATION_KEY] = memberships[0].organization_id
    chosen = session.get(SESSION_ORGANIZATION_KEY)
    for membership in memberships:
        if membership.organization_id == chosen:
            return membership
    return None


def organization_record_at_sign_in(request: HttpRequest, user: Any) -> None:
    """At sign-in (Django's ``user_logged_in``, any sign-in form or ``login()``), record the session's organization:
    the one already recorded if the person is still a member of it (signing in again), else their only one or the
    first by name, else none. From here on only the person's choice changes it (:func:`organization_switch`)."""
    memberships = memberships_of(user)
    current = request.session.get(SESSION_ORGANIZATION_KEY)
    if not any(membership.organization_id == current for membership in memberships):
        request.session[SESSION_ORGANIZATION_KEY] = memberships[0].organization_id if memberships else None
    # The request may have read another principal's memberships before signing in: read them afresh.
    request._concord_memberships = memberships  # type: ignore[attr-defined]
    organization_attach(request)


def organization_switch(request: HttpRequest, organization_id: int) -> Membership:
    """Make ``organization_id`` the request's organization; 404 unless the user is a member of it."""
    for membership in request_memberships(request):
        if membership.organization_id == organization_id:
            request.session[SESSION_ORGANIZATION_KEY] = organization_id
            return membership
    raise Http404("No such organization.")


def organization_attach(request: HttpRequest) -> None:
    """Set ``request.membership`` and ``request.organization`` (lazily; ``None`` without a current organization)."""
    membership = SimpleLazyObject(lambda: membership_for_request(request))
    request.membership = membership  # type: ignore[attr-defined]
    request.organization = SimpleLazyObject(  # type: ignore[attr-defined]
        lambda: membership.organization if membership else None
    )


class CurrentOrganizationMiddleware:
    """Sets ``request.membership`` and ``request.organization`` (lazily; ``None`` when not a member anywhere)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        organization_attach(request)
        return self.get_response(request)


def request_membership(request: HttpRequest) -> Membership | None:
    membership = getattr(request, "membership", None)
    # Unwrap the lazy object so callers can test it with ``is None``.
    return membership if membership else None


def organization_context(request: HttpRequest) -> dict[str, Any]:
    """Template context: the current organization and the others the user may switch to."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    current = request_membership(request)
    return {
        "current_membership": current,
        "current_organization": current.organization if current else None,
        "user_memberships": SimpleLazyObject(lambda: request_memberships(request)),
    }


def access_object[M: models.Model](queryset: models.QuerySet[M], organization: Organization | int | None, pk: Any) -> M:
    """One object of ``queryset`` inside ``organization``; ``Http404`` when missing *or* another tenant's."""
    if organization is None:
        raise Http404("Not found.")
    try:
        return queryset.for_org(organization).get(pk=pk)  # type: ignore[attr-defined]
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found.") from None


def access_project(organization: Organization | int | None, project_id: Any) -> Project:
    return access_object(Project.objects.all(), organization, project_id)


def access_task(organization: Organization | int | None, task_id: Any) -> Task:
    return access_object(Task.objects.select_related("project"), organization, task_id)

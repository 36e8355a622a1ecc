"""Reads for labeling. Tenant data is always read through ``for_org`` (see ``labeling/tenancy.py``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from labeling.models import Label, Membership, Organization, Project, Role


def user_can_manage_any_organization(*, user: Any) -> bool:
    return Membership.objects.filter(user=user, role__in=[Role.ADMIN, Role.MANAGER]).exists()


def organization_users(*, organization: Organization | int) -> QuerySet:
    """The accounts that are members of ``organization`` (for choices in forms)."""
    return get_user_model().objects.filter(memberships__organization=organization).distinct()


def organization_admin_count(*, organization: Organization | int) -> int:
    return Membership.objects.for_org(organization).filter(role=Role.ADMIN).count()


def project_label_values(*, project: Project) -> set[str]:
    return set(Label.objects.for_org(project.organization_id).filter(project=project).values_list("value", flat=True))

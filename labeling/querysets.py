"""The tenant queryset: the one way to read tenant rows (see ``labeling/tenancy.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from django.db import models

if TYPE_CHECKING:
    from labeling.models import Organization


class TenantQuerySet(models.QuerySet):
    """Rows of one organization. Every model that carries ``organization`` uses this manager."""

    def for_org(self, organization: Organization | int) -> Self:
        return self.filter(organization=organization)


TenantManager = models.Manager.from_queryset(TenantQuerySet)

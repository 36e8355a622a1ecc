"""The ModelAdmins of every app, registered on the tenant-aware site (``backoffice.site``) when Django's admin
autodiscovery imports this package."""

from backoffice.admin import apikeys, labeling, quality, routing

__all__ = ["apikeys", "labeling", "quality", "routing"]

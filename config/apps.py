from django.contrib.admin.apps import AdminConfig


class ConcordAdminConfig(AdminConfig):
    """Makes ``admin.site`` the tenant-aware :class:`backoffice.site.ConcordAdminSite`."""

    default_site = "backoffice.site.ConcordAdminSite"

from django.contrib.admin.apps import AdminConfig


class ConcordAdminConfig(AdminConfig):
    """Makes ``admin.site`` the tenant-aware :class:`config.admin_site.ConcordAdminSite`."""

    default_site = "config.admin_site.ConcordAdminSite"

"""The Django admin as customer admins see it: their organization only (see ``labeling/admin_base.py``)."""

from __future__ import annotations

from django import forms
from django.contrib.admin import AdminSite
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest

from labeling.selectors import user_can_manage_any_organization
from labeling.tenancy import request_membership


class ConcordAdminLoginForm(AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": ("Please enter the e-mail and password of an organization admin or manager account."),
    }

    """Admits superusers and people who are admin or manager of at least one organization.

    Access is decided by memberships, not ``is_staff``: a person can be a manager in one organization and an
    annotator in another, which a global flag cannot express.
    """

    def confirm_login_allowed(self, user) -> None:  # type: ignore[no-untyped-def]
        AuthenticationForm.confirm_login_allowed(self, user)
        if not (user.is_superuser or user_can_manage_any_organization(user=user)):
            raise forms.ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
            )


class ConcordAdminSite(AdminSite):
    site_header = "Concord administration"
    site_title = "Concord admin"
    index_title = "Your organization"
    login_form = ConcordAdminLoginForm

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        if not user.is_active:
            return False
        if user.is_superuser:
            return True
        membership = request_membership(request)
        return bool(membership and membership.can_manage)

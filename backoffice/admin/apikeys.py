"""API keys in the customer admin: an organization's admins create (the key is shown once), name and revoke them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from backoffice.base import TenantAdmin, _membership
from labeling.apikeys import api_key_create, api_key_revoke
from labeling.models import ApiKey, Role


@admin.register(ApiKey)
class ApiKeyAdmin(TenantAdmin):
    view_roles = (Role.ADMIN,)
    edit_roles = (Role.ADMIN,)
    list_display = ("name", "shown_as", "read_only", "created_by", "created_at", "last_used_at", "revoked_at")
    list_filter = ("read_only",)
    search_fields = ("name", "prefix")
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        if obj is None:
            return ("name", "read_only")
        return ("name", "shown_as", "read_only", "created_by", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        if obj is None:
            return ()
        # A key's reach is fixed when it is made: a read-only key never becomes a writing one.
        return ("shown_as", "read_only", "created_by", "created_at", "last_used_at", "revoked_at")

    @admin.display(description="Key")
    def shown_as(self, obj: ApiKey) -> str:
        return f"cnc_{obj.prefix}_…"

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        membership = _membership(request)
        organization = obj.organization if request.user.is_superuser and obj.organization_id else None
        if organization is None and membership is not None:
            organization = membership.organization
        row, key = api_key_create(
            organization=organization, name=obj.name, read_only=obj.read_only, created_by=request.user
        )
        obj.pk, obj.prefix, obj.key_hash, obj.organization = row.pk, row.prefix, row.key_hash, row.organization
        request._concord_new_api_key = key  # type: ignore[attr-defined]  # shown once, by response_add

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None) -> HttpResponse:
        key = getattr(request, "_concord_new_api_key", None)
        if key is None:
            return super().response_add(request, obj, post_url_continue)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "api_key": obj, "key": key}
        response = TemplateResponse(request, "admin/labeling/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True))
        for api_key in keys:
            api_key_revoke(api_key=api_key)
        self.message_user(request, f"Revoked {len(keys)} key(s); they stop working at once.", messages.SUCCESS)

"""Customer admin for routing: qualifications and who holds them, project/task requirements, leases (read-only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from backoffice.base import TenantAdmin, TenantInline
from labeling.models import Role
from routing.models import AnnotatorQualification, Lease, ProjectRequirement, Qualification, TaskRequirement
from routing.services.qualifications import qualification_kind_for


class QualificationForm(forms.ModelForm):
    class Meta:
        model = Qualification
        fields = ("code", "name")

    def clean_code(self) -> str:
        code = (self.cleaned_data.get("code") or "").strip().lower()
        self.instance.kind = qualification_kind_for(code)  # the prefix names the kind
        return code


@admin.register(Qualification)
class QualificationAdmin(TenantAdmin):
    form = QualificationForm
    list_display = ("code", "kind", "name", "created_at")
    list_filter = ("kind",)
    search_fields = ("code", "name")
    readonly_fields = ("kind",)


@admin.register(AnnotatorQualification)
class AnnotatorQualificationAdmin(TenantAdmin):
    organization_from = "qualification"
    list_display = ("annotator", "qualification", "level", "expires_at", "opted_in", "granted_at")
    list_filter = ("qualification", "opted_in")
    list_select_related = ("annotator", "qualification")
    search_fields = ("annotator__username", "qualification__code")
    fields = ("qualification", "annotator", "level", "expires_at", "opted_in")
    # Consent to sensitive content is the annotator's own choice: shown here, changed only by them.
    readonly_fields = ("opted_in",)


class ProjectRequirementInline(TenantInline):
    model = ProjectRequirement
    extra = 0
    verbose_name = "required qualification"


class TaskRequirementInline(TenantInline):
    model = TaskRequirement
    extra = 0
    verbose_name = "required qualification"


@admin.register(Lease)
class LeaseAdmin(TenantAdmin):
    """Leases, for the record. Never added or edited here; admins may delete them with their project."""

    edit_roles = ()
    list_display = ("task", "annotator", "state", "is_gold", "leased_at", "expires_at", "finished_at", "skip_reason")
    list_filter = ("project", "state", "is_gold")
    list_select_related = ("task", "annotator")
    search_fields = ("task__external_id", "annotator__username")
    show_full_result_count = False

    def has_delete_permission(self, request: HttpRequest, obj: Lease | None = None) -> bool:
        return self._role_allows(request, (Role.ADMIN,), obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Lease | None = None) -> Any:
        return [f.name for f in Lease._meta.fields]

"""Customer admin for labeling: projects (with labels), tasks, memberships; judgments read-only."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from labeling.admin_base import SuperuserOnlyMixin, TenantAdmin, TenantInline
from labeling.models import Annotation, Label, Membership, Organization, Project, ProjectKind, Role, Task
from labeling.selectors import organization_admin_count
from labeling.services import (
    membership_add,
    project_ensure_pairwise_labels,
    project_ranks_request_refresh,
    project_stats_request_refresh,
)
from labeling.tenancy import request_membership
from labeling.validation import json_value_problem, label_value_error, payload_errors
from routing.admin import ProjectRequirementInline, TaskRequirementInline
from routing.ranking import prediction_clean
from routing.services import task_progress_refresh, task_rank_for, task_requirement_flags_refresh

User = get_user_model()


# --- Django's own admins: superusers only ------------------------------------------------------------------
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class ConcordUserAdmin(SuperuserOnlyMixin, UserAdmin):
    pass


@admin.register(Group)
class ConcordGroupAdmin(SuperuserOnlyMixin, GroupAdmin):
    pass


@admin.register(Organization)
class OrganizationAdmin(SuperuserOnlyMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


# --- Projects and labels -----------------------------------------------------------------------------------
class LabelInlineFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if self.instance.kind != ProjectKind.CATEGORICAL:
            return
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        if len(kept) < 2:
            raise ValidationError("A categorical project needs at least two labels.")
        # Django checks conditional unique constraints against saved rows only, not between new rows.
        shortcuts = [f.cleaned_data["shortcut"] for f in kept if f.cleaned_data.get("shortcut")]
        duplicates = sorted({shortcut for shortcut in shortcuts if shortcuts.count(shortcut) > 1})
        if duplicates:
            raise ValidationError(f"Each label needs its own shortcut; used more than once: {', '.join(duplicates)}.")
        if self.instance.pk is None:
            return
        in_use = set(
            Annotation.objects.for_org(self.instance.organization_id)
            .filter(project=self.instance)
            .values_list("label", flat=True)
            .distinct()
        ) | set(
            Task.objects.for_org(self.instance.organization_id)
            .filter(project=self.instance, gold_label__isnull=False)
            .values_list("gold_label", flat=True)
            .distinct()
        )
        for form in self.forms:
            original = form.instance.value if form.instance.pk else None
            if original in in_use and (form.cleaned_data.get("DELETE") or form.cleaned_data.get("value") != original):
                raise ValidationError(
                    f"Label {original!r} is used by judgments or gold answers; it cannot be renamed or deleted."
                )


class LabelForm(forms.ModelForm):
    class Meta:
        model = Label
        fields = ("value", "title", "shortcut", "position")

    def clean_value(self) -> str:
        value = self.cleaned_data["value"]
        error = label_value_error(value)
        if error:
            raise ValidationError(error)
        return value


class LabelInline(TenantInline):
    model = Label
    form = LabelForm
    formset = LabelInlineFormSet
    extra = 0
    fields = ("value", "title", "shortcut", "position")


class PairwiseLabelInline(TenantInline):
    """Pairwise projects show their four fixed labels read-only."""

    model = Label
    extra = 0
    fields = ("value", "title", "shortcut")
    readonly_fields = fields
    can_delete = False
    max_num = 0


@admin.register(Project)
class ProjectAdmin(TenantAdmin):
    list_display = (
        "name",
        "kind",
        "sampling_strategy",
        "min_judgments",
        "max_judgments",
        "stats_tasks",
        "stats_complete",
        "stats_annotations",
        "created_at",
    )
    list_filter = ("kind", "sampling_strategy", "organization")
    list_select_related = ("stats",)
    search_fields = ("name",)
    actions = ("refresh_stats",)
    fieldsets = (
        (None, {"fields": ("organization", "name", "kind", "instructions", "strength_scale")}),
        ("Overlap and consensus", {"fields": ("min_judgments", "max_judgments", "consensus_threshold")}),
        ("Routing", {"fields": ("gold_rate", "lease_ttl_seconds", "sampling_strategy", "sensitive_daily_cap")}),
        ("Quality", {"fields": ("auto_pause", "pause_gold_threshold", "pause_min_gold", "too_fast_seconds")}),
    )

    def get_fieldsets(self, request: HttpRequest, obj: Project | None = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        first_name, first = fieldsets[0]
        fields = tuple(f for f in first["fields"] if f != "organization")
        return ((first_name, {**first, "fields": fields}), *fieldsets[1:])

    def get_readonly_fields(self, request: HttpRequest, obj: Project | None = None) -> Any:
        # The kind decides the payload shape of every task: it is fixed once the project exists. So is the
        # organization (a superuser's form shows it): the project's labels, tasks and judgments stay in theirs.
        return ("organization", "kind") if obj is not None else ()

    def get_inlines(self, request: HttpRequest, obj: Project | None) -> Any:
        if obj is not None and obj.kind == ProjectKind.PAIRWISE:
            return [PairwiseLabelInline, ProjectRequirementInline]
        return [LabelInline, ProjectRequirementInline]

    def save_model(self, request: HttpRequest, obj: Project, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "sampling_strategy" in form.changed_data:
            project_ranks_request_refresh(project=obj)
            self.message_user(request, "Tasks are being re-ranked for the new sampling strategy.", messages.INFO)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        project = form.instance
        if project.kind == ProjectKind.PAIRWISE:
            # Labels of a pairwise project are fixed; anything typed into the inline on "add" is ignored.
            form.save_m2m()
            project_ensure_pairwise_labels(project=project)
            for formset in formsets:
                # Nothing of the inline was saved; the admin's change message reads these.
                formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            return
        super().save_related(request, form, formsets, change)

    @admin.display(description="Tasks", ordering="stats__tasks")
    def stats_tasks(self, project: Project) -> int | None:
        return getattr(getattr(project, "stats", None), "tasks", None)

    @admin.display(description="Complete", ordering="stats__complete_tasks")
    def stats_complete(self, project: Project) -> int | None:
        return getattr(getattr(project, "stats", None), "complete_tasks", None)

    @admin.display(description="Judgments", ordering="stats__annotations")
    def stats_annotations(self, project: Project) -> int | None:
        return getattr(getattr(project, "stats", None), "annotations", None)

    @admin.action(description="Refresh statistics of the selected projects")
    def refresh_stats(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        project_ids = list(queryset.values_list("id", flat=True))
        project_stats_request_refresh(project_ids=project_ids)
        self.message_user(request, f"Statistics refresh queued for {len(project_ids)} project(s).", messages.INFO)


# --- Tasks -------------------------------------------------------------------------------------------------
class PrettyJSONField(forms.JSONField):
    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class TaskForm(forms.ModelForm):
    payload = PrettyJSONField(
        widget=forms.Textarea(attrs={"rows": 14, "cols": 100, "class": "vLargeTextField", "spellcheck": "false"}),
        help_text=(
            'Pairwise: {"prompt": "…", "response_a": "…", "response_b": "…", "model_a": "optional", '
            '"model_b": "optional"}. Categorical: {"text": "…"}.'
        ),
    )
    meta = PrettyJSONField(required=False, widget=forms.Textarea(attrs={"rows": 4, "cols": 100, "spellcheck": "false"}))
    predictions = PrettyJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 100, "spellcheck": "false"}),
        help_text="Model probabilities for uncertainty sampling. Pairwise: P(A better), e.g. 0.62. Categorical: "
        '{"label": probability, …} summing to 1.',
    )

    class Meta:
        model = Task
        fields = ("project", "external_id", "payload", "meta", "gold_label", "predictions", "status")

    def clean_meta(self) -> dict:
        meta = self.cleaned_data.get("meta")
        if meta in (None, ""):
            return {}
        if not isinstance(meta, dict):
            raise ValidationError("Meta must be a JSON object.")
        if (problem := json_value_problem(meta)) is not None:  # Python's json reads NaN, 10**100, "\u0000"
            raise ValidationError(f"Meta {problem}.")
        return meta

    def clean_gold_label(self) -> str | None:
        return self.cleaned_data.get("gold_label") or None

    def clean(self) -> dict:
        cleaned = super().clean()
        project = cleaned.get("project") or (self.instance.project if self.instance.project_id else None)
        if project is None:
            return cleaned
        payload = cleaned.get("payload")
        if "payload" in cleaned:
            errors = payload_errors(project.kind, payload)
            if errors:
                self.add_error("payload", [f"{field}: {message}" for field, message in errors.items()])
        gold = cleaned.get("gold_label")
        if gold is not None and not project.labels.filter(value=gold).exists():
            values = ", ".join(project.labels.values_list("value", flat=True))
            self.add_error("gold_label", f"{gold!r} is not one of this project's labels ({values}).")
        predictions = cleaned.get("predictions")
        if predictions not in (None, ""):
            labels = sorted(project.labels.values_list("value", flat=True))
            try:
                cleaned["predictions"] = prediction_clean(kind=project.kind, labels=labels, value=predictions)
            except ValidationError as error:
                self.add_error("predictions", error.messages)
        else:
            cleaned["predictions"] = None
        return cleaned


class GoldFilter(admin.SimpleListFilter):
    title = "gold"
    parameter_name = "gold"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return (("yes", "Gold"), ("no", "Not gold"))

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(gold_label__isnull=False)
        if self.value() == "no":
            return queryset.filter(gold_label__isnull=True)
        return queryset


@admin.register(Task)
class TaskAdmin(TenantAdmin):
    form = TaskForm
    organization_from = "project"
    list_display = ("external_id", "project", "status", "resolution", "judgment_count", "gold_label", "created_at")
    list_filter = ("project", "status", "resolution", GoldFilter)
    inlines = (TaskRequirementInline,)
    list_select_related = ("project",)
    search_fields = ("external_id",)
    autocomplete_fields = ("project",)
    list_per_page = 50
    show_full_result_count = False  # a COUNT(*) over a large project on every page is what makes admins slow

    def get_readonly_fields(self, request: HttpRequest, obj: Task | None = None) -> Any:
        # A task stays in its project: its judgments and gold answer are the project's.
        return ("project",) if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: Task, form: Any, change: bool) -> None:
        obj.rank = task_rank_for(project=obj.project, predictions=obj.predictions, shuffle=obj.shuffle)
        super().save_model(request, obj, form, change)
        project_stats_request_refresh(project_ids=[obj.project_id])

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        task_requirement_flags_refresh(task_ids=[form.instance.pk])


# --- Members -----------------------------------------------------------------------------------------------
class MembershipAddForm(forms.ModelForm):
    """Add a person by e-mail; a new account is created with the given initial password."""

    email = forms.EmailField()
    name = forms.CharField(required=False, max_length=300)
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Initial password, used only when this e-mail has no Concord account yet (required either way).",
    )
    organization: Organization | None = None  # set by MembershipAdmin.get_form

    class Meta:
        model = Membership
        fields = ("role",)

    def clean(self) -> dict:
        cleaned = super().clean()
        email = (cleaned.get("email") or "").strip().lower()
        if not email:
            return cleaned
        user = User.objects.filter(username__iexact=email).first() or User.objects.filter(email__iexact=email).first()
        if (
            user is not None
            and self.organization is not None
            and Membership.objects.filter(organization=self.organization, user=user).exists()
        ):
            self.add_error("email", "This person is already a member of your organization.")
            return cleaned
        # Accounts are global: the password is asked for and checked whether or not the e-mail has an account
        # somewhere, so the form's answer never tells an admin which addresses do (an existing account keeps its
        # own password).
        password = cleaned.get("password")
        if not password:
            self.add_error("password", "Required: give an initial password (used only if this e-mail is new).")
            return cleaned
        try:
            validate_password(password, User(username=email, email=email))
        except ValidationError as error:
            self.add_error("password", error)
        return cleaned


class MembershipChangeForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ("role", "paused_at", "pause_reason")

    def clean_role(self) -> str:
        role = self.cleaned_data["role"]
        if (
            self.instance.role == Role.ADMIN
            and role != Role.ADMIN
            and organization_admin_count(organization=self.instance.organization_id) <= 1
        ):
            raise ValidationError("This is the organization's only admin; make someone else admin first.")
        return role


@admin.register(Membership)
class MembershipAdmin(TenantAdmin):
    view_roles = (Role.ADMIN, Role.MANAGER)
    edit_roles = (Role.ADMIN,)
    list_display = ("user", "user_email", "user_name", "role", "created_at")
    list_filter = ("role", "organization")
    list_select_related = ("user", "organization")
    search_fields = ("user__username", "user__email", "user__first_name", "user__last_name")

    def get_form(self, request: HttpRequest, obj: Membership | None = None, **kwargs: Any) -> Any:
        if obj is not None:
            kwargs["form"] = MembershipChangeForm
            return super().get_form(request, obj, **kwargs)
        membership = request_membership(request)
        kwargs["form"] = type(
            "BoundMembershipAddForm",
            (MembershipAddForm,),
            {"organization": membership.organization if membership else None},
        )
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Membership | None = None) -> Any:
        if obj is None:
            fields = ["email", "name", "password", "role"]
            return (["organization"] if request.user.is_superuser else []) + fields
        return ["user", "role", "paused_at", "pause_reason"]

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> Any:
        return ("user",) if obj is not None else ()

    def get_exclude(self, request: HttpRequest, obj: Membership | None = None) -> Any:
        return [] if request.user.is_superuser and obj is None else ["organization"]

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        if request.user.is_superuser:
            organization = form.cleaned_data["organization"]
        else:
            membership = request_membership(request)
            assert membership is not None  # has_add_permission requires it
            organization = membership.organization
        created = membership_add(
            organization=organization,
            email=form.cleaned_data["email"],
            role=obj.role,
            password=form.cleaned_data.get("password") or None,
            name=form.cleaned_data.get("name") or "",
        )
        # Hand the created row back to the admin (for its log entry and redirect).
        obj.__dict__.update({k: v for k, v in created.__dict__.items() if k != "_state"})
        obj._state.adding = False

    def has_delete_permission(self, request: HttpRequest, obj: Membership | None = None) -> bool:
        if (
            obj is not None
            and obj.role == Role.ADMIN
            and organization_admin_count(organization=obj.organization_id) <= 1
        ):
            return False
        return super().has_delete_permission(request, obj)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Deleting several admins at once (the bulk action) must not remove an organization's last admin either.
        admins = Counter(m.organization_id for m in objs if m.role == Role.ADMIN)
        if any(organization_admin_count(organization=org) <= count for org, count in admins.items()):
            perms_needed = {*perms_needed, Membership._meta.verbose_name}
        return deleted, model_count, perms_needed, protected

    @admin.display(description="E-mail", ordering="user__email")
    def user_email(self, membership: Membership) -> str:
        return membership.user.email

    @admin.display(description="Name", ordering="user__last_name")
    def user_name(self, membership: Membership) -> str:
        return membership.user.get_full_name()


# --- Judgments: read-only ----------------------------------------------------------------------------------
@admin.register(Annotation)
class AnnotationAdmin(TenantAdmin):
    """Judgments are never added or edited here. Admins may delete them (a spam judgment, or with their project:
    deleting a project deletes its judgments, which needs this permission)."""

    edit_roles = ()

    def has_delete_permission(self, request: HttpRequest, obj: Annotation | None = None) -> bool:
        return self._role_allows(request, (Role.ADMIN,), obj)

    list_display = ("task", "project", "annotator", "label", "strength", "a_left", "seconds_on_task", "created_at")
    list_filter = ("project", "label", "annotator")
    list_select_related = ("task", "project", "annotator")
    search_fields = ("task__external_id", "annotator__username")
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Annotation | None = None) -> Any:
        return [f.name for f in Annotation._meta.fields]

    def delete_model(self, request: HttpRequest, obj: Annotation) -> None:
        self.delete_queryset(request, self.get_queryset(request).filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Annotation]) -> None:
        """Deleting judgments reopens the tasks they settled (their progress is recounted from rows)."""
        tasks = list(Task.objects.filter(pk__in=queryset.values("task_id")).select_related("project"))
        with transaction.atomic():
            super().delete_queryset(request, queryset)
            for task in tasks:
                task_progress_refresh(task=task, project=task.project)
        project_stats_request_refresh(project_ids=sorted({task.project_id for task in tasks}))


from labeling.api import admin as api_admin  # noqa: E402,F401  (registers ApiKeyAdmin)

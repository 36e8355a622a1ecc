"""Customer admin for labeling: projects (with their questions or labels), tasks, memberships and invitations; judgments
read-only."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.forms.fields import InvalidJSONInput
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from backoffice.admin.questions import FormLink, QuestionInline, QuestionInlineFormSet, project_has_judgments
from backoffice.admin.routing import ProjectRequirementInline, TaskRequirementInline
from backoffice.base import SuperuserOnlyMixin, TenantAdmin, TenantInline
from labeling.accounts import site_url
from labeling.invitations import (
    invitation_create,
    invitation_email_clean,
    invitation_errors,
    invitation_resend,
    invitation_revoke,
)
from labeling.models import (
    Invitation,
    InvitationStatus,
    Judgment,
    Label,
    Membership,
    Organization,
    Project,
    ProjectKind,
    Question,
    Role,
    Task,
)
from labeling.ranking import prediction_clean, task_rank_for
from labeling.selectors import organization_admin_count
from labeling.services import (
    project_ensure_pairwise_labels,
    project_questions_replace,
    project_ranks_request_refresh,
)
from labeling.tenancy import request_membership
from labeling.validation import MAX_JSON_DEPTH, json_value_problem, label_value_error, payload_errors
from quality.consensus import task_progress_refresh
from quality.services import project_stats_request_refresh
from routing.services import task_requirement_flags_refresh

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
    #: The questions of the same submission (``ProjectAdmin.get_formsets_with_inlines``): with questions, the
    #: primary question's answers are the labels.
    link: FormLink | None = None

    def questions_given(self) -> bool:
        return self.link is not None and self.link.questions is not None and self.link.questions.given()

    def clean(self) -> None:
        super().clean()
        if self.questions_given():
            if any(f.cleaned_data and not f.cleaned_data.get("DELETE") for f in self.forms):
                raise ValidationError("With questions, give the options in the primary question, not as labels.")
            return
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
            Judgment.objects.for_org(self.instance.organization_id)
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


class DerivedLabelInline(PairwiseLabelInline):
    """A project with questions shows the labels its primary question's answers make, read-only."""

    verbose_name_plural = "labels (the primary question's answers)"


class QuestionsRefused(Exception):
    """The service refused a form the admin had checked (a race with a judgment or a task): roll back, say so."""

    def __init__(self, error: ValidationError) -> None:
        super().__init__(error)
        self.error = error


def project_has_questions(project: Project) -> bool:
    if "_has_questions" not in project.__dict__:
        project.__dict__["_has_questions"] = (
            Question.objects.for_org(project.organization_id).filter(project=project).exists()
        )
    return project.__dict__["_has_questions"]


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
        "stats_judgments",
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

    def formfield_for_choice_field(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "kind":  # only on "add": the kind is read-only afterwards
            kwargs["choices"] = [("", "From the primary question"), *ProjectKind.choices]
            kwargs["required"] = False
            kwargs["help_text"] = (
                "Fixed once the project exists. With questions (below), the primary question decides it: leave it "
                "blank or pick the same. Ranking and rating projects are created with their questions."
            )
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def get_inlines(self, request: HttpRequest, obj: Project | None) -> Any:
        if obj is None:
            return [QuestionInline, LabelInline, ProjectRequirementInline]
        if project_has_questions(obj):
            return [QuestionInline, DerivedLabelInline, ProjectRequirementInline]
        if obj.kind == ProjectKind.PAIRWISE:
            return [PairwiseLabelInline, ProjectRequirementInline]
        return [LabelInline, ProjectRequirementInline]

    def get_inline_instances(self, request: HttpRequest, obj: Project | None = None) -> Any:
        instances = super().get_inline_instances(request, obj)
        for inline in instances:
            if isinstance(inline, QuestionInline) and project_has_judgments(obj):
                inline.verbose_name_plural = "questions (read-only: the project has judgments)"
        return instances

    def get_formsets_with_inlines(self, request: HttpRequest, obj: Project | None = None) -> Any:
        # The label rows of a submission check themselves against its questions: one link per request.
        link = FormLink()
        for formset, inline in super().get_formsets_with_inlines(request, obj):
            if issubclass(formset, QuestionInlineFormSet | LabelInlineFormSet):
                formset = type(formset.__name__, (formset,), {"link": link})
            yield formset, inline

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> Any:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except QuestionsRefused as refused:
            # The form was checked, but a judgment or task came in before the save (project_questions_replace checks
            # again under its lock): the admin's transaction is rolled back, nothing was saved.
            self.message_user(request, f"Nothing was saved: {'; '.join(refused.error.messages)}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request: HttpRequest, obj: Project, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "sampling_strategy" in form.changed_data:
            project_ranks_request_refresh(project=obj)
            self.message_user(request, "Tasks are being re-ranked for the new sampling strategy.", messages.INFO)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        project = form.instance
        form.save_m2m()
        if project.kind == ProjectKind.PAIRWISE:
            project_ensure_pairwise_labels(project=project)
        for formset in formsets:
            if isinstance(formset, QuestionInlineFormSet):
                # The whole form at once, with the labels its primary question makes (checked in formset.clean).
                if formset.questions is not None:
                    try:
                        project_questions_replace(project=project, questions=formset.questions)
                    except ValidationError as error:
                        raise QuestionsRefused(error) from error
            elif not (isinstance(formset, LabelInlineFormSet) and project.kind == ProjectKind.PAIRWISE):
                # Labels of a pairwise project are fixed; anything typed into the inline on "add" is ignored.
                self.save_formset(request, form, formset, change)
                continue
            # Nothing of this inline was saved row by row; the admin's change message reads these.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def construct_change_message(self, request: HttpRequest, form: Any, formsets: Any, add: bool = False) -> Any:
        message = super().construct_change_message(request, form, formsets, add)
        if any(isinstance(f, QuestionInlineFormSet) and f.questions is not None for f in formsets):
            message.append({"changed": {"fields": ["questions"]}})
        return message

    @admin.display(description="Tasks", ordering="stats__tasks")
    def stats_tasks(self, project: Project) -> int | None:
        return getattr(getattr(project, "stats", None), "tasks", None)

    @admin.display(description="Complete", ordering="stats__complete_tasks")
    def stats_complete(self, project: Project) -> int | None:
        return getattr(getattr(project, "stats", None), "complete_tasks", None)

    @admin.display(description="Judgments", ordering="stats__judgments")
    def stats_judgments(self, project: Project) -> int | None:
        return getattr(getattr(project, "stats", None), "judgments", None)

    @admin.action(description="Refresh statistics of the selected projects")
    def refresh_stats(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        project_ids = list(queryset.values_list("id", flat=True))
        project_stats_request_refresh(project_ids=project_ids)
        self.message_user(request, f"Statistics refresh queued for {len(project_ids)} project(s).", messages.INFO)


# --- Tasks -------------------------------------------------------------------------------------------------
class PrettyJSONField(forms.JSONField):
    # Python's json recurses once per level of nesting: a few thousand levels were a 500 (reading and re-showing).
    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except RecursionError:
            raise ValidationError(f"is nested more than {MAX_JSON_DEPTH} levels deep", code="invalid") from None

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)  # shown again as it was typed

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class TaskForm(forms.ModelForm):
    payload = PrettyJSONField(
        widget=forms.Textarea(attrs={"rows": 14, "cols": 100, "class": "vLargeTextField", "spellcheck": "false"}),
        help_text=(
            'Pairwise: {"prompt": "…", "response_a": "…", "response_b": "…", "model_a": "optional", '
            '"model_b": "optional"}. Categorical: {"text": "…"}. Ranking (2-9 responses) and rating (1-9): '
            '{"prompt": "…", "responses": [{"text": "…", "model": "optional"}, …]}. Instead of the prompt (or the '
            'text), a conversation: "messages": [{"role": "system", "user" or "assistant", "content": "…"}, …].'
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


# --- Members and invitations ------------------------------------------------------------------------------
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
    """Members: role and pause are edited here, and members removed. People join by accepting an invitation
    (:class:`InvitationAdmin`), never by being added."""

    view_roles = (Role.ADMIN, Role.MANAGER)
    edit_roles = (Role.ADMIN,)
    list_display = ("user", "user_email", "user_name", "role", "created_at")
    list_filter = ("role", "organization")
    list_select_related = ("user", "organization")
    search_fields = ("user__username", "user__email", "user__first_name", "user__last_name")

    form = MembershipChangeForm
    fields = ("user", "role", "paused_at", "pause_reason")
    readonly_fields = ("user",)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        # Nobody adds a person here, superusers included: joining takes the person's consent (an Invitation).
        return False

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


class InvitationStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return InvitationStatus.choices

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        open_ = Q(accepted_at__isnull=True, revoked_at__isnull=True)
        return {
            InvitationStatus.PENDING: queryset.filter(open_, expires_at__gt=now),
            InvitationStatus.EXPIRED: queryset.filter(open_, expires_at__lte=now),
            InvitationStatus.ACCEPTED: queryset.filter(accepted_at__isnull=False),
            InvitationStatus.REVOKED: queryset.filter(revoked_at__isnull=False),
        }.get(self.value(), queryset)  # type: ignore[call-overload]


class InvitationForm(forms.ModelForm):
    """Invite an address with a role. Nothing here depends on whether the address has an account anywhere."""

    email = forms.CharField(max_length=320, help_text="The person receives a link to join; it works once.")
    organization_id: int | None = None  # set by InvitationAdmin.get_form for a customer admin

    class Meta:
        model = Invitation
        fields = ("email", "role")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        organization = cleaned.get("organization") or self.organization_id
        if "email" not in cleaned or organization is None:
            return cleaned
        try:
            cleaned["email"] = invitation_email_clean(cleaned["email"])
        except ValidationError as error:
            self.add_error(None, error)
            return cleaned
        for field, message in invitation_errors(
            organization=organization, email=cleaned["email"], role=cleaned.get("role")
        ).items():
            self.add_error(field, message)
        return cleaned

    def validate_constraints(self) -> None:
        # invitation_errors (above) checks the one pending invitation per address, with the service's own words.
        pass


@admin.register(Invitation)
class InvitationAdmin(TenantAdmin):
    """An organization's invitations: invite (add), resend, revoke. The answer to an invitation is the same whether
    or not the address has an account anywhere; the link itself is only ever e-mailed."""

    view_roles = (Role.ADMIN, Role.MANAGER)
    edit_roles = (Role.ADMIN,)
    form = InvitationForm
    list_display = ("email", "role", "status", "invited_by", "created_at", "expires_at", "last_sent_at", "send_count")
    list_filter = (InvitationStatusFilter, "role", "organization")
    list_select_related = ("invited_by", "organization")
    search_fields = ("email",)
    actions = ("resend", "revoke")
    readonly_fields = (
        "email",
        "role",
        "status",
        "invited_by",
        "created_at",
        "expires_at",
        "last_sent_at",
        "send_count",
        "accepted_at",
        "accepted_by",
        "revoked_at",
    )

    def get_form(self, request: HttpRequest, obj: Invitation | None = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        membership = None if request.user.is_superuser else request_membership(request)
        attrs = {
            "organization_id": membership.organization_id if membership else None,
            # InvitationForm.clean checks what the model's constraints would, in the service's own words, once.
            "validate_constraints": InvitationForm.validate_constraints,
        }
        return type(form.__name__, (form,), attrs)

    def get_fields(self, request: HttpRequest, obj: Invitation | None = None) -> Any:
        if obj is None:
            return (["organization"] if request.user.is_superuser else []) + ["email", "role"]
        return self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Invitation | None = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def get_exclude(self, request: HttpRequest, obj: Invitation | None = None) -> Any:
        return [] if request.user.is_superuser and obj is None else ["organization"]

    def has_change_permission(self, request: HttpRequest, obj: Invitation | None = None) -> bool:
        return False  # resent or revoked (the actions), never edited

    def has_invite_permission(self, request: HttpRequest) -> bool:
        return self._role_allows(request, self.edit_roles, None)

    @admin.display(description="Status")
    def status(self, invitation: Invitation) -> str:
        return InvitationStatus(invitation.status_at(timezone.now())).label

    def save_model(self, request: HttpRequest, obj: Invitation, form: Any, change: bool) -> None:
        if request.user.is_superuser:
            organization = form.cleaned_data["organization"]
        else:
            membership = request_membership(request)
            assert membership is not None  # has_add_permission requires it
            organization = membership.organization
        created = invitation_create(
            organization=organization,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            invited_by=request.user,
            base_url=site_url(request),
        )
        # Hand the created row back to the admin (for its log entry).
        obj.__dict__.update({k: v for k, v in created.__dict__.items() if k != "_state"})
        obj._state.adding = False

    def response_add(self, request: HttpRequest, obj: Invitation, post_url_continue: str | None = None) -> Any:
        # The same answer for every address: a message naming what the admin typed, back to the list.
        self.message_user(
            request,
            f"Invitation sent to {obj.email}. The link works once, for {settings.INVITATION_MAX_AGE_DAYS} days.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:labeling_invitation_changelist"))

    @admin.action(
        description="Resend the selected invitations (a new link; older ones stop working)", permissions=["invite"]
    )
    def resend(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        sent, refused = 0, []
        for invitation in queryset:
            try:
                invitation_resend(invitation=invitation, base_url=site_url(request))
                sent += 1
            except ValidationError as error:
                refused.append(f"{invitation.email}: {' '.join(error.messages)}")
        if sent:
            self.message_user(request, f"Resent {sent} invitation(s).", messages.SUCCESS)
        for message in refused:
            self.message_user(request, f"Not resent: {message}", messages.WARNING)

    @admin.action(description="Revoke the selected invitations", permissions=["invite"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        revoked, refused = 0, []
        for invitation in queryset:
            try:
                invitation_revoke(invitation=invitation)
                revoked += 1
            except ValidationError as error:
                refused.append(f"{invitation.email}: {' '.join(error.messages)}")
        if revoked:
            self.message_user(request, f"Revoked {revoked} invitation(s); their links stop working.", messages.SUCCESS)
        for message in refused:
            self.message_user(request, f"Not revoked: {message}", messages.WARNING)


def pretty_json(value: Any) -> str:
    if value is None:
        return "-"
    return format_html('<pre class="json">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False))


# --- Judgments: read-only ----------------------------------------------------------------------------------
@admin.register(Judgment)
class JudgmentAdmin(TenantAdmin):
    """Judgments are never added or edited here. Admins may delete them (a spam judgment, or with their project:
    deleting a project deletes its judgments, which needs this permission)."""

    edit_roles = ()

    def has_delete_permission(self, request: HttpRequest, obj: Judgment | None = None) -> bool:
        return self._role_allows(request, (Role.ADMIN,), obj)

    list_display = ("task", "project", "annotator", "label", "strength", "a_left", "seconds_on_task", "created_at")
    list_filter = ("project", "label", "annotator")
    list_select_related = ("task", "project", "annotator")
    search_fields = ("task__external_id", "annotator__username")
    show_full_result_count = False
    #: JSON columns shown indented, in their place among the others.
    PRETTY = {"answers": "answers_json", "response_order": "response_order_json"}

    def get_fields(self, request: HttpRequest, obj: Judgment | None = None) -> Any:
        return [self.PRETTY.get(f.name, f.name) for f in Judgment._meta.fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Judgment | None = None) -> Any:
        return self.get_fields(request, obj)

    @admin.display(description="Answers")
    def answers_json(self, judgment: Judgment) -> str:
        return pretty_json(judgment.answers)

    @admin.display(description="Response order (as shown)")
    def response_order_json(self, judgment: Judgment) -> str:
        return pretty_json(judgment.response_order)

    def delete_model(self, request: HttpRequest, obj: Judgment) -> None:
        self.delete_queryset(request, self.get_queryset(request).filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Judgment]) -> None:
        """Deleting judgments reopens the tasks they settled (their progress is recounted from rows)."""
        tasks = list(Task.objects.filter(pk__in=queryset.values("task_id")).select_related("project"))
        with transaction.atomic():
            super().delete_queryset(request, queryset)
            for task in tasks:
                task_progress_refresh(task=task, project=task.project)
        project_stats_request_refresh(project_ids=sorted({task.project_id for task in tasks}))

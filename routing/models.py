"""Qualifications, requirements and leases: who may see which task, and who holds it right now.

Every row carries ``organization`` and is read through ``TenantQuerySet.for_org``. On PostgreSQL, composite
foreign keys (migration ``0002``) pin each row to its organization's project, task and qualification.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from labeling.models import Organization, Project, Task
from labeling.querysets import TenantManager


class QualificationKind(models.TextChoices):
    SKILL = "skill", "Domain skill"
    LANGUAGE = "language", "Language"
    SENSITIVITY = "sensitivity", "Sensitivity clearance"


# The code's prefix names its kind, so requirements read the same in imports, exports and the admin.
KIND_PREFIX = {QualificationKind.LANGUAGE: "lang:", QualificationKind.SENSITIVITY: "sensitive:"}


class Qualification(models.Model):
    """Something an annotator can hold: ``medical``, ``lang:de``, ``sensitive:self-harm``."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=QualificationKind.choices, default=QualificationKind.SKILL)
    code = models.CharField(
        max_length=64,
        help_text="Lower case; languages start with 'lang:' (lang:de), clearances with 'sensitive:' "
        "(sensitive:self-harm), skills with neither (medical).",
    )
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["organization", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "code"],
                name="qualification_code_unique_in_org",
                violation_error_message="Your organization already has a qualification with this code.",
            ),
            models.UniqueConstraint(fields=["organization", "id"], name="qualification_org_id_unique"),
            models.CheckConstraint(
                condition=Q(code__regex=r"^[a-z0-9][a-z0-9_\-]*(:[a-z0-9][a-z0-9_\-]*)?$"),
                name="qualification_code_format",
                violation_error_message="Codes are lower-case letters, digits, '_' or '-', with one optional "
                "'prefix:' (lang:de, sensitive:self-harm).",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind=QualificationKind.LANGUAGE, code__startswith="lang:")
                    | Q(kind=QualificationKind.SENSITIVITY, code__startswith="sensitive:")
                    | (
                        Q(kind=QualificationKind.SKILL)
                        & ~Q(code__startswith="lang:")
                        & ~Q(code__startswith="sensitive:")
                    )
                ),
                name="qualification_code_matches_kind",
                violation_error_message="Language codes start with 'lang:', sensitivity clearances with "
                "'sensitive:', and skills with neither.",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def is_sensitive(self) -> bool:
        return self.kind == QualificationKind.SENSITIVITY


class AnnotatorQualification(models.Model):
    """A qualification granted to one annotator, optionally with a level and an expiry.

    A sensitivity clearance is used only while the annotator has also opted in to that content.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    qualification = models.ForeignKey(Qualification, on_delete=models.CASCADE, related_name="grants")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="qualification_grants"
    )
    level = models.PositiveSmallIntegerField(default=1)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: does not expire.")
    opted_in = models.BooleanField(
        default=False, help_text="Sensitivity clearances: the annotator agreed to see this content."
    )
    granted_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["organization", "qualification", "annotator"]
        constraints = [
            models.UniqueConstraint(
                fields=["qualification", "annotator"],
                name="annotator_qualification_once",
                violation_error_message="This annotator already holds this qualification.",
            ),
        ]
        indexes = [models.Index(fields=["organization", "annotator"], name="annotatorqual_org_annotator")]

    def __str__(self) -> str:
        return f"{self.annotator} holds {self.qualification}"


class ProjectRequirement(models.Model):
    """Every task of the project needs this qualification (at ``min_level``)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="requirements")
    qualification = models.ForeignKey(Qualification, on_delete=models.CASCADE, related_name="+")
    min_level = models.PositiveSmallIntegerField(default=1)

    objects = TenantManager()

    class Meta:
        ordering = ["project", "qualification"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "qualification"],
                name="project_requirement_once",
                violation_error_message="The project already requires this qualification.",
            ),
        ]
        indexes = [models.Index(fields=["organization", "project"], name="projectreq_org_project")]

    def __str__(self) -> str:
        return f"{self.project} requires {self.qualification}"


class TaskRequirement(models.Model):
    """This task needs this qualification (at ``min_level``). Kept in step with ``Task.is_restricted``."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="requirements")
    qualification = models.ForeignKey(Qualification, on_delete=models.CASCADE, related_name="+")
    min_level = models.PositiveSmallIntegerField(default=1)

    objects = TenantManager()

    class Meta:
        ordering = ["task", "qualification"]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "qualification"],
                name="task_requirement_once",
                violation_error_message="The task already requires this qualification.",
            ),
        ]
        indexes = [models.Index(fields=["organization", "qualification"], name="taskreq_org_qualification")]

    def __str__(self) -> str:
        return f"{self.task} requires {self.qualification}"


class LeaseState(models.TextChoices):
    ACTIVE = "active", "Active"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"


class Lease(models.Model):
    """A lease: ``task`` is reserved for ``annotator`` until ``expires_at``.

    An active lease counts against the task's overlap only until it expires; the expiry job merely records the
    state afterwards. The order in which the two responses are shown (``a_left``) is drawn once, here, so a
    reload shows the same page and the judgment stores what the annotator saw.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="leases")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="leases")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="leases")
    state = models.CharField(max_length=16, choices=LeaseState.choices, default=LeaseState.ACTIVE)
    is_gold = models.BooleanField(default=False)
    is_sensitive = models.BooleanField(default=False)
    a_left = models.BooleanField(null=True, blank=True, help_text="Pairwise: response A is shown on the left.")
    response_order = models.JSONField(
        null=True,
        blank=True,
        help_text="Ranking and rating projects: a permutation of 0-8; the task's K responses show in this order "
        "(indexes below K).",
    )
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=500, blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "routing_assignment"  # named before the model was renamed
        ordering = ["project", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=LeaseState.values),
                name="assignment_state_valid",
                violation_error_message="State must be active, submitted, skipped or expired.",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("leased_at")),
                name="assignment_expires_after_lease",
                violation_error_message="A lease must expire after it starts.",
            ),
            # One task at a time per annotator and project: a second tab resumes the same lease.
            models.UniqueConstraint(
                fields=["project", "annotator"],
                condition=Q(state="active"),
                name="assignment_one_active_per_annotator",
                violation_error_message="This annotator already holds a task in this project.",
            ),
            # Never the same task twice to one annotator (an expired lease may be leased again).
            models.UniqueConstraint(
                fields=["task", "annotator"],
                condition=Q(state__in=["active", "submitted", "skipped"]),
                name="assignment_task_once_per_annotator",
                violation_error_message="This annotator already has this task.",
            ),
        ]
        indexes = [
            # Active leases of a task: counted against its overlap.
            models.Index(fields=["task", "expires_at"], condition=Q(state="active"), name="assignment_task_active"),
            models.Index(fields=["organization", "project", "annotator", "state"], name="assignment_org_annotator"),
            models.Index(fields=["expires_at"], condition=Q(state="active"), name="assignment_expiry"),
            models.Index(
                fields=["project", "annotator", "leased_at"],
                condition=Q(is_sensitive=True),
                name="assignment_sensitive_recent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_id} → {self.annotator} ({self.state})"

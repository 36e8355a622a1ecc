"""Organizations, members, projects, labels, tasks and judgments.

Every row below ``Organization`` carries ``organization`` (denormalised on child rows too) and is read through
``TenantQuerySet.for_org``; tenant indexes start with ``organization``. On PostgreSQL, composite foreign keys
(migration ``0002``) additionally make it impossible for a child row to point at another organization's parent,
for a judgment to point at a task of another project, or for a label to fall outside its project's labels.
"""

from __future__ import annotations

import random
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q

from labeling.querysets import TenantManager


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    MANAGER = "manager", "Manager"
    ANNOTATOR = "annotator", "Annotator"


class Membership(models.Model):
    """A user's role in one organization. A user may belong to several organizations."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    paused_at = models.DateTimeField(
        null=True, blank=True, help_text="While set, the router gives this person no tasks in this organization."
    )
    pause_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["organization", "user__username"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user"],
                name="membership_one_per_user_and_org",
                violation_error_message="This person is already a member of the organization.",
            ),
            models.CheckConstraint(
                condition=Q(role__in=Role.values),
                name="membership_role_valid",
                violation_error_message="Role must be admin, manager or annotator.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()}"

    @property
    def can_manage(self) -> bool:
        return self.role in (Role.ADMIN, Role.MANAGER)


class ProjectKind(models.TextChoices):
    PAIRWISE = "pairwise", "Pairwise preference"
    CATEGORICAL = "categorical", "Categorical"
    RANKING = "ranking", "Ranking of K responses"
    RATING = "rating", "Rating"


class SamplingStrategy(models.TextChoices):
    SEQUENTIAL = "sequential", "Sequential (import order)"
    RANDOM = "random", "Random"
    LEAST_CONFIDENCE = "least_confidence", "Least confidence"
    MARGIN = "margin", "Smallest margin"
    ENTROPY = "entropy", "Highest entropy"


class Project(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=ProjectKind.choices, default=ProjectKind.PAIRWISE)
    instructions = models.TextField(blank=True, help_text="Shown to annotators above every task (Markdown).")
    min_judgments = models.PositiveSmallIntegerField(default=3, help_text="Judgments every task needs at least.")
    max_judgments = models.PositiveSmallIntegerField(
        default=5, help_text="Judgments a task may get at most while consensus is not reached."
    )
    consensus_threshold = models.FloatField(
        default=0.7, help_text="Share of the leading label (0.5 to 1) at which a task counts as agreed."
    )
    gold_rate = models.FloatField(default=0.05, help_text="Share of each annotator's tasks that are gold (0 to 1).")
    lease_ttl_seconds = models.PositiveIntegerField(
        default=600, help_text="How long a task stays reserved for the annotator who opened it."
    )
    sampling_strategy = models.CharField(
        max_length=24, choices=SamplingStrategy.choices, default=SamplingStrategy.SEQUENTIAL
    )
    sensitive_daily_cap = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Most sensitive tasks one annotator is given in any 24 hours in this project (empty: no cap).",
    )
    auto_pause = models.BooleanField(
        default=True,
        help_text="Pause annotators flagged as random clickers or whose gold accuracy is surely below the threshold.",
    )
    pause_gold_threshold = models.FloatField(
        default=0.6,
        help_text="Pause when even the upper bound of an annotator's gold accuracy (Wilson 95%) is below this.",
    )
    pause_min_gold = models.PositiveSmallIntegerField(
        default=10, help_text="Gold judgments an annotator needs before gold accuracy can pause them."
    )
    too_fast_seconds = models.FloatField(
        default=3.0, help_text="Flag annotators whose median time per judgment is below this many seconds."
    )
    strength_scale = models.BooleanField(
        default=False,
        help_text="Pairwise: annotators also say how much better the preferred response is "
        "(slightly, clearly or much), stored with the judgment.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        ordering = ["organization", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                name="project_name_unique_in_org",
                violation_error_message="Your organization already has a project with this name.",
            ),
            # Target of the composite foreign keys that pin children to their project's organization.
            models.UniqueConstraint(fields=["organization", "id"], name="project_org_id_unique"),
            models.CheckConstraint(
                condition=Q(kind__in=ProjectKind.values),
                name="project_kind_valid",
                violation_error_message="Kind must be pairwise, categorical, ranking or rating.",
            ),
            models.CheckConstraint(
                condition=Q(sampling_strategy__in=SamplingStrategy.values),
                name="project_sampling_valid",
                violation_error_message="Unknown sampling strategy.",
            ),
            models.CheckConstraint(
                condition=Q(min_judgments__gte=1),
                name="project_min_judgments_positive",
                violation_error_message="Min judgments must be at least 1.",
            ),
            models.CheckConstraint(
                condition=Q(max_judgments__gte=models.F("min_judgments")),
                name="project_max_at_least_min",
                violation_error_message="Max judgments must be at least min judgments.",
            ),
            models.CheckConstraint(
                condition=Q(consensus_threshold__gte=0.5, consensus_threshold__lte=1),
                name="project_consensus_threshold_range",
                violation_error_message="Consensus threshold must be between 0.5 and 1.",
            ),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0, gold_rate__lte=1),
                name="project_gold_rate_range",
                violation_error_message="Gold rate must be between 0 and 1.",
            ),
            models.CheckConstraint(
                condition=Q(lease_ttl_seconds__gte=30),
                name="project_lease_ttl_min",
                violation_error_message="Lease TTL must be at least 30 seconds.",
            ),
            models.CheckConstraint(
                condition=Q(pause_gold_threshold__gte=0, pause_gold_threshold__lte=1),
                name="project_pause_threshold_range",
                violation_error_message="The gold accuracy threshold must be between 0 and 1.",
            ),
            models.CheckConstraint(
                condition=Q(too_fast_seconds__gte=0),
                name="project_too_fast_not_negative",
                violation_error_message="Too-fast seconds must not be negative.",
            ),
            models.CheckConstraint(
                condition=Q(strength_scale=False) | Q(kind=ProjectKind.PAIRWISE),
                name="project_strength_scale_pairwise",
                violation_error_message="Only pairwise projects have a strength scale.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


PAIRWISE_LABELS: tuple[tuple[str, str, str], ...] = (
    # (value, title, keyboard shortcut); the page maps "Response 1/2" back to A/B by the recorded order.
    ("a", "A is better", "1"),
    ("b", "B is better", "2"),
    ("tie", "Tie", "3"),
    ("both_bad", "Both bad", "4"),
)
DECISIVE_LABELS = ("a", "b")  # pairwise judgments that prefer one response


class QuestionKind(models.TextChoices):
    PAIRWISE = "pairwise", "Pairwise preference"
    CHOICE = "choice", "One choice"
    MULTI_CHOICE = "multi_choice", "Any choices"
    RATING = "rating", "Rating"
    RANKING = "ranking", "Ranking of the responses"
    TEXT = "text", "Free text"
    REWRITE = "rewrite", "Rewrite a response"


class Question(models.Model):
    """One question of a project's form (``labeling.questions`` validates the form and the answers)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="questions")
    key = models.CharField(max_length=40, help_text="Identifier: the answer's key in judgments and exports.")
    kind = models.CharField(max_length=16, choices=QuestionKind.choices)
    title = models.CharField(max_length=200)
    help = models.TextField(blank=True, max_length=2000)
    required = models.BooleanField(default=True)
    primary = models.BooleanField(
        default=False, help_text="Its answer drives overlap, consensus, gold and quality (exactly one per project)."
    )
    position = models.PositiveSmallIntegerField(default=0)
    options = models.JSONField(default=list, blank=True, help_text="choice, multi_choice: [{value, title, shortcut}]")
    min_value = models.SmallIntegerField(null=True, blank=True, help_text="rating: the lowest rating")
    max_value = models.SmallIntegerField(null=True, blank=True, help_text="rating: the highest rating")
    anchors = models.JSONField(default=dict, blank=True, help_text='rating: texts for ratings, {"1": "Useless"}')
    per_response = models.BooleanField(default=False, help_text="rating: one rating per response")
    allow_ties = models.BooleanField(default=False, help_text="ranking: responses may share a place")
    min_length = models.PositiveIntegerField(default=0, help_text="text, rewrite: fewest characters")
    max_length = models.PositiveIntegerField(default=20_000, help_text="text, rewrite: most characters")

    objects = TenantManager()

    class Meta:
        ordering = ["project", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "key"],
                name="question_key_unique_in_project",
                violation_error_message="This project already has a question with this key.",
            ),
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(primary=True),
                name="question_one_primary",
                violation_error_message="A project has exactly one primary question.",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=QuestionKind.values),
                name="question_kind_valid",
                violation_error_message=("Unknown question kind."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.kind})"


class Label(models.Model):
    """One of a project's label choices. Pairwise projects have the fixed four of ``PAIRWISE_LABELS``."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labels")
    value = models.CharField(max_length=64, help_text="Stable identifier stored with judgments and exports.")
    title = models.CharField(max_length=100, help_text="What annotators see.")
    shortcut = models.CharField(max_length=1, blank=True, help_text="Keyboard key (one character).")
    position = models.PositiveSmallIntegerField(default=0)

    objects = TenantManager()

    class Meta:
        ordering = ["project", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "value"],
                name="label_value_unique_in_project",
                violation_error_message="This project already has a label with this value.",
            ),
            models.UniqueConstraint(
                fields=["project", "shortcut"],
                condition=~Q(shortcut=""),
                name="label_shortcut_unique_in_project",
                violation_error_message="Another label of this project uses this shortcut.",
            ),
            models.CheckConstraint(
                condition=Q(value__regex=r"^[a-z0-9][a-z0-9_\-]{0,63}$"),
                name="label_value_format",
                violation_error_message="Label values are 1-64 lower-case letters, digits, '_' or '-'.",
            ),
        ]
        indexes = [models.Index(fields=["organization", "project"], name="label_org_project")]

    def __str__(self) -> str:
        return f"{self.title} ({self.value})"


class TaskStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETE = "complete", "Complete"


class TaskResolution(models.TextChoices):
    NONE = "", "—"
    CONSENSUS = "consensus", "Consensus"
    NO_CONSENSUS = "no_consensus", "No consensus"


def shuffle_key() -> float:
    """A task's random sampling key (a named function so migrations can reference it)."""
    return random.random()


# Rank of a task without a prediction under an uncertainty strategy: served after every predicted task.
UNRANKED = 1e9


class Task(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    external_id = models.CharField(max_length=255, help_text="Your id for this item; unique in the project.")
    payload = models.JSONField(help_text="What annotators see; its fields depend on the project kind.")
    meta = models.JSONField(default=dict, blank=True, help_text="Anything else to keep with the task.")
    gold_label = models.CharField(
        max_length=64, null=True, blank=True, help_text="The known answer, for gold (calibration) tasks."
    )
    predictions = models.JSONField(
        null=True, blank=True, help_text="Model probabilities per label, used by uncertainty sampling."
    )
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    # Routing state, written only by routing's services under this row's lock (see routing/services.py).
    judgment_count = models.PositiveIntegerField(default=0, help_text="Judgments so far (recounted from rows).")
    extra_judgments = models.PositiveSmallIntegerField(
        default=0, help_text="Judgments asked for beyond the project's minimum because annotators disagreed."
    )
    resolution = models.CharField(max_length=16, choices=TaskResolution.choices, blank=True, default="")
    consensus_label = models.CharField(max_length=64, null=True, blank=True)
    is_started = models.BooleanField(default=False, help_text="Leased at least once: finished before fresh tasks.")
    is_restricted = models.BooleanField(default=False, help_text="Has qualification requirements.")
    is_sensitive = models.BooleanField(default=False, help_text="Requires a sensitivity clearance.")
    rank = models.FloatField(default=0, help_text="Sampling order within the project: lowest first.")
    shuffle = models.FloatField(default=shuffle_key, help_text="Random key for random sampling and gold picks.")
    completed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the task last became complete (exports pull what completed since)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        ordering = ["project", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"],
                name="task_external_id_unique_in_project",
                violation_error_message="This project already has a task with this external id.",
            ),
            models.UniqueConstraint(fields=["organization", "id"], name="task_org_id_unique"),
            # What a judgment's or a lease's (organization, project, task) key points at: one check per row proves
            # the task, its project and its organization at once.
            models.UniqueConstraint(fields=["project", "id", "organization"], name="task_project_id_org_unique"),
            models.CheckConstraint(
                condition=Q(status__in=TaskStatus.values),
                name="task_status_valid",
                violation_error_message="Status must be open or complete.",
            ),
            models.CheckConstraint(
                condition=~Q(external_id=""),
                name="task_external_id_not_blank",
                violation_error_message="External id must not be empty.",
            ),
            models.CheckConstraint(
                condition=~Q(gold_label=""),
                name="task_gold_label_not_blank",
                violation_error_message="Gold label must be a label value or empty.",
            ),
            models.CheckConstraint(
                condition=Q(resolution__in=TaskResolution.values),
                name="task_resolution_valid",
                violation_error_message="Resolution must be empty, consensus or no_consensus.",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "project", "status", "id"], name="task_org_project_status"),
            # The router's pick: open normal tasks, started ones first, then by sampling rank.
            models.Index(
                fields=["organization", "project", "-is_started", "rank", "id"],
                condition=Q(status="open", gold_label__isnull=True),
                name="task_route_pick",
            ),
            # Gold picks start at a random point of the shuffle order.
            models.Index(
                fields=["organization", "project", "shuffle"],
                condition=Q(status="open", gold_label__isnull=False),
                name="task_route_gold",
            ),
            # Exports walk a project's completed tasks in completion order (and resume from a cursor).
            models.Index(
                fields=["organization", "project", "completed_at", "id"],
                condition=Q(completed_at__isnull=False),
                name="task_export_order",
            ),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def is_gold(self) -> bool:
        return self.gold_label is not None


class Strength(models.IntegerChoices):
    """How much better the preferred response is, on projects with a strength scale (decisive judgments only)."""

    SLIGHTLY = 1, "Slightly better"
    CLEARLY = 2, "Clearly better"
    MUCH = 3, "Much better"


class Judgment(models.Model):
    """One annotator's judgment of one task."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judgments")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="judgments")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judgments")
    label = models.CharField(max_length=64)
    a_left = models.BooleanField(
        null=True, blank=True, help_text="Pairwise: response A was shown on the left. Empty for categorical."
    )
    strength = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        choices=Strength.choices,
        help_text="Pairwise with a strength scale: how much better the chosen response is. Empty otherwise.",
    )
    answers = models.JSONField(
        null=True, blank=True, help_text="Projects with questions: {question key: answer}. Empty otherwise."
    )
    response_order = models.JSONField(
        null=True, blank=True, help_text="Ranking and rating projects: the response indexes in the order shown."
    )
    seconds_on_task = models.FloatField(default=0, help_text="Server-side: from the lease to the submit.")
    active_seconds = models.FloatField(
        null=True, blank=True, help_text="Measured by the page: time it was visible and focused."
    )
    client_id = models.CharField(
        max_length=64, help_text="The submitting page's id: a retried submit returns the first judgment."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        db_table = "labeling_annotation"  # named before the model was renamed
        ordering = ["project", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "annotator"],
                name="annotation_one_per_task_and_annotator",
                violation_error_message="This annotator has already judged this task.",
            ),
            models.UniqueConstraint(
                fields=["organization", "annotator", "client_id"], name="annotation_client_id_unique"
            ),
            models.CheckConstraint(
                condition=~Q(client_id=""),
                name="annotation_client_id_not_blank",
                violation_error_message="Client id must not be empty.",
            ),
            models.CheckConstraint(
                condition=Q(seconds_on_task__gte=0),
                name="annotation_seconds_not_negative",
                violation_error_message="Time on task must not be negative.",
            ),
            models.CheckConstraint(
                condition=Q(strength__isnull=True) | (Q(strength__in=Strength.values) & Q(label__in=DECISIVE_LABELS)),
                name="annotation_strength_decisive",
                violation_error_message="Strength is 1, 2 or 3, and only on a judgment that prefers A or B.",
            ),
            models.CheckConstraint(
                condition=Q(active_seconds__isnull=True) | Q(active_seconds__gte=0),
                name="annotation_active_seconds_not_negative",
                violation_error_message="Active time must not be negative.",
            ),
        ]
        # (organization, annotator) lookups use the unique key (organization, annotator, client_id): an index of its
        # own cost an entry per judgment written.
        indexes = [models.Index(fields=["organization", "project", "created_at"], name="annotation_org_project_time")]

    def __str__(self) -> str:
        return f"{self.annotator} → {self.label} on {self.task_id}"


class ProjectStats(models.Model):
    """Counts for a project, recomputed from rows by a job (never incremented, so they cannot drift)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, primary_key=True, related_name="stats")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    tasks = models.PositiveIntegerField(default=0)
    open_tasks = models.PositiveIntegerField(default=0)
    complete_tasks = models.PositiveIntegerField(default=0)
    gold_tasks = models.PositiveIntegerField(default=0)
    judgments = models.PositiveIntegerField(default=0, db_column="annotations")
    annotators = models.PositiveIntegerField(default=0)
    refreshed_at = models.DateTimeField()

    objects = TenantManager()

    class Meta:
        verbose_name_plural = "project stats"
        indexes = [models.Index(fields=["organization", "project"], name="projectstats_org_project")]

    def __str__(self) -> str:
        return f"Stats of {self.project_id}"


class ApiKey(models.Model):
    """An organization's key for the REST API. Only a SHA-256 hash of the key is stored; ``prefix`` names it.

    A key is ``cnc_<prefix>_<secret>`` (the secret is 256 random bits), shown once when it is created. It acts for
    its organization with an admin's reach over projects, tasks and data (never members or keys), or read-only.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, help_text="What the key is for, e.g. the pipeline that uses it.")
    prefix = models.CharField(max_length=16, unique=True, editable=False, help_text="Shown to tell keys apart.")
    key_hash = models.CharField(max_length=64, editable=False)
    read_only = models.BooleanField(default=False, help_text="Can read and export, never write.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, editable=False, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = TenantManager()

    class Meta:
        verbose_name = "API key"
        ordering = ["organization", "-created_at"]
        indexes = [models.Index(fields=["organization", "created_at"], name="apikey_org_created")]

    def __str__(self) -> str:
        return f"{self.name} (cnc_{self.prefix}_…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """A large import, run by a Celery worker from the file the API received: its progress and final report."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    kind = models.CharField(max_length=16, help_text="tasks, annotations or predictions")
    options = models.JSONField(default=dict, help_text="format, mode, on_error, create_annotators")
    path = models.CharField(max_length=500, help_text="The received file, under IMPORT_DIR (deleted when done).")
    size = models.BigIntegerField(default=0)
    status = models.CharField(max_length=8, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    bytes_read = models.BigIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    report = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        indexes = [models.Index(fields=["organization", "project", "created_at"], name="importjob_org_project")]

    def __str__(self) -> str:
        return f"{self.kind} import {self.pk}: {self.status}"


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class Invitation(models.Model):
    """An organization's invitation of an e-mail address, with a role. The only way into an organization: the
    person joins by accepting it (``labeling.invitations``).

    The e-mailed link is a signed token carrying the id and ``nonce``; resending rotates the nonce (older links die)
    and renews ``expires_at``. ``email`` is normalised (NFKC, casefolded). At most one invitation per organization
    and address is pending (neither accepted nor revoked; an expired one counts until it is renewed or revoked).
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.CharField(max_length=254, help_text="Normalised: NFKC, casefolded.")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when an API key invited.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    nonce = models.CharField(max_length=32, editable=False)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    send_count = models.PositiveIntegerField(default=0)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        ordering = ["organization", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_pending_per_email",
                violation_error_message="This address already has a pending invitation: resend or revoke it.",
            ),
            models.CheckConstraint(
                condition=Q(role__in=Role.values),
                name="invitation_role_valid",
                violation_error_message="Role must be admin, manager or annotator.",
            ),
            models.CheckConstraint(
                condition=~Q(email=""), name="invitation_email_not_blank", violation_error_message="E-mail is required."
            ),
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True) | Q(revoked_at__isnull=True),
                name="invitation_accepted_or_revoked",
                violation_error_message="An invitation is accepted or revoked, not both.",
            ),
        ]
        indexes = [models.Index(fields=["organization", "created_at"], name="invitation_org_created")]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_role_display()})"

    def status_at(self, now: datetime) -> str:
        if self.accepted_at is not None:
            return InvitationStatus.ACCEPTED
        if self.revoked_at is not None:
            return InvitationStatus.REVOKED
        if self.expires_at <= now:
            return InvitationStatus.EXPIRED
        return InvitationStatus.PENDING

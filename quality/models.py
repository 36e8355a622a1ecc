"""Stored quality results. Every row is recomputed from judgments by ``quality.services.project_quality_recompute``
(never incremented), so a second or concurrent run stores the same values.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from labeling.models import Organization, Project, Task
from labeling.querysets import TenantManager


class ConsensusMethod(models.TextChoices):
    GOLD = "gold", "Gold answer"
    DAWID_SKENE = "dawid_skene", "Dawid-Skene posterior"


class TaskConsensus(models.Model):
    """A task's aggregated label: Dawid-Skene's most probable class (gold tasks: their known answer)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    task = models.OneToOneField(Task, on_delete=models.CASCADE, related_name="quality_consensus")
    label = models.CharField(max_length=64)
    confidence = models.FloatField(help_text="Posterior probability of the label (1 for gold).")
    posterior = models.JSONField(default=dict, help_text="Posterior probability of every label.")
    agreement = models.FloatField(
        null=True, blank=True, help_text="Share of agreeing pairs of judgments (empty with fewer than 2)."
    )
    n_judgments = models.PositiveIntegerField()
    method = models.CharField(max_length=16, choices=ConsensusMethod.choices)
    computed_at = models.DateTimeField()

    objects = TenantManager()

    class Meta:
        verbose_name_plural = "task consensus"
        indexes = [models.Index(fields=["organization", "project", "task"], name="consensus_org_project_task")]
        constraints = [
            models.CheckConstraint(condition=Q(confidence__gte=0, confidence__lte=1), name="consensus_confidence"),
        ]

    def __str__(self) -> str:
        return f"{self.task_id}: {self.label} ({self.confidence:.2f})"


class Flag(models.TextChoices):
    """The quality flags an annotator can raise in a project: each is a boolean field of ``AnnotatorScore`` of the
    same name, the label is its title on the dashboard. Every list of flags (API, admin, dashboard, the recompute)
    is derived from this one."""

    RANDOM_CLICKER = "random_clicker", "Random clicking"
    POSITION_BIASED = "position_biased", "Position bias"
    VERBOSITY_BIASED = "verbosity_biased", "Verbosity bias"
    TOO_FAST = "too_fast", "Too fast"
    LOW_GOLD_ACCURACY = "low_gold_accuracy", "Low gold accuracy"
    STRAIGHT_LINING = "straight_lining", "Straight-lining"


class AnnotatorScore(models.Model):
    """One annotator's quality in one project. Empty figures had too little data to be computed."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotator_scores")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    n_judgments = models.PositiveIntegerField(default=0)
    median_seconds = models.FloatField(null=True, blank=True)
    # Gold
    gold_n = models.PositiveIntegerField(default=0)
    gold_correct = models.PositiveIntegerField(default=0)
    gold_accuracy = models.FloatField(null=True, blank=True)
    gold_low = models.FloatField(null=True, blank=True, help_text="Wilson 95% interval, lower bound.")
    gold_high = models.FloatField(null=True, blank=True, help_text="Wilson 95% interval, upper bound.")
    # Agreement
    agreement_n = models.PositiveIntegerField(default=0)
    agreement = models.FloatField(
        null=True, blank=True, help_text="Agreement with the majority of the task's other judgments."
    )
    chance_agreement = models.FloatField(null=True, blank=True)
    random_p = models.FloatField(
        null=True, blank=True, help_text="Evidence of random clicking (BH-adjusted; small = agreement near chance)."
    )
    kappa_mean = models.FloatField(null=True, blank=True, help_text="Mean Cohen's kappa against peers.")
    peer_kappas = models.JSONField(
        default=dict, blank=True, help_text="Cohen's kappa against each peer with at least 20 shared tasks."
    )
    skill = models.FloatField(null=True, blank=True, help_text="Dawid-Skene expected accuracy.")
    confusion = models.JSONField(
        default=list, blank=True, help_text="Dawid-Skene confusion matrix (rows: true label, columns: given label)."
    )
    # Bias (pairwise)
    position_n = models.PositiveIntegerField(default=0)
    position_left_rate = models.FloatField(null=True, blank=True)
    position_q = models.FloatField(null=True, blank=True, help_text="BH-adjusted exact binomial p-value vs 0.5.")
    verbosity_n = models.PositiveIntegerField(default=0)
    verbosity_rate = models.FloatField(null=True, blank=True, help_text="Share of wins given to the longer response.")
    verbosity_baseline = models.FloatField(null=True, blank=True, help_text="The consensus's share on the same tasks.")
    verbosity_q = models.FloatField(null=True, blank=True, help_text="BH-adjusted exact McNemar p-value.")
    self_consistency = models.FloatField(null=True, blank=True)
    self_consistency_pairs = models.PositiveIntegerField(default=0)
    # Flags (one per ``Flag``, named by its value)
    random_clicker = models.BooleanField(default=False)
    position_biased = models.BooleanField(default=False)
    verbosity_biased = models.BooleanField(default=False)
    too_fast = models.BooleanField(default=False)
    low_gold_accuracy = models.BooleanField(default=False)
    straight_lining = models.BooleanField(
        default=False, help_text="Half or more of 10+ judgments gave every response and aspect the same rating."
    )
    straight_lining_share = models.FloatField(null=True, blank=True)
    form_scores = models.JSONField(
        default=dict,
        blank=True,
        help_text="Per question: rating leniency (offset, low, high, n) or ranking Kendall tau against consensus.",
    )
    # Pause in this project (routing gives no task while paused_at is set)
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=300, blank=True)
    unpaused_at = models.DateTimeField(
        null=True, blank=True, help_text="A manager lifted the pause; judgments before it no longer count for one."
    )
    unpaused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    evidence_after_id = models.BigIntegerField(
        default=0, help_text="Only judgments with a larger id count towards a pause (set when a manager un-pauses)."
    )
    computed_at = models.DateTimeField()

    objects = TenantManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "annotator"], name="annotatorscore_one_per_project"),
        ]
        indexes = [models.Index(fields=["organization", "project"], name="annotatorscore_org_project")]

    def __str__(self) -> str:
        return f"{self.annotator} in {self.project_id}"

    @property
    def flags(self) -> list[str]:
        return [flag.value for flag in Flag if getattr(self, flag.value)]

    @property
    def paused(self) -> bool:
        return self.paused_at is not None


class ProjectQuality(models.Model):
    """A snapshot of a project's quality. One row per state of its judgments (a rerun updates, never duplicates)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="quality_snapshots")
    n_judgments = models.PositiveIntegerField()
    last_annotation_id = models.BigIntegerField(help_text="The newest judgment counted (with n: the data version).")
    n_tasks = models.PositiveIntegerField()
    n_complete = models.PositiveIntegerField()
    n_annotators = models.PositiveIntegerField()
    completion = models.FloatField(null=True, blank=True)
    fleiss_kappa = models.FloatField(null=True, blank=True)
    fleiss_items = models.PositiveIntegerField(default=0, help_text="Tasks with the most common number of judgments.")
    krippendorff_alpha = models.FloatField(null=True, blank=True)
    percent_agreement = models.FloatField(null=True, blank=True)
    label_counts = models.JSONField(default=dict)
    confusion = models.JSONField(
        default=list, help_text="Judgments by consensus label (rows) and given label (columns), in label order."
    )
    priors = models.JSONField(default=dict, help_text="Dawid-Skene class priors.")
    questions = models.JSONField(
        default=dict, blank=True, help_text="Per question of the form: its agreement (alpha, Kendall's W) and counts."
    )
    seconds = models.FloatField(default=0, help_text="How long the recompute took.")
    computed_at = models.DateTimeField()

    objects = TenantManager()

    class Meta:
        verbose_name = "project quality snapshot"
        ordering = ["project", "computed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "n_judgments", "last_annotation_id"], name="projectquality_one_per_version"
            ),
        ]
        indexes = [models.Index(fields=["organization", "project", "computed_at"], name="projectquality_org_time")]

    def __str__(self) -> str:
        return f"Quality of {self.project_id} at {self.computed_at:%Y-%m-%d %H:%M}"


class ModelRanking(models.Model):
    """Bradley-Terry strength of a model that wrote responses, from its battles (Chatbot-Arena style)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_rankings")
    model_name = models.CharField(max_length=200)
    rank = models.PositiveIntegerField()
    theta = models.FloatField(help_text="Log-strength, centred to mean 0 over the project's models.")
    low = models.FloatField(help_text="Bootstrap 95% interval, lower bound.")
    high = models.FloatField(help_text="Bootstrap 95% interval, upper bound.")
    battles = models.PositiveIntegerField()
    wins = models.PositiveIntegerField()
    losses = models.PositiveIntegerField()
    ties = models.PositiveIntegerField()
    regularised = models.BooleanField(
        default=False, help_text="The battles alone had no finite estimate; a small prior was added."
    )
    computed_at = models.DateTimeField()

    objects = TenantManager()

    class Meta:
        ordering = ["project", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["project", "model_name"], name="modelranking_one_per_model"),
        ]
        indexes = [models.Index(fields=["organization", "project"], name="modelranking_org_project")]

    def __str__(self) -> str:
        return f"{self.rank}. {self.model_name}"


class RecomputeStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class QualityJob(models.Model):
    """The state of a project's quality recompute, for progress bars and dashboards."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, primary_key=True, related_name="quality_job")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=RecomputeStatus.choices, default=RecomputeStatus.QUEUED)
    step = models.CharField(max_length=100, blank=True)
    progress = models.FloatField(default=0)
    runs = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    objects = TenantManager()

    def __str__(self) -> str:
        return f"Quality job of {self.project_id}: {self.status}"

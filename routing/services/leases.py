"""Leases: hand out the next task, take judgments, skip, and expire.

Correctness under concurrency rests on one rule: **every change to a task's leases or judgments happens while
holding that task's row lock.** ``next_task`` takes the lock with ``SELECT … FOR UPDATE SKIP LOCKED`` (on
PostgreSQL; SQLite serialises writers with ``BEGIN IMMEDIATE``), then recounts the task's judgments and live
leases in a fresh statement before leasing it, so no number of concurrent callers can exceed a task's overlap.
A lease counts only while ``expires_at`` is in the future, so an abandoned lease frees its slot the moment it
expires; ``leases_expire`` only records the state afterwards. Calls of one annotator are serialised on their
membership row, and partial unique indexes make a second active lease or a second lease of the same task for one
annotator impossible even so.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from labeling.models import (
    Annotation,
    Membership,
    Project,
    ProjectKind,
    Task,
    TaskResolution,
    TaskStatus,
)
from labeling.services import annotation_by_client_id, annotation_insert, annotation_validate
from routing.models import Assignment, AssignmentState, ProjectRequirement, QualificationKind
from routing.services.qualifications import held_qualifications, requirements_met, task_requirements_unmet

ACTIVE = AssignmentState.ACTIVE
# Candidates tried per call when a concurrent lease filled one between our snapshot and our lock.
PICK_ATTEMPTS = 25
SENSITIVE_WINDOW = timedelta(hours=24)

# Gold draws and the shown order must be unpredictable to annotators; tests swap in a seeded ``random.Random``.
_rng: random.Random = random.SystemRandom()


class LeaseError(ValidationError):
    """A submit or skip that the lease does not allow; nothing was written."""


class LeaseExpired(LeaseError):
    """The lease ran out before the submit: the page offers to lease again."""


def next_task(*, annotator: Any, project: Project) -> Assignment | None:
    """The annotator's active lease in ``project``, else a new lease on the best eligible task, else ``None``.

    Eligible: open, every requirement held (unexpired; clearances opted in), not judged, skipped or leased by
    this annotator before, and judgments + live leases below what the task needs now. Started tasks come first,
    then the project's sampling rank. A gold task is served instead with probability ``gold_rate``.
    """
    now = timezone.now()
    organization_id = project.organization_id
    with transaction.atomic():
        membership = (
            Membership.objects.for_org(organization_id)
            .select_for_update(of=("self",), no_key=True)
            .filter(user=annotator)
            .order_by("pk")
            .first()
        )
        if membership is None:
            raise ValidationError({"annotator": "is not a member of this project's organization"})
        current = (
            Assignment.objects.for_org(organization_id)
            .select_for_update(of=("self",), no_key=True)
            .select_related("task")
            .filter(project=project, annotator=annotator, state=ACTIVE)
            .order_by("pk")
            .first()
        )
        if current is not None:
            if current.expires_at > now:
                return current
            _mark_expired(current, now)
        if membership.paused_at is not None:
            return None
        held = held_qualifications(organization_id=organization_id, annotator=annotator, now=now)
        project_requirements = list(
            ProjectRequirement.objects.for_org(organization_id)
            .filter(project=project)
            .values_list("qualification_id", "min_level", "qualification__kind")
        )
        if not requirements_met([(q, level) for q, level, _ in project_requirements], held):
            return None
        project_sensitive = any(kind == QualificationKind.SENSITIVITY for _, _, kind in project_requirements)
        sensitive_allowed = _sensitive_allowed(project, annotator, now)
        if project_sensitive and not sensitive_allowed:
            return None
        candidates = _eligible(project, annotator, held, sensitive_allowed)
        normal = _normal_with_free_slot(project, candidates, now)
        task = None
        # Gold is mixed into real work only: served alone, it would be recognisable as gold.
        if project.gold_rate > 0 and _rng.random() < project.gold_rate and normal.exists():
            task = _pick_gold(candidates, annotator)
        if task is None:
            task = _pick_normal(project, normal, now)
        if task is None:
            return None
        return _lease(project, annotator, task, now, sensitive=project_sensitive or task.is_sensitive)


def _mark_expired(assignment: Assignment, now: datetime) -> None:
    assignment.state = AssignmentState.EXPIRED
    assignment.finished_at = assignment.expires_at
    assignment.save(update_fields=["state", "finished_at"])


def _sensitive_allowed(project: Project, annotator: Any, now: datetime) -> bool:
    """Whether the project's daily cap on sensitive tasks (rolling 24 hours) still allows one more."""
    if project.sensitive_daily_cap is None:
        return True
    recent = Assignment.objects.for_org(project.organization_id).filter(
        project=project, annotator=annotator, is_sensitive=True, leased_at__gt=now - SENSITIVE_WINDOW
    )
    return recent.count() < project.sensitive_daily_cap


def _eligible(project: Project, annotator: Any, held: dict[int, int], sensitive_allowed: bool) -> Any:
    """Open tasks of the project this annotator may be given, before overlap and gold are considered."""
    tasks = (
        Task.objects.for_org(project.organization_id)
        .filter(project=project, status=TaskStatus.OPEN)
        .exclude(
            Exists(
                Assignment.objects.filter(
                    task=OuterRef("pk"),
                    annotator=annotator,
                    state__in=[ACTIVE, AssignmentState.SUBMITTED, AssignmentState.SKIPPED],
                )
            )
        )
        .exclude(Exists(Annotation.objects.filter(task=OuterRef("pk"), annotator=annotator)))
    )
    restricted = Q(is_restricted=True)
    if held:
        restricted &= task_requirements_unmet(held)
    tasks = tasks.exclude(restricted)
    if not sensitive_allowed:
        tasks = tasks.filter(is_sensitive=False)
    return tasks


def _locked_first(tasks: Any) -> Task | None:
    if connection.features.has_select_for_update_skip_locked:
        # FOR NO KEY UPDATE: blocks other pickers and submits of this task, not inserts that merely reference it.
        tasks = tasks.select_for_update(skip_locked=True, of=("self",), no_key=True)
    return tasks.first()


def _pick_gold(candidates: Any, annotator: Any) -> Task | None:
    """A random gold task this annotator has never been shown, in any state (gold has no overlap limit)."""
    gold = candidates.filter(gold_label__isnull=False).exclude(
        Exists(Assignment.objects.filter(task=OuterRef("pk"), annotator=annotator))
    )
    start = _rng.random()
    return (
        gold.filter(shuffle__gte=start).order_by("shuffle").first()
        or gold.filter(shuffle__lt=start).order_by("shuffle").first()
    )


def _live_leases(task: Task, now: datetime) -> int:
    return Assignment.objects.filter(task=task, state=ACTIVE, expires_at__gt=now).count()


def _normal_with_free_slot(project: Project, candidates: Any, now: datetime) -> Any:
    """Normal candidates whose judgments + live leases (as of this statement's snapshot) leave a slot, in order."""
    live = Assignment.objects.filter(task=OuterRef("pk"), state=ACTIVE, expires_at__gt=now)
    live_count = live.order_by().values("task").annotate(n=Count("pk")).values("n")
    needed = project.min_judgments + F("extra_judgments")
    return (
        candidates.filter(gold_label__isnull=True, judgment_count__lt=needed)
        .alias(used=F("judgment_count") + Coalesce(Subquery(live_count, output_field=IntegerField()), 0))
        .filter(used__lt=needed)
        .order_by("-is_started", "rank", "id")
    )


def _pick_normal(project: Project, tasks: Any, now: datetime) -> Task | None:
    """The first task of ``tasks`` with a free slot; locked so no one else can take that slot meanwhile."""
    tried: list[int] = []
    for _ in range(PICK_ATTEMPTS):
        task = _locked_first(tasks.exclude(pk__in=tried) if tried else tasks)
        if task is None:
            return None
        # The candidate query saw a snapshot taken before we held the lock: recount now that nobody can add.
        if task.judgment_count + _live_leases(task, now) < project.min_judgments + task.extra_judgments:
            return task
        tried.append(task.pk)
    return None


def _lease(project: Project, annotator: Any, task: Task, now: datetime, *, sensitive: bool) -> Assignment:
    assignment = Assignment.objects.create(
        organization_id=project.organization_id,
        project=project,
        task=task,
        annotator=annotator,
        is_gold=task.is_gold,
        is_sensitive=sensitive,
        a_left=bool(_rng.getrandbits(1)) if project.kind == ProjectKind.PAIRWISE else None,
        leased_at=now,
        expires_at=now + timedelta(seconds=project.lease_ttl_seconds),
    )
    if not task.is_started:
        Task.objects.filter(pk=task.pk).update(is_started=True)
        task.is_started = True
    assignment.task = task
    return assignment


def annotation_submit(*, assignment: Assignment, label: str, client_id: str, seconds: float, actor: Any) -> Annotation:
    """Store ``actor``'s judgment on their lease and move the task towards consensus, in one transaction.

    The same ``client_id`` again (double click, retry after a timeout) returns the first annotation. A lease
    that expired, was skipped or belongs to someone else raises ``LeaseError`` and writes nothing.
    """
    if assignment.annotator_id != actor.pk:
        raise LeaseError("This task is leased to someone else.", code="not_yours")
    organization_id = assignment.organization_id
    existing = annotation_by_client_id(organization_id=organization_id, annotator=actor, client_id=client_id)
    if existing is not None:
        return existing
    with transaction.atomic():
        lease = (
            Assignment.objects.for_org(organization_id)
            .select_for_update(of=("self",), no_key=True)
            .select_related("project")
            .get(pk=assignment.pk)
        )
        now = timezone.now()
        if lease.state != ACTIVE:
            # A concurrent retry may have just committed this very submit.
            existing = annotation_by_client_id(organization_id=organization_id, annotator=actor, client_id=client_id)
            if existing is not None:
                return existing
            raise _lease_error(lease)
        if lease.expires_at <= now:
            raise _lease_error(lease, expired=True)
        project = lease.project
        annotation_validate(
            project=project, label=label, client_id=client_id, a_left=lease.a_left, seconds_on_task=seconds
        )
        task = Task.objects.for_org(organization_id).select_for_update(no_key=True).get(pk=lease.task_id)
        annotation = annotation_insert(
            task=task, annotator=actor, label=label, client_id=client_id, a_left=lease.a_left, seconds_on_task=seconds
        )
        lease.state = AssignmentState.SUBMITTED
        lease.finished_at = now
        lease.save(update_fields=["state", "finished_at"])
        task_progress_refresh(task=task, project=project)
    return annotation


def _lease_error(lease: Assignment, *, expired: bool = False) -> LeaseError:
    if expired or lease.state == AssignmentState.EXPIRED:
        return LeaseExpired(
            "Your time on this task ran out and it may have gone to someone else; nothing was saved. "
            "Open the next task to continue.",
            code="lease_expired",
        )
    if lease.state == AssignmentState.SUBMITTED:
        return LeaseError("You already submitted this task.", code="already_submitted")
    return LeaseError("You skipped this task.", code="skipped")


def assignment_skip(*, assignment: Assignment, actor: Any, reason: str = "") -> Assignment:
    """Release ``actor``'s lease; the task is never offered to them again. Skipping twice is harmless."""
    if assignment.annotator_id != actor.pk:
        raise LeaseError("This task is leased to someone else.", code="not_yours")
    with transaction.atomic():
        lease = (
            Assignment.objects.for_org(assignment.organization_id).select_for_update(no_key=True).get(pk=assignment.pk)
        )
        if lease.state == AssignmentState.SKIPPED:
            return lease
        if lease.state == AssignmentState.SUBMITTED:
            raise _lease_error(lease)
        if (
            lease.state == AssignmentState.EXPIRED
            and Assignment.objects.filter(
                task_id=lease.task_id,
                annotator=actor,
                state__in=[ACTIVE, AssignmentState.SUBMITTED, AssignmentState.SKIPPED],
            ).exists()
        ):
            raise _lease_error(lease)
        lease.state = AssignmentState.SKIPPED
        lease.finished_at = timezone.now()
        lease.skip_reason = reason.strip()[:500]
        lease.save(update_fields=["state", "finished_at", "skip_reason"])
    return lease


def leases_expire(*, now: datetime | None = None) -> int:
    """Record leases past their expiry as expired (for the record: they stopped counting when they expired)."""
    now = now or timezone.now()
    return Assignment.objects.filter(state=ACTIVE, expires_at__lte=now).update(
        state=AssignmentState.EXPIRED, finished_at=F("expires_at")
    )


def consensus_outcome(
    counts: Mapping[str, int], *, min_judgments: int, max_judgments: int, threshold: float
) -> tuple[str, str, str | None, int]:
    """(status, resolution, consensus label, extra judgments) of a normal task with these label counts.

    Below ``min_judgments`` the task stays open. From there, a unique leading label whose share reaches
    ``threshold`` completes it; a tie for the lead never does. Otherwise it asks for one more judgment, until
    ``max_judgments``, where it completes with "no consensus".
    """
    n = sum(counts.values())
    if n < min_judgments:
        return TaskStatus.OPEN, TaskResolution.NONE, None, 0
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    leader, top = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0
    if top > runner_up and top / n >= threshold:
        return TaskStatus.COMPLETE, TaskResolution.CONSENSUS, leader, max(0, n - min_judgments)
    if n >= max_judgments:
        return TaskStatus.COMPLETE, TaskResolution.NO_CONSENSUS, None, max(0, n - min_judgments)
    return TaskStatus.OPEN, TaskResolution.NONE, None, n + 1 - min_judgments


def task_progress_refresh(*, task: Task, project: Project) -> Task:
    """Recount ``task``'s judgments from rows and settle its status. Call while holding the task's row lock."""
    counts = dict(
        Annotation.objects.filter(task=task)
        .order_by()
        .values_list("label")
        .annotate(n=Count("pk"))
        .values_list("label", "n")
    )
    task.judgment_count = sum(counts.values())
    fields = ["judgment_count", "updated_at"]
    if not task.is_gold:
        task.status, task.resolution, task.consensus_label, task.extra_judgments = consensus_outcome(
            counts,
            min_judgments=project.min_judgments,
            max_judgments=project.max_judgments,
            threshold=project.consensus_threshold,
        )
        fields += ["status", "resolution", "consensus_label", "extra_judgments"]
    task.save(update_fields=fields)
    return task

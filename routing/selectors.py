"""Reads for routing. Each selector takes keyword-only arguments and scopes every query to one organization."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q
from django.http import Http404

from labeling.models import Judgment, Membership, Project, Task, TaskStatus
from numeric import reservoir_sample
from quality.selectors import paused_scores
from routing.models import AnnotatorQualification, Lease, LeaseState, ProjectRequirement, QualificationKind

# Streamed in chunks so an audit of a project with millions of judgments holds only the sample in memory.
AUDIT_CHUNK_SIZE = 2000


def audit_sample(*, project: Project, k: int, seed: int | None) -> list[dict[str, Any]]:
    """A uniform sample of ``k`` of the project's judgments (all of them when it has fewer), by judgment id.

    One pass over the project's judgments in id order, so a given seed draws the same sample as long as the
    rows are unchanged. Rows are JSON-ready: ``created_at`` is an ISO 8601 string. ``k < 1`` raises ``ValueError``.
    """
    rows = (
        Judgment.objects.for_org(project.organization_id)
        .filter(project=project)
        .order_by("id")
        .values(
            "id",
            "task_id",
            "task__external_id",
            "task__payload",
            "annotator__username",
            "label",
            "a_left",
            "seconds_on_task",
            "created_at",
        )
        .iterator(chunk_size=AUDIT_CHUNK_SIZE)
    )
    sample = reservoir_sample(rows, k, rng=seed)
    return [
        {
            "annotation_id": row["id"],
            "task_id": row["task_id"],
            "external_id": row["task__external_id"],
            "annotator": row["annotator__username"],
            "label": row["label"],
            "a_left": row["a_left"],
            "seconds_on_task": row["seconds_on_task"],
            "created_at": row["created_at"].isoformat(),
            "payload": row["task__payload"],
        }
        for row in sorted(sample, key=lambda row: row["id"])
    ]


@dataclass(frozen=True)
class AnnotatorProject:
    """A project on an annotator's home: what is left for them, what they did today, their gold accuracy.

    Nothing here may tell an annotator which of their tasks were gold (a judgment, a skip or a lease running out
    moves every figure the same way whatever the task): ``left`` counts gold like any other task, and the gold
    accuracy only counts judgments made before ``gold_as_of`` (the start of the current UTC day), so it changes at
    midnight for a whole day's work at once, never right after one judgment.
    """

    project: Project
    left: int
    done_today: int
    gold_judged: int
    gold_correct: int
    gold_as_of: datetime
    pause_reason: str | None = None  # set when quality checks paused the annotator in this project

    @property
    def gold_accuracy(self) -> float | None:
        """Share of gold answered correctly before ``gold_as_of``, once at least ``GOLD_SHOWN_FROM`` are in."""
        return self.gold_correct / self.gold_judged if self.gold_judged >= GOLD_SHOWN_FROM else None

    @property
    def gold_through(self) -> date:
        """The last (UTC) day whose gold judgments the accuracy counts: the day before ``gold_as_of``."""
        return (self.gold_as_of - timedelta(days=1)).date()


GOLD_SHOWN_FROM = 5


def _day_start(now: datetime) -> datetime:
    """00:00 UTC of ``now``'s day: where "today" starts for every annotator, whatever their time zone."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


#: "Left for you" counts every open task the annotator has neither judged nor skipped, gold included, but is 0 once
#: no normal task is left (gold is never served alone).
_LEFT_COUNTS = {"all": Count("pk"), "normal": Count("pk", filter=Q(gold_label__isnull=True))}


def _left_for(org: int, user: int) -> Any:
    """The organization's open tasks that ``user`` has neither judged nor skipped (nor submitted)."""
    touched = Lease.objects.for_org(org).filter(
        task=OuterRef("pk"), annotator_id=user, state__in=[LeaseState.SUBMITTED, LeaseState.SKIPPED]
    )
    judged = Judgment.objects.for_org(org).filter(task=OuterRef("pk"), annotator_id=user)
    return Task.objects.for_org(org).filter(status=TaskStatus.OPEN).exclude(Exists(touched)).exclude(Exists(judged))


@dataclass(frozen=True)
class Progress:
    done: int
    left: int


def annotator_progress(*, membership: Membership, project: Project, now: datetime) -> Progress:
    """The labeling page's progress line, as ``annotator_projects`` counts it for one project: judgments the member
    made in ``project`` since 00:00 UTC, and what is left for them (read when the page loads; the page's script
    moves the figures after each submit)."""
    org, user = membership.organization_id, membership.user_id
    done = Judgment.objects.for_org(org).filter(project=project, annotator_id=user, created_at__gte=_day_start(now))
    counts = _left_for(org, user).filter(project=project).aggregate(**_LEFT_COUNTS)
    return Progress(done=done.count(), left=counts["all"] if counts["normal"] else 0)


def annotator_projects(*, membership: Membership, now: datetime) -> list[AnnotatorProject]:
    """The projects of the membership's organization whose requirements the annotator meets, with their figures.

    ``left``: the open tasks, gold included, that the annotator has neither judged nor skipped (a task whose lease
    ran out stays in it), or 0 once no normal task is left for them (gold is never served alone); an upper bound
    on what they will be given, since gold is mixed in at the project's rate. A constant number of queries,
    whatever the number of projects.
    """
    org, user = membership.organization_id, membership.user_id
    grants = dict(
        AnnotatorQualification.objects.for_org(org)
        .filter(annotator_id=user)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .exclude(qualification__kind=QualificationKind.SENSITIVITY, opted_in=False)
        .values_list("qualification_id", "level")
    )
    unmet: set[int] = set()
    for project_id, qualification_id, min_level in ProjectRequirement.objects.for_org(org).values_list(
        "project_id", "qualification_id", "min_level"
    ):
        if grants.get(qualification_id, 0) < min_level:
            unmet.add(project_id)
    projects = [p for p in Project.objects.for_org(org).order_by("name") if p.pk not in unmet]
    left = {
        row["project"]: row["all"] if row["normal"] else 0
        for row in _left_for(org, user).values("project").annotate(**_LEFT_COUNTS)
    }
    today = _day_start(now)
    mine = Judgment.objects.for_org(org).filter(annotator_id=user)
    done_today = dict(
        mine.filter(created_at__gte=today).values("project").annotate(n=Count("pk")).values_list("project", "n")
    )
    gold = {
        row["project"]: row
        for row in mine.filter(task__gold_label__isnull=False, created_at__lt=today)
        .values("project")
        .annotate(judged=Count("pk"), correct=Count("pk", filter=Q(label=F("task__gold_label"))))
    }
    paused = paused_scores(organization_id=org, project_ids=[p.pk for p in projects], annotator=user)
    return [
        AnnotatorProject(
            project=p,
            left=left.get(p.pk, 0),
            done_today=done_today.get(p.pk, 0),
            gold_judged=gold.get(p.pk, {}).get("judged", 0),
            gold_correct=gold.get(p.pk, {}).get("correct", 0),
            gold_as_of=today,
            pause_reason=(paused[p.pk].pause_reason or "paused by quality checks") if p.pk in paused else None,
        )
        for p in projects
    ]


def annotator_lease(*, membership: Membership, project: Project, lease_id: Any) -> Lease:
    """The member's own lease in ``project``; anyone else's (or a missing one) is a 404."""
    try:
        pk = int(lease_id)
    except (TypeError, ValueError):
        raise Http404("Not found.") from None
    lease = (
        Lease.objects.for_org(membership.organization_id)
        .filter(pk=pk, project=project, annotator_id=membership.user_id)
        .select_related("task")
        .order_by("pk")
        .first()
    )
    if lease is None:
        raise Http404("Not found.")
    return lease


def annotator_clearances(*, membership: Membership) -> list[AnnotatorQualification]:
    """The member's own sensitivity clearances in their organization, with the consent each carries."""
    return list(
        AnnotatorQualification.objects.for_org(membership.organization_id)
        .filter(annotator_id=membership.user_id, qualification__kind=QualificationKind.SENSITIVITY)
        .select_related("qualification")
        .order_by("qualification__code")
    )


def annotator_clearance(*, membership: Membership, grant_id: Any) -> AnnotatorQualification:
    """One of the member's own clearances; anyone else's (or a missing one) is a 404."""
    try:
        pk = int(grant_id)
    except (TypeError, ValueError):
        raise Http404("Not found.") from None
    for grant in annotator_clearances(membership=membership):
        if grant.pk == pk:
            return grant
    raise Http404("Not found.")

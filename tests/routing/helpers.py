"""Small builders for routing tests."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from labeling.models import Annotation, Organization, Project, Role, Task
from routing.models import Assignment, AssignmentState
from routing.services import annotation_submit, next_task
from tests import factories

_client_ids = itertools.count(1)


def annotators(organization: Organization, n: int) -> list[Any]:
    return [factories.make_member(organization, Role.ANNOTATOR) for _ in range(n)]


def tasks(project: Project, n: int, **fields: Any) -> list[Task]:
    return [factories.make_task(project, **fields) for _ in range(n)]


def judge(annotator: Any, project: Project, label: str = "a") -> Annotation | None:
    """Lease the next task and submit ``label`` on it; ``None`` when there is nothing to do."""
    assignment = next_task(annotator=annotator, project=project)
    if assignment is None:
        return None
    return annotation_submit(
        assignment=assignment, label=label, client_id=f"c-{next(_client_ids)}", seconds=3.0, actor=annotator
    )


def expire(assignment: Assignment) -> None:
    """Move a lease's clock past its expiry (its row still says active, as before the sweeper runs)."""
    past = timezone.now() - timedelta(seconds=1)
    Assignment.objects.filter(pk=assignment.pk).update(leased_at=past - timedelta(minutes=10), expires_at=past)
    assignment.refresh_from_db()


def overlap_violations(project: Project) -> list[int]:
    """Ids of normal tasks holding more judgments + live leases than they may have right now."""
    now = timezone.now()
    rows = Task.objects.filter(project=project, gold_label__isnull=True).annotate(
        judged=Count("annotations", distinct=True),
        live=Count(
            "assignments",
            filter=Q(assignments__state=AssignmentState.ACTIVE, assignments__expires_at__gt=now),
            distinct=True,
        ),
    )
    return [
        task.pk
        for task in rows
        if task.judged + task.live > project.max_judgments
        or (task.status == "open" and task.judged + task.live > project.min_judgments + task.extra_judgments)
    ]

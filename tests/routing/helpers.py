"""Small builders for routing tests."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from labeling.models import Judgment, Organization, Project, Role, Task
from quality.consensus import consensus_outcome
from routing.models import Lease, LeaseState
from routing.services import judgment_submit, next_task
from tests import factories

_client_ids = itertools.count(1)


def annotators(organization: Organization, n: int) -> list[Any]:
    return [factories.make_member(organization, Role.ANNOTATOR) for _ in range(n)]


def tasks(project: Project, n: int, **fields: Any) -> list[Task]:
    return [factories.make_task(project, **fields) for _ in range(n)]


def judge(annotator: Any, project: Project, label: str = "a") -> Judgment | None:
    """Lease the next task and submit ``label`` on it; ``None`` when there is nothing to do."""
    lease = next_task(annotator=annotator, project=project)
    if lease is None:
        return None
    return judgment_submit(lease=lease, label=label, client_id=f"c-{next(_client_ids)}", seconds=3.0, actor=annotator)


def expire(lease: Lease) -> None:
    """Move a lease's clock past its expiry (its row still says active, as before the sweeper runs)."""
    past = timezone.now() - timedelta(seconds=1)
    Lease.objects.filter(pk=lease.pk).update(leased_at=past - timedelta(minutes=10), expires_at=past)
    lease.refresh_from_db()


def overlap_violations(project: Project) -> list[int]:
    """Ids of normal tasks holding more judgments + live leases than they may have right now."""
    now = timezone.now()
    rows = Task.objects.filter(project=project, gold_label__isnull=True).annotate(
        judged=Count("judgments", distinct=True),
        live=Count(
            "leases",
            filter=Q(leases__state=LeaseState.ACTIVE, leases__expires_at__gt=now),
            distinct=True,
        ),
    )
    # A task completes at exactly the judgment that settles it, so min + extra bounds it open or complete.
    return [
        task.pk
        for task in rows
        if task.judged + task.live > project.min_judgments + task.extra_judgments
        or project.min_judgments + task.extra_judgments > project.max_judgments
    ]


def overjudged(project: Project) -> list[int]:
    """Ids of normal tasks judged after they were settled: the judgments before the last already completed them.

    Submits of one task are serialised on its row lock, so id order is the order in which they counted.
    """
    labels: dict[int, list[str]] = {}
    for task_id, label in (
        Judgment.objects.filter(project=project, task__gold_label__isnull=True)
        .order_by("task_id", "id")
        .values_list("task_id", "label")
    ):
        labels.setdefault(task_id, []).append(label)
    bad = []
    for task_id, judged in labels.items():
        before = Counter(judged[:-1])
        status = consensus_outcome(
            before,
            min_judgments=project.min_judgments,
            max_judgments=project.max_judgments,
            threshold=project.consensus_threshold,
        )[0]
        if len(judged) > project.max_judgments or status != "open":
            bad.append(task_id)
    return bad

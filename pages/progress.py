"""The labeling page's progress line: what the annotator did today in the project and what is left for them.

Read once when the page is loaded (two counts); after each submit the page's script moves the figures itself, so a
submit costs no count. The figures mean what they mean on the annotator's home (``routing.selectors
.annotator_projects``), for one project.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Count, Exists, OuterRef, Q

from labeling.models import Judgment, Membership, Project, Task, TaskStatus
from routing.models import Lease, LeaseState


@dataclass(frozen=True)
class Progress:
    done: int
    left: int


def annotator_progress(*, membership: Membership, project: Project, now: datetime) -> Progress:
    """Judgments the member made in ``project`` since 00:00 UTC, and the open tasks they have neither judged nor
    skipped (0 once only gold is left: gold is never served alone)."""
    org, user = membership.organization_id, membership.user_id
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    done = Judgment.objects.for_org(org).filter(project=project, annotator_id=user, created_at__gte=today).count()
    touched = Lease.objects.filter(
        task=OuterRef("pk"), annotator_id=user, state__in=[LeaseState.SUBMITTED, LeaseState.SKIPPED]
    )
    open_tasks = (
        Task.objects.for_org(org)
        .filter(project=project, status=TaskStatus.OPEN)
        .exclude(Exists(touched))
        .exclude(Exists(Judgment.objects.filter(task=OuterRef("pk"), annotator_id=user)))
    )
    counts = open_tasks.aggregate(all=Count("pk"), normal=Count("pk", filter=Q(gold_label__isnull=True)))
    return Progress(done=done, left=counts["all"] if counts["normal"] else 0)

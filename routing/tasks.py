"""Celery jobs for routing: thin, take ids, re-fetch, call one service, safe to run twice."""

from celery import shared_task

from labeling.models import Project
from routing.services import leases_expire, project_ranks_refresh


@shared_task(acks_late=True, reject_on_worker_lost=True)
def expire_leases_task() -> int:
    """Beat: record leases past their expiry (they stopped counting against overlap when they expired)."""
    return leases_expire()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def refresh_project_ranks_task(project_id: int) -> None:
    project = Project.objects.filter(pk=project_id).first()
    if project is not None:
        project_ranks_refresh(project=project)

"""Celery jobs for labeling: thin, take ids, re-fetch, call one service, safe to run twice."""

from celery import shared_task

from labeling.services import project_stats_refresh


@shared_task(acks_late=True, reject_on_worker_lost=True)
def refresh_project_stats_task(project_id: int) -> None:
    project_stats_refresh(project_id=project_id)

"""Celery jobs for quality: thin, take ids, re-fetch, call one service, safe to run twice (or at once)."""

from celery import shared_task
from django.db import OperationalError

from labeling.jobs import coalesced_mark_clear
from quality.services import QUALITY_JOB, project_quality_recompute, quality_sweep


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=5,
    max_retries=3,
    soft_time_limit=600,
    time_limit=660,
)
def recompute_project_quality_task(project_id: int) -> None:
    # Cleared before reading: a judgment committed from now on queues another run.
    coalesced_mark_clear(QUALITY_JOB, project_id)
    project_quality_recompute(project_id=project_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sweep_quality_task() -> list[int]:
    """Beat: recompute every project whose latest snapshot is older than its newest judgment."""
    return quality_sweep()

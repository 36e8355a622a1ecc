"""Celery jobs for labeling: thin, take ids, re-fetch, call one service, safe to run twice."""

from celery import shared_task
from django.conf import settings

from labeling.services import project_stats_refresh


@shared_task(acks_late=True, reject_on_worker_lost=True)
def refresh_project_stats_task(project_id: int) -> None:
    project_stats_refresh(project_id=project_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=4 * 3600, soft_time_limit=4 * 3600 - 60)
def run_import_job_task(job_id: int) -> None:
    """A large import (``labeling.imports.jobs``): atomic, so a redelivery after a lost worker starts over.
    Transient errors are retried here, in the worker, with back-off (``IMPORT_RETRY_MAX``, ``IMPORT_RETRY_BACKOFF``);
    in-process (eager, no broker) the first error fails the job, as a request must not sleep."""
    from labeling.imports.jobs import import_job_run

    retries = 0 if settings.CELERY_TASK_ALWAYS_EAGER else settings.IMPORT_RETRY_MAX
    import_job_run(job_id=job_id, max_retries=retries, backoff=settings.IMPORT_RETRY_BACKOFF)

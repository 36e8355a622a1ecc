"""Celery jobs for imports and exports: thin, take ids, re-fetch, call one service."""

from celery import shared_task
from django.conf import settings

from exchange.import_jobs import import_job_run


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=4 * 3600, soft_time_limit=4 * 3600 - 60)
def run_import_job(job_id: int) -> None:
    """A large import (``exchange.import_jobs``): atomic, so a redelivery after a lost worker starts over.
    Transient errors are retried here, in the worker, with back-off (``IMPORT_RETRY_MAX``, ``IMPORT_RETRY_BACKOFF``);
    in-process (eager, no broker) the first error fails the job, as a request must not sleep."""
    retries = 0 if settings.CELERY_TASK_ALWAYS_EAGER else settings.IMPORT_RETRY_MAX
    import_job_run(job_id=job_id, max_retries=retries, backoff=settings.IMPORT_RETRY_BACKOFF)

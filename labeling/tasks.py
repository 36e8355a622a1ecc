"""Celery jobs for labeling: thin, take ids, re-fetch, call one service, safe to run twice."""

from celery import shared_task
from django.conf import settings

from labeling import accounts, invitations
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


# E-mail jobs retry a few times when the mail server does not answer (a message may then go out twice: harmless).
MAIL_RETRY = {"autoretry_for": (OSError,), "retry_backoff": 30, "max_retries": 5}


@shared_task(acks_late=True, reject_on_worker_lost=True, **MAIL_RETRY)
def send_invitation_task(invitation_id: int, base_url: str) -> None:
    """E-mail an invitation's current link (nothing if it was revoked or accepted meanwhile)."""
    invitations.invitation_send(invitation_id=invitation_id, base_url=base_url)


@shared_task(acks_late=True, reject_on_worker_lost=True, **MAIL_RETRY)
def send_password_reset_task(email: str, base_url: str) -> None:
    """E-mail a password-reset link to the accounts with this address, if any. A job, so that the request answers
    alike, and as fast, whether or not the address has an account."""
    accounts.password_reset_send(email=email, base_url=base_url)

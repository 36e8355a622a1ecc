"""Celery jobs for labeling: thin, take ids, re-fetch, call one service, safe to run twice.

Services queue these by name (``labeling.queueing.job_named``): this module imports the services it runs.
"""

from celery import shared_task

from labeling import accounts, invitations
from labeling.models import Project
from labeling.ranking import project_ranks_refresh


@shared_task(acks_late=True, reject_on_worker_lost=True)
def refresh_project_ranks_job(project_id: int) -> None:
    project = Project.objects.filter(pk=project_id).first()
    if project is not None:
        project_ranks_refresh(project=project)


# E-mail jobs retry a few times when the mail server does not answer (a message may then go out twice: harmless).
MAIL_RETRY = {"autoretry_for": (OSError,), "retry_backoff": 30, "max_retries": 5}


@shared_task(acks_late=True, reject_on_worker_lost=True, **MAIL_RETRY)
def send_invitation_job(invitation_id: int, base_url: str) -> None:
    """E-mail an invitation's current link (nothing if it was revoked or accepted meanwhile)."""
    invitations.invitation_send(invitation_id=invitation_id, base_url=base_url)


@shared_task(acks_late=True, reject_on_worker_lost=True, **MAIL_RETRY)
def send_password_reset_job(email: str, base_url: str) -> None:
    """E-mail a password-reset link to the accounts with this address, if any. A job, so that the request answers
    alike, and as fast, whether or not the address has an account."""
    accounts.password_reset_send(email=email, base_url=base_url)

"""Celery jobs for routing: thin, take ids, re-fetch, call one service, safe to run twice."""

from celery import shared_task

from routing.services import leases_expire


@shared_task(acks_late=True, reject_on_worker_lost=True)
def expire_leases_job() -> int:
    """Beat: record leases past their expiry (they stopped counting against overlap when they expired)."""
    return leases_expire()

"""Celery jobs for quality: thin, take ids, re-fetch, call one service, safe to run twice (or at once)."""

from typing import Any, Final

from celery import shared_task

from labeling.outages import DATABASE_ERRORS
from labeling.queueing import coalesced_mark_clear, delivery_finish, delivery_start
from labeling.services import project_stats_refresh
from quality.services import (
    QUALITY_JOB,
    STATS_JOB,
    project_quality_recompute,
    quality_job_give_up,
    quality_request_recompute,
    quality_sweep,
)

# Deliveries of one recompute message that may die with their worker before the job gives up (FAILED, visible on
# the dashboard); the sweep queues the project again later if it is still stale.
MAX_LOST_RUNS: Final = 3


@shared_task(acks_late=True, reject_on_worker_lost=True)
def refresh_project_stats_job(project_id: int) -> None:
    """A project's judgments changed: recount its stats, then ask for its quality recompute (coalesced, later)."""
    coalesced_mark_clear(STATS_JOB, project_id)  # before reading: a judgment committed from now on queues a run
    if project_stats_refresh(project_id=project_id) is not None:
        quality_request_recompute(project_ids=[project_id])


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=DATABASE_ERRORS,  # a dropped connection too (InterfaceError, psycopg's own), not only a refusal
    retry_backoff=5,
    max_retries=3,
    soft_time_limit=600,
    time_limit=660,
)
def recompute_project_quality_job(self: Any, project_id: int) -> None:
    task_id = self.request.id  # None when called in-process, not through Celery
    lost = delivery_start(task_id) if task_id else 0
    try:
        if lost >= MAX_LOST_RUNS:
            quality_job_give_up(
                project_id=project_id,
                reason=f"gave up after {lost} runs that never finished (the worker was killed: out of memory, "
                "over the time limit, or lost)",
            )
            return
        # Cleared before reading: a judgment committed from now on queues another run.
        coalesced_mark_clear(QUALITY_JOB, project_id)
        project_quality_recompute(project_id=project_id)
    finally:
        if task_id:
            delivery_finish(task_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sweep_quality_job() -> list[int]:
    """Beat: recompute every project whose latest snapshot is older than its newest judgment."""
    return quality_sweep()

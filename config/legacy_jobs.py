"""The jobs' names before they moved to each app's ``jobs`` module (the release before 2026-12-03).

Messages queued by the previous release (a stats refresh, a recompute, an import, an e-mail) are still in the
broker when the new workers start: without these aliases a worker refuses them as unregistered and the work is
lost (the sweep recovers stats and quality, not imports or e-mails). Each alias queues the job again under its new
name, so that the new job's options (retries, time limits, bounded redeliveries) apply to it. Loaded by Celery
through ``CELERY_IMPORTS``. Remove this module in the release after next.
"""

from typing import Any

from celery import shared_task

from exchange.jobs import run_import_job
from labeling.jobs import refresh_project_ranks_job, send_invitation_job, send_password_reset_job
from quality.jobs import recompute_project_quality_job, refresh_project_stats_job, sweep_quality_job
from routing.jobs import expire_leases_job

LEGACY_NAMES: dict[str, Any] = {
    "labeling.tasks.refresh_project_stats_task": refresh_project_stats_job,
    "labeling.tasks.run_import_job_task": run_import_job,
    "labeling.tasks.send_invitation_task": send_invitation_job,
    "labeling.tasks.send_password_reset_task": send_password_reset_job,
    "quality.tasks.recompute_project_quality_task": recompute_project_quality_job,
    "quality.tasks.sweep_quality_task": sweep_quality_job,
    "routing.tasks.expire_leases_task": expire_leases_job,
    "routing.tasks.refresh_project_ranks_task": refresh_project_ranks_job,
}


def _alias(old_name: str, job: Any) -> Any:
    def run(*args: Any) -> Any:
        return job.apply_async(args).id

    return shared_task(name=old_name)(run)


ALIASES = {old_name: _alias(old_name, job) for old_name, job in LEGACY_NAMES.items()}

"""Scheduling of quality's jobs: ask for a project's stats refresh or quality recompute once the current
transaction commits (coalesced per project through ``labeling.queueing``, the jobs named, not imported), and the
sweep that catches up on runs that were lost or never queued."""

from __future__ import annotations

from django.conf import settings

from labeling.queueing import coalesced_mark, schedule_coalesced
from quality.selectors import stale_project_ids

QUALITY_DELAY_SECONDS = 5.0
QUALITY_JOB = "quality-recompute"
# Stats refreshes are coalesced per project too (``labeling.queueing``): a burst of judgments queues a handful.
STATS_REFRESH_DELAY_SECONDS = 2.0
STATS_JOB = "stats-refresh"


def stats_refresh_mark(project_id: int) -> str:
    return coalesced_mark(STATS_JOB, project_id)


def project_stats_request_refresh(*, project_ids: list[int]) -> None:
    """A project's judgments changed: queue its stats refresh once the current transaction commits (coalesced per
    project). The stats job (``quality.jobs.refresh_project_stats_job``) then asks for a quality recompute
    (coalesced too, with a longer delay): the job does both, so ``labeling`` never calls up into ``quality``."""
    for project_id in project_ids:
        schedule_coalesced(
            "quality.jobs.refresh_project_stats_job", project_id, name=STATS_JOB, delay=STATS_REFRESH_DELAY_SECONDS
        )


def quality_request_recompute(*, project_ids: list[int]) -> None:
    """Queue a quality recompute of each project once the current transaction commits, coalesced: while one is
    queued, further requests add nothing (a burst of submissions causes a handful of runs)."""
    if not settings.QUALITY_RECOMPUTE_ON_COMMIT:
        return
    for project_id in project_ids:
        schedule_coalesced(
            "quality.jobs.recompute_project_quality_job", project_id, name=QUALITY_JOB, delay=QUALITY_DELAY_SECONDS
        )


def quality_sweep() -> list[int]:
    """Queue a recompute of every project with judgments newer than its latest snapshot: the catch-up of jobs that
    were lost (a broker restarted empty) or never queued (the broker was down when the judgments committed, see
    ``labeling.queueing``). Those judgments' stats refreshes were lost with them: they are queued again too."""
    stale = stale_project_ids()
    project_stats_request_refresh(project_ids=stale)
    quality_request_recompute(project_ids=stale)
    return stale

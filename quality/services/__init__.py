"""Quality's writes: the recompute job and its stored results (``recompute``), the figures it computes from the
judgments, pure numpy (``compute``), the scheduling of recomputes and stats refreshes (``schedule``) and a manager's
un-pause (``pauses``). Import from here."""

from quality.services.compute import ALPHA, EFFECT, MIN_FLAG_JUDGMENTS, RANDOM_ALPHA, RANDOM_MARGIN
from quality.services.pauses import annotator_unpause
from quality.services.recompute import progress_key, project_quality_recompute, quality_job_give_up
from quality.services.schedule import (
    QUALITY_DELAY_SECONDS,
    QUALITY_JOB,
    STATS_JOB,
    STATS_REFRESH_DELAY_SECONDS,
    project_stats_request_refresh,
    quality_request_recompute,
    quality_sweep,
    stats_refresh_mark,
)

__all__ = [
    "ALPHA",
    "EFFECT",
    "MIN_FLAG_JUDGMENTS",
    "QUALITY_DELAY_SECONDS",
    "QUALITY_JOB",
    "RANDOM_ALPHA",
    "RANDOM_MARGIN",
    "STATS_JOB",
    "STATS_REFRESH_DELAY_SECONDS",
    "annotator_unpause",
    "progress_key",
    "project_quality_recompute",
    "project_stats_request_refresh",
    "quality_job_give_up",
    "quality_request_recompute",
    "quality_sweep",
    "stats_refresh_mark",
]

"""Routing's writes: leases (``leases``), qualifications and requirements (``qualifications``), sampling ranks
and predictions (``ranks``). Import from here."""

from routing.services.leases import (
    AnnotatorPaused,
    LeaseError,
    LeaseExpired,
    annotation_submit,
    assignment_skip,
    consensus_outcome,
    leases_expire,
    next_task,
    task_progress_refresh,
)
from routing.services.qualifications import (
    project_requirements_set,
    qualification_create,
    qualification_grant,
    qualification_opt_in,
    task_requirement_flags_refresh,
    task_requirements_set,
)
from routing.services.ranks import predictions_attach, project_ranks_refresh, task_rank_for

__all__ = [
    "AnnotatorPaused",
    "LeaseError",
    "LeaseExpired",
    "annotation_submit",
    "assignment_skip",
    "consensus_outcome",
    "leases_expire",
    "next_task",
    "predictions_attach",
    "project_ranks_refresh",
    "project_requirements_set",
    "qualification_create",
    "qualification_grant",
    "qualification_opt_in",
    "task_progress_refresh",
    "task_rank_for",
    "task_requirement_flags_refresh",
    "task_requirements_set",
]

"""Routing's writes: leases (``leases``), judgments on them and without them (``judgments``), qualifications and
requirements (``qualifications``). Import from here."""

from routing.services.judgments import UNDO_SECONDS, judgment_record, judgment_submit, judgment_undo
from routing.services.leases import AnnotatorPaused, LeaseError, LeaseExpired, lease_skip, leases_expire, next_task
from routing.services.qualifications import (
    project_requirements_set,
    qualification_create,
    qualification_grant,
    qualification_opt_in,
    task_requirement_flags_refresh,
    task_requirements_set,
)

__all__ = [
    "UNDO_SECONDS",
    "AnnotatorPaused",
    "LeaseError",
    "LeaseExpired",
    "judgment_record",
    "judgment_submit",
    "judgment_undo",
    "lease_skip",
    "leases_expire",
    "next_task",
    "project_requirements_set",
    "qualification_create",
    "qualification_grant",
    "qualification_opt_in",
    "task_requirement_flags_refresh",
    "task_requirements_set",
]

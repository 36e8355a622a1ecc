"""Judgments: an annotator's submit on their lease, and a judgment recorded without a lease (an import, the demo
seed). Both store the row and settle the task in one transaction, under the task's row lock, through one helper
(``_judgment_store``); the same ``client_id`` again returns the first row.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from labeling.db import json_text, json_value, timestamp
from labeling.models import Judgment, Membership, Project, Task, TaskStatus
from labeling.questions import (
    QuestionSpec,
    answers_clean,
    answers_errors,
    primary_label,
    primary_of,
    response_count,
    shown_order,
)
from labeling.selectors import project_questions_of
from labeling.services import judgment_by_client_id, judgment_errors, judgment_validate
from labeling.validation import text_problem
from quality.consensus import task_settle
from quality.services import project_stats_request_refresh
from routing import sql
from routing.models import Lease, LeaseState
from routing.services.leases import ACTIVE, LeaseError, lease_error, paused_error

#: How long after a submit its annotator may take the judgment back (the page offers it this long).
UNDO_SECONDS = 10


def _judgment_store(
    judgment: Judgment, *, is_gold: bool, min_judgments: int, max_judgments: int, threshold: float, kind: str
) -> tuple[Judgment, bool]:
    """Insert ``judgment`` (the caller holds its task's row lock), settle the task and queue the project's stats
    refresh on commit; ``(judgment, True)``. A row with the same ``client_id`` (a concurrent retry) wins: it is
    returned instead, ``(row, False)``, and nothing is written."""
    judgment.pk = sql.insert_judgment(
        [
            judgment.organization_id,
            judgment.project_id,
            judgment.task_id,
            judgment.annotator_id,
            judgment.label,
            judgment.a_left,
            judgment.strength,
            json_text(judgment.answers),
            json_text(judgment.response_order),
            float(judgment.seconds_on_task),
            judgment.active_seconds,
            judgment.client_id,
            timestamp(judgment.created_at),
        ]
    )
    if judgment.pk is None:
        existing = judgment_by_client_id(
            organization_id=judgment.organization_id, annotator=judgment.annotator, client_id=judgment.client_id
        )
        if existing is not None:
            return existing, False
        raise ValidationError({"task": "This annotator has already judged this task."})
    task_settle(
        judgment.task_id,
        judgment.project_id,
        is_gold,
        judgment.created_at,
        min_judgments,
        max_judgments,
        threshold,
        kind,
    )
    project_stats_request_refresh(project_ids=[judgment.project_id])
    return judgment, True


def answers_label(questions: list[QuestionSpec], answers: Any, *, payload: dict[str, Any]) -> str:
    """The ``label`` that valid ``answers`` give (the primary question's answer); ``ValidationError`` naming every
    question whose answer is wrong, or ``answers`` itself when the project has no questions."""
    if not questions:
        raise ValidationError({"answers": "this project has no questions: send its label instead"})
    errors = answers_errors(questions, answers, n_responses=response_count(payload))
    if errors:
        raise ValidationError(errors)
    primary = primary_of(questions)
    return primary_label(primary, answers[primary.key])


def judgment_submit(
    *,
    lease: Lease,
    label: str = "",
    client_id: str,
    seconds: float,
    actor: Any,
    active_seconds: float | None = None,
    strength: int | None = None,
    answers: dict[str, Any] | None = None,
    questions: list[QuestionSpec] | None = None,
) -> Judgment:
    """Store ``actor``'s judgment on their lease and move the task towards consensus, in one transaction.

    A project with questions takes ``answers`` (``labeling.questions``; the primary answer becomes the label) and
    no ``label``; others take ``label``. ``questions``: the form, when the caller has read it already.

    The same ``client_id`` again (double click, retry after a timeout) returns the first judgment. A lease
    that expired, was skipped or belongs to someone else raises ``LeaseError`` and writes nothing, and so does any
    submit of an annotator whose work in the project is paused (``AnnotatorPaused``). ``seconds`` is
    the server-side time on task; ``active_seconds``, when the page measured it, the time it was visible and focused;
    ``strength`` how much better (1-3), required on a decisive judgment when the project has a strength scale.
    """
    if lease.annotator_id != actor.pk:
        raise LeaseError("This task is leased to someone else.", code="not_yours")
    # Posted text goes into queries before it is checked: what PostgreSQL cannot hold (a NUL) is refused first.
    for name, value in (("label", label), ("client_id", client_id)):
        if isinstance(value, str) and (problem := text_problem(value)) is not None:
            raise ValidationError({name: problem})
    org = lease.organization_id
    n_responses = 0
    if answers is not None:
        payload = lease.task.payload
        n_responses = response_count(payload)
        if questions is None:  # the caller (the labeling page) may have read the form already
            questions = project_questions_of(organization_id=org, project_id=lease.project_id)
        label = answers_label(questions, answers, payload=payload)
    with transaction.atomic():
        now = timezone.now()
        row = sql.lock_lease_and_task(lease=lease.pk, org=org, label=str(label), now=now)
        if row is None:
            raise LeaseError("This lease does not exist.", code="missing")
        a_left = None if row.a_left is None else bool(row.a_left)
        if row.state != ACTIVE or not row.live:
            # A retry of a submit that already went through returns its row, whatever the lease says now.
            existing = judgment_by_client_id(organization_id=org, annotator=actor, client_id=client_id)
            if existing is not None:
                return existing
            raise paused_error() if row.paused_at is not None else lease_error(row.state, expired=not row.live)
        if row.paused_at is not None:
            # Refused, not stored and excluded: the lease is released by the router's next call for them.
            raise paused_error()
        if row.questions and answers is None:
            raise ValidationError({"answers": "are required: this project has questions"})
        errors = judgment_errors(
            kind=row.kind,
            label=label,
            label_known=bool(row.label_known),
            client_id=client_id,
            a_left=a_left,
            seconds_on_task=seconds,
            active_seconds=active_seconds,
            strength=strength,
            strength_scale=bool(row.strength_scale),
        )
        if errors:
            raise ValidationError(errors)
        judgment = Judgment(
            organization_id=org,
            project_id=row.project_id,
            task_id=row.task_id,
            annotator=actor,
            label=label,
            a_left=a_left,
            strength=strength,
            answers=None if answers is None else answers_clean(answers),
            response_order=shown_order(json_value(row.response_order), n_responses),
            seconds_on_task=float(seconds),
            active_seconds=None if active_seconds is None else float(active_seconds),
            client_id=client_id,
            created_at=now,
        )
        judgment, created = _judgment_store(
            judgment,
            is_gold=row.gold_label is not None,
            min_judgments=row.min_judgments,
            max_judgments=row.max_judgments,
            threshold=row.consensus_threshold,
            kind=row.kind,
        )
        if created:
            sql.lease_submit(lease=lease.pk, now=now)
    return judgment


def judgment_record(
    *,
    task: Task,
    annotator: AbstractBaseUser,
    label: str,
    client_id: str,
    a_left: bool | None = None,
    seconds_on_task: float = 0.0,
    strength: int | None = None,
    answers: dict[str, Any] | None = None,
) -> Judgment:
    """Store one judgment without a lease (imports, the demo seed) and settle the task. Idempotent: the same
    ``client_id`` returns the first row. Annotators' judgments go through ``judgment_submit``, which also checks
    their lease."""
    existing = judgment_by_client_id(organization_id=task.organization_id, annotator=annotator, client_id=client_id)
    if existing is not None:
        return existing
    project: Project = task.project
    questions = project_questions_of(organization_id=task.organization_id, project_id=task.project_id)
    if questions or answers is not None:
        label = answers_label(questions, answers, payload=task.payload)
    judgment_validate(
        project=project,
        label=label,
        client_id=client_id,
        a_left=a_left,
        seconds_on_task=seconds_on_task,
        strength=strength,
    )
    if not Membership.objects.filter(organization_id=task.organization_id, user=annotator).exists():
        raise ValidationError({"annotator": "is not a member of this organization"})
    with transaction.atomic():
        # Like a submit, under the task's row lock: the task's progress is recounted with the new row.
        locked = Task.objects.for_org(task.organization_id).select_for_update(no_key=True).get(pk=task.pk)
        judgment = Judgment(
            organization_id=task.organization_id,
            project_id=task.project_id,
            task_id=task.pk,
            annotator=annotator,
            label=label,
            a_left=a_left,
            strength=strength,
            answers=None if answers is None else answers_clean(answers),
            seconds_on_task=float(seconds_on_task),
            client_id=client_id,
            created_at=timezone.now(),
        )
        judgment, _ = _judgment_store(
            judgment,
            is_gold=locked.is_gold,
            min_judgments=project.min_judgments,
            max_judgments=project.max_judgments,
            threshold=project.consensus_threshold,
            kind=project.kind,
        )
    task.refresh_from_db()
    return judgment


def judgment_undo(*, lease: Lease, actor: Any, now: datetime | None = None) -> Lease:
    """Take back ``actor``'s judgment on ``lease`` within ``UNDO_SECONDS`` of its submit, in one transaction: the
    judgment is deleted, the lease is active again, the lease the annotator was given next in the project is
    released (its task goes back to the pool), and the task is recounted; the project's stats refresh is queued.

    Refused with ``LeaseError``, changing nothing, for anyone else's lease, a lease not submitted, after the window,
    once the lease's own time is up (the task may have gone to someone else) and once the task is no longer open
    (the judgment, or one after it, settled it: consensus and exports may already use it)."""
    now = now or timezone.now()
    if lease.annotator_id != actor.pk:
        raise LeaseError("This task is leased to someone else.", code="not_yours")
    org = lease.organization_id
    with transaction.atomic():
        # Serialised with the annotator's router calls, like a skip: it changes which of their leases is active.
        sql.membership_lock(org=org, user=actor.pk)
        row = sql.lock_lease_and_task(lease=lease.pk, org=org, label="", now=now)
        if row is None:
            raise LeaseError("This lease does not exist.", code="missing")
        if row.state != LeaseState.SUBMITTED:
            raise LeaseError("There is no judgment on this task to undo.", code="not_submitted")
        locked = Lease.objects.for_org(org).get(pk=lease.pk)
        judgment = Judgment.objects.for_org(org).filter(task_id=row.task_id, annotator_id=actor.pk).first()
        since = now - timedelta(seconds=UNDO_SECONDS)
        if judgment is None or judgment.created_at < since or (locked.finished_at or now) < since:
            raise LeaseError(f"A judgment can be undone only within {UNDO_SECONDS} seconds.", code="undo_too_late")
        if not row.live:
            raise LeaseError("Your time on this task ran out, so the judgment stays.", code="undo_expired")
        status = Task.objects.for_org(org).filter(pk=row.task_id).values_list("status", flat=True).first()
        if status != TaskStatus.OPEN:
            raise LeaseError("This task is already settled, so the judgment stays.", code="undo_settled")
        Lease.objects.for_org(org).filter(project_id=row.project_id, annotator_id=actor.pk, state=ACTIVE).update(
            state=LeaseState.EXPIRED, finished_at=now
        )
        Judgment.objects.for_org(org).filter(pk=judgment.pk).delete()
        Lease.objects.for_org(org).filter(pk=lease.pk).update(state=ACTIVE, finished_at=None)
        task_settle(
            row.task_id,
            row.project_id,
            row.gold_label is not None,
            now,
            row.min_judgments,
            row.max_judgments,
            row.consensus_threshold,
            row.kind,
        )
        project_stats_request_refresh(project_ids=[row.project_id])
    lease.refresh_from_db()
    return lease

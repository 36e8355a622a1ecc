"""Leases: hand out the next task, take judgments, skip, and expire.

Correctness under concurrency rests on one rule: **every change to a task's leases or judgments happens while
holding that task's row lock.** ``next_task`` takes it with ``SELECT … FOR NO KEY UPDATE SKIP LOCKED`` (on
PostgreSQL; SQLite serialises writers with ``BEGIN IMMEDIATE``), then recounts the task's judgments and live
leases in a fresh statement before leasing it, so no number of concurrent callers can exceed a task's overlap.
A lease counts only while ``expires_at`` is in the future, so an abandoned lease frees its slot the moment it
expires; ``leases_expire`` only records the state afterwards. Calls of one annotator (``next_task`` and
``assignment_skip``) are serialised on their membership row, locked in a statement of its own so that what they
read next is fresh: two tabs opening the page at once get the same lease. Partial unique indexes make a second
active lease or a second lease of the same task for one annotator impossible even so.

A paused annotator (membership, or quality in the project) is refused at submit and gets no task; ``next_task``
releases the lease they held and ``leases_expire`` (beat) releases the leases of those who do not come back.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from labeling.models import (
    Annotation,
    Membership,
    Project,
    ProjectKind,
    Task,
    TaskResolution,
    TaskStatus,
)
from labeling.services import annotation_by_client_id, annotation_errors, project_stats_request_refresh
from labeling.validation import text_problem
from quality import metrics
from quality.models import AnnotatorScore
from routing import sql
from routing.models import Assignment, AssignmentState

ACTIVE = AssignmentState.ACTIVE
# Candidates tried per call when a concurrent lease filled one between our snapshot and our lock.
PICK_ATTEMPTS = 25
SENSITIVE_WINDOW = timedelta(hours=24)

# Gold draws and the shown order must be unpredictable to annotators; tests swap in a seeded ``random.Random``.
_rng: random.Random = random.SystemRandom()


class LeaseError(ValidationError):
    """A submit or skip that the lease does not allow; nothing was written."""


class LeaseExpired(LeaseError):
    """The lease ran out before the submit: the page offers to lease again."""


class AnnotatorPaused(LeaseError):
    """The annotator's work in the project is paused (membership or quality): their submit stores nothing."""


def _paused_error() -> AnnotatorPaused:
    return AnnotatorPaused(
        "Your work in this project is paused, so this judgment was not saved. Please contact your project manager.",
        code="paused",
    )


def next_task(*, annotator: Any, project: Project) -> Assignment | None:
    """The annotator's active lease in ``project``, else a new lease on the best eligible task, else ``None``.

    Eligible: open, every requirement held (unexpired; clearances opted in), not judged or skipped by this
    annotator, not held by them right now, and judgments + live leases below what the task needs now; a task
    whose lease ran out before a judgment may come back to the same annotator, a gold task never does. Started
    tasks come first, then the project's sampling rank. A gold task is served instead with probability
    ``gold_rate``.

    A paused annotator (membership, or quality in this project) gets nothing, and the lease they held is released
    at once rather than handed back; so is a lease whose task they no longer qualify for (a clearance opted out of,
    a qualification expired). Concurrent calls of one annotator (two tabs, a double click) run one after the other
    and get the same lease.
    """
    now = timezone.now()
    org, user = project.organization_id, annotator.pk
    with transaction.atomic():
        sql.membership_lock(org=org, user=user)
        state = sql.annotator_state(org=org, project=project.pk, user=user, now=now, since=now - SENSITIVE_WINDOW)
        if state is None:
            raise ValidationError({"annotator": "is not a member of this project's organization"})
        paused_at, current_id, current_live, lease_unmet, unmet, sensitive_requirements, recent_sensitive = state
        # The pause and the requirements come first: a lease is handed back only while its holder may still work.
        may_work = paused_at is None and not unmet
        if current_id is not None:
            if current_live and may_work and not lease_unmet:
                return Assignment.objects.for_org(org).select_related("task").get(pk=current_id)
            sql.lease_release(lease=current_id, now=now)
        if not may_work:
            return None
        sensitive_ok = project.sensitive_daily_cap is None or recent_sensitive < project.sensitive_daily_cap
        if sensitive_requirements and not sensitive_ok:
            return None
        params = {
            "org": org,
            "project": project.pk,
            "user": user,
            "now": sql.timestamp(now),
            "sensitive_ok": sensitive_ok,
            "min": project.min_judgments,
            "start": _rng.random(),
        }
        picked = _pick_normal(params, now)
        if picked is None:
            return None
        # Gold is mixed into real work only: served alone, it would be recognisable as gold.
        gold = sql.pick_gold(params=params) if project.gold_rate > 0 and _rng.random() < project.gold_rate else None
        task_id, _, _, is_started, is_sensitive = gold or picked
        return _lease(
            project,
            annotator,
            task_id,
            now,
            is_gold=gold is not None,
            sensitive=bool(sensitive_requirements or is_sensitive),
            started=bool(is_started),
        )


def _pick_normal(params: dict[str, Any], now: datetime) -> tuple | None:
    """The first eligible task with a free slot, locked; rechecked now that no one else can lease it."""
    tried: list[int] = []
    for _ in range(PICK_ATTEMPTS):
        row = sql.pick_normal(params=params, tried=tried)
        if row is None:
            return None
        task_id, judgments, extra, _, _ = row
        # The pick saw a snapshot taken before we held the lock: recount in a fresh statement.
        if judgments + sql.live_leases(task=task_id, now=now) < params["min"] + extra:
            return row
        tried.append(task_id)
    return None


def _lease(
    project: Project, annotator: Any, task_id: int, now: datetime, *, is_gold: bool, sensitive: bool, started: bool
) -> Assignment:
    assignment = Assignment(
        organization_id=project.organization_id,
        project=project,
        task_id=task_id,
        annotator=annotator,
        state=ACTIVE,
        is_gold=is_gold,
        a_left=bool(_rng.getrandbits(1)) if project.kind == ProjectKind.PAIRWISE else None,
        is_sensitive=sensitive,
        leased_at=now,
        expires_at=now + timedelta(seconds=project.lease_ttl_seconds),
        skip_reason="",
    )
    assignment.pk = sql.insert_lease(
        [
            assignment.organization_id,
            project.pk,
            task_id,
            annotator.pk,
            is_gold,
            sensitive,
            assignment.a_left,
            sql.timestamp(now),
            sql.timestamp(assignment.expires_at),
        ]
    )
    if not started:
        sql.execute("UPDATE labeling_task SET is_started = %s WHERE id = %s", [True, task_id])
    return assignment


def annotation_submit(
    *,
    assignment: Assignment,
    label: str,
    client_id: str,
    seconds: float,
    actor: Any,
    active_seconds: float | None = None,
    strength: int | None = None,
) -> Annotation:
    """Store ``actor``'s judgment on their lease and move the task towards consensus, in one transaction.

    The same ``client_id`` again (double click, retry after a timeout) returns the first annotation. A lease
    that expired, was skipped or belongs to someone else raises ``LeaseError`` and writes nothing, and so does any
    submit of an annotator whose work in the project is paused (``AnnotatorPaused``). ``seconds`` is
    the server-side time on task; ``active_seconds``, when the page measured it, the time it was visible and focused;
    ``strength`` how much better (1-3), required on a decisive judgment when the project has a strength scale.
    """
    if assignment.annotator_id != actor.pk:
        raise LeaseError("This task is leased to someone else.", code="not_yours")
    # Posted text goes into queries before it is checked: what PostgreSQL cannot hold (a NUL) is refused first.
    for name, value in (("label", label), ("client_id", client_id)):
        if isinstance(value, str) and (problem := text_problem(value)) is not None:
            raise ValidationError({name: problem})
    org = assignment.organization_id
    with transaction.atomic():
        now = timezone.now()
        row = sql.lock_lease_and_task(lease=assignment.pk, org=org, label=str(label), now=now)
        if row is None:
            raise LeaseError("This lease does not exist.", code="missing")
        (
            state,
            live,
            task_id,
            a_left,
            project_id,
            kind,
            min_j,
            max_j,
            threshold,
            scale,
            gold_label,
            label_known,
            paused_at,
        ) = row
        a_left = None if a_left is None else bool(a_left)
        if state != ACTIVE or not live:
            # A retry of a submit that already went through returns its row, whatever the lease says now.
            existing = annotation_by_client_id(organization_id=org, annotator=actor, client_id=client_id)
            if existing is not None:
                return existing
            raise _paused_error() if paused_at is not None else _lease_error(state, expired=not live)
        if paused_at is not None:
            # Refused, not stored and excluded: the lease is released by the router's next call for them.
            raise _paused_error()
        errors = annotation_errors(
            kind=kind,
            label=label,
            label_known=bool(label_known),
            client_id=client_id,
            a_left=a_left,
            seconds_on_task=seconds,
            active_seconds=active_seconds,
            strength=strength,
            strength_scale=bool(scale),
        )
        if errors:
            raise ValidationError(errors)
        annotation = Annotation(
            organization_id=org,
            project_id=project_id,
            task_id=task_id,
            annotator=actor,
            label=label,
            a_left=a_left,
            strength=strength,
            seconds_on_task=float(seconds),
            active_seconds=None if active_seconds is None else float(active_seconds),
            client_id=client_id,
            created_at=now,
        )
        annotation.pk = sql.insert_annotation(
            [
                org,
                project_id,
                task_id,
                actor.pk,
                label,
                a_left,
                strength,
                float(seconds),
                annotation.active_seconds,
                client_id,
                sql.timestamp(now),
            ]
        )
        if annotation.pk is None:
            existing = annotation_by_client_id(organization_id=org, annotator=actor, client_id=client_id)
            if existing is not None:
                return existing
            raise ValidationError({"task": "This annotator has already judged this task."})
        sql.execute(
            "UPDATE routing_assignment SET state = 'submitted', finished_at = %s WHERE id = %s",
            [sql.timestamp(now), assignment.pk],
        )
        _settle(task_id, project_id, gold_label is not None, now, min_j, max_j, threshold)
        project_stats_request_refresh(project_ids=[project_id])
    return annotation


def _settle(
    task_id: int, project_id: int, is_gold: bool, now: datetime, min_j: int, max_j: int, threshold: float
) -> None:
    """Recount the task's judgments from rows and settle its status (the caller holds the task's lock)."""
    evidence = sql.judgment_evidence(task=task_id)
    counts = dict(Counter(label for label, _ in evidence))
    if is_gold:
        sql.execute(
            "UPDATE labeling_task SET judgment_count = %s, updated_at = %s WHERE id = %s",
            [sum(counts.values()), sql.timestamp(now), task_id],
        )
        return
    status, resolution, consensus_label, extra = consensus_outcome(
        counts,
        min_judgments=min_j,
        max_judgments=max_j,
        threshold=threshold,
        posterior=_posterior(evidence, project_id) if len(evidence) >= min_j else None,
    )
    # completed_at: kept while the task stays complete, set when it becomes complete, cleared if it reopens.
    sql.execute(
        "UPDATE labeling_task SET judgment_count = %s, status = %s, resolution = %s, consensus_label = %s, "
        "extra_judgments = %s, updated_at = %s, "
        "completed_at = CASE WHEN %s THEN COALESCE(completed_at, %s) ELSE NULL END WHERE id = %s",
        [
            sum(counts.values()),
            status,
            resolution,
            consensus_label,
            extra,
            sql.timestamp(now),
            status == TaskStatus.COMPLETE,
            sql.timestamp(now),
            task_id,
        ],
    )


def _lease_error(state: str, *, expired: bool = False) -> LeaseError:
    if state == AssignmentState.SUBMITTED:
        return LeaseError("You already submitted this task.", code="already_submitted")
    if state == AssignmentState.SKIPPED:
        return LeaseError("You skipped this task.", code="skipped")
    if expired or state == AssignmentState.EXPIRED:
        return LeaseExpired(
            "Your time on this task ran out and it may have gone to someone else; nothing was saved. "
            "Open the next task to continue.",
            code="lease_expired",
        )
    return LeaseError("This lease is no longer active.", code="inactive")


def assignment_skip(*, assignment: Assignment, actor: Any, reason: str = "") -> Assignment:
    """Release ``actor``'s lease; the task is never offered to them again. Skipping twice is harmless.

    Allowed while paused (it only gives the task back). A lease that ran out may still be skipped unless the task
    was leased to them again since.
    """
    if assignment.annotator_id != actor.pk:
        raise LeaseError("This task is leased to someone else.", code="not_yours")
    with transaction.atomic():
        # Serialised with the annotator's router calls: a reload that re-leases this task after its lease ran out
        # either commits first (and this skip is refused below) or waits for the skip (and never re-leases it).
        sql.membership_lock(org=assignment.organization_id, user=actor.pk)
        lease = (
            Assignment.objects.for_org(assignment.organization_id).select_for_update(no_key=True).get(pk=assignment.pk)
        )
        if lease.state == AssignmentState.SKIPPED:
            return lease
        if lease.state == AssignmentState.SUBMITTED:
            raise _lease_error(lease.state)
        if (
            lease.state == AssignmentState.EXPIRED
            and Assignment.objects.filter(
                task_id=lease.task_id,
                annotator=actor,
                state__in=[ACTIVE, AssignmentState.SUBMITTED, AssignmentState.SKIPPED],
            ).exists()
        ):
            raise _lease_error(lease.state)
        lease.state = AssignmentState.SKIPPED
        lease.finished_at = timezone.now()
        lease.skip_reason = reason.strip()[:500]
        lease.save(update_fields=["state", "finished_at", "skip_reason"])
    return lease


def leases_expire(*, now: datetime | None = None) -> int:
    """Record leases past their expiry as expired (for the record: they stopped counting when they expired), and
    release the leases of paused annotators (their slots free at once). Returns how many leases changed.

    A pause is set outside routing (an admin on the membership, the quality engine on a score), which cannot call
    up into routing; this beat job is what frees a paused annotator's lease when they do not come back, so it
    counts at most until this job's next run (every minute) or its own expiry, whichever comes first.
    """
    now = now or timezone.now()
    expired = Assignment.objects.filter(state=ACTIVE, expires_at__lte=now).update(
        state=AssignmentState.EXPIRED, finished_at=F("expires_at")
    )
    paused_membership = Membership.objects.filter(
        organization_id=OuterRef("organization_id"), user_id=OuterRef("annotator_id"), paused_at__isnull=False
    )
    paused_score = AnnotatorScore.objects.filter(
        project_id=OuterRef("project_id"), annotator_id=OuterRef("annotator_id"), paused_at__isnull=False
    )
    released = (
        Assignment.objects.filter(state=ACTIVE)
        .filter(Exists(paused_membership) | Exists(paused_score))
        .update(state=AssignmentState.EXPIRED, finished_at=now)
    )
    return expired + released


def _posterior(evidence: list[tuple[str, Any]], project_id: int) -> dict[str, float] | None:
    """The task's Dawid-Skene posterior from the quality recompute's fitted parameters, once every judging
    annotator has been scored there (else ``None``: the vote share decides)."""
    if any(confusion is None for _, confusion in evidence):
        return None
    return _posterior_with(evidence, sql.project_priors(project=project_id))


def _posterior_with(evidence: list[tuple[str, Any]], priors: Mapping[str, float] | None) -> dict[str, float] | None:
    """``_posterior`` given the project's priors (read once for a whole batch of tasks by ``tasks_settle``)."""
    if any(confusion is None for _, confusion in evidence):
        return None
    labels = list(priors or {})
    if not labels or any(label not in labels for label, _ in evidence):
        return None
    confusions = [confusion for _, confusion in evidence]
    if any(len(confusion) != len(labels) for confusion in confusions):
        return None  # the project's labels changed since the recompute
    given = [labels.index(label) for label, _ in evidence]
    probabilities = metrics.task_posterior(given, confusions, [priors[label] for label in labels])  # type: ignore[index]
    return dict(zip(labels, probabilities.tolist(), strict=True))


def consensus_outcome(
    counts: Mapping[str, int],
    *,
    min_judgments: int,
    max_judgments: int,
    threshold: float,
    posterior: Mapping[str, float] | None = None,
) -> tuple[str, str, str | None, int]:
    """(status, resolution, consensus label, extra judgments) of a normal task with these label counts.

    Below ``min_judgments`` the task stays open. From there, a unique leading label whose share reaches
    ``threshold`` completes it; a tie for the lead never does. When the quality engine has scored every judging
    annotator, ``posterior`` (Dawid-Skene) replaces the vote share: its most probable label completes the task once
    its probability reaches ``threshold``, so two skilled annotators can settle what three careless ones cannot.
    Otherwise it asks for one more judgment, until ``max_judgments``, where it completes with "no consensus".
    """
    n = sum(counts.values())
    if n < min_judgments:
        return TaskStatus.OPEN, TaskResolution.NONE, None, 0
    if posterior:
        ranked_posterior = sorted(posterior.items(), key=lambda item: -item[1])
        leader, probability = ranked_posterior[0]
        unique = len(ranked_posterior) == 1 or probability > ranked_posterior[1][1]
        if unique and probability >= threshold:
            return TaskStatus.COMPLETE, TaskResolution.CONSENSUS, leader, max(0, n - min_judgments)
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    leader, top = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0
    if posterior is None and top > runner_up and top / n >= threshold:
        return TaskStatus.COMPLETE, TaskResolution.CONSENSUS, leader, max(0, n - min_judgments)
    if n >= max_judgments:
        return TaskStatus.COMPLETE, TaskResolution.NO_CONSENSUS, None, max(0, n - min_judgments)
    return TaskStatus.OPEN, TaskResolution.NONE, None, n + 1 - min_judgments


def task_progress_refresh(*, task: Task, project: Project) -> Task:
    """Recount ``task``'s judgments from rows and settle its status (after a judgment is deleted, say).

    Takes the task's row lock, like every change to a task's judgments.
    """
    with transaction.atomic():
        locked = Task.objects.for_org(task.organization_id).select_for_update(no_key=True).get(pk=task.pk)
        _settle(
            locked.pk,
            locked.project_id,
            locked.is_gold,
            timezone.now(),
            project.min_judgments,
            project.max_judgments,
            project.consensus_threshold,
        )
    task.refresh_from_db()
    return task


def tasks_settle(*, project: Project, task_ids: Collection[int], now: datetime | None = None) -> None:
    """Recount and settle many of ``project``'s tasks at once, exactly as a submit settles one (``_settle``): for a
    bulk import of judgments, where a query or two per task was the import's whole cost.

    Takes the tasks' row locks in id order (a caller that changed their judgments holds them already), reads every
    task's judgments with their annotators' fitted confusion matrices in one query, decides each task with
    ``consensus_outcome`` (the Dawid-Skene posterior once every judging annotator is scored; the project's priors
    read once) and writes them all with one ``UPDATE … FROM`` the list of outcomes; gold tasks get their count only,
    and ``completed_at`` follows ``_settle``'s rule. Runs inside the caller's transaction, if any.
    """
    ids = sorted(set(task_ids))
    if not ids:
        return
    now = now or timezone.now()
    with transaction.atomic():
        gold = _tasks_lock(project.pk, ids)
        evidence = _batch_evidence(list(gold))
        priors: list[Mapping[str, float] | None] = []  # read on first need, once
        settled: list[Settled] = []
        for task_id, is_gold in gold.items():
            judged = evidence.get(task_id, [])
            if is_gold:
                settled.append((task_id, len(judged), None, None, None, None, True))
                continue
            posterior = None
            if len(judged) >= project.min_judgments and all(confusion is not None for _, confusion in judged):
                if not priors:
                    priors.append(sql.project_priors(project=project.pk))
                posterior = _posterior_with(judged, priors[0])
            status, resolution, consensus_label, extra = consensus_outcome(
                dict(Counter(label for label, _ in judged)),
                min_judgments=project.min_judgments,
                max_judgments=project.max_judgments,
                threshold=project.consensus_threshold,
                posterior=posterior,
            )
            settled.append((task_id, len(judged), status, resolution, consensus_label, extra, False))
        _tasks_settled_write(settled, now)


# (task id, judgments, status, resolution, consensus label, extra judgments, is gold)
Settled = tuple[int, int, str | None, str | None, str | None, int | None, bool]
SETTLE_WRITE_ROWS = 2_000  # SQLite: tasks per UPDATE (7 parameters each stays below its 32,766)


def _placeholders(values: list[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def _int_array(values: list[int]) -> str:
    """A PostgreSQL array literal of whole numbers, as one text parameter: the driver would adapt a list element by
    element in Python, which cost more than the statements it feeds."""
    return "{" + ",".join(map(str, values)) + "}"


def _tasks_lock(project_id: int, task_ids: list[int]) -> dict[int, bool]:
    """Lock the project's tasks among ``task_ids`` in id order; whether each is gold. Found by primary key alone
    (one array parameter on PostgreSQL), so that no plan can read the whole project; rows of another project (the
    caller resolved the ids in the organization's project, so there are none) are left alone."""
    if connection.vendor == "postgresql":
        query = (
            "SELECT id, project_id, gold_label FROM labeling_task WHERE id = ANY(%s::int8[]) ORDER BY id "
            "FOR NO KEY UPDATE"
        )
        params: list[Any] = [_int_array(task_ids)]
    else:  # SQLite serialises writers: nothing to lock
        query = f"SELECT id, project_id, gold_label FROM labeling_task WHERE id IN ({_placeholders(task_ids)})"  # noqa: S608
        params = task_ids
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        rows = sorted(cursor.fetchall())
    return {task_id: gold_label is not None for task_id, project, gold_label in rows if project == project_id}


# Each task's judgments are a lookup of their own (a LATERAL subquery behind OFFSET 0, which the planner keeps as
# it is): right after a bulk import the table has no statistics yet, and a plan for the whole list of tasks could
# read all of it, once per batch.
_EVIDENCE_POSTGRES = """
SELECT a.task_id, a.label, s.confusion
FROM unnest(%s::int8[]) AS k(task_id)
CROSS JOIN LATERAL (
  SELECT j.task_id, j.label, j.project_id, j.annotator_id FROM labeling_annotation j
  WHERE j.task_id = k.task_id OFFSET 0
) AS a
LEFT JOIN quality_annotatorscore s ON s.project_id = a.project_id AND s.annotator_id = a.annotator_id"""
_EVIDENCE = """
SELECT a.task_id, a.label, s.confusion FROM labeling_annotation a
LEFT JOIN quality_annotatorscore s ON s.project_id = a.project_id AND s.annotator_id = a.annotator_id
WHERE a.task_id IN ({placeholders})"""


def _batch_evidence(task_ids: list[int]) -> dict[int, list[tuple[str, Any]]]:
    """``sql.judgment_evidence`` for many tasks in one query: per task, each judgment's label with its annotator's
    confusion matrix (``None`` if not scored)."""
    if not task_ids:
        return {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_EVIDENCE_POSTGRES, [_int_array(task_ids)])
        else:
            cursor.execute(_EVIDENCE.format(placeholders=_placeholders(task_ids)), task_ids)
        rows = cursor.fetchall()
    evidence: dict[int, list[tuple[str, Any]]] = {}
    for task_id, label, confusion in rows:
        # SQLite hands JSON over as text; PostgreSQL's driver decodes it.
        scored = json.loads(confusion) if isinstance(confusion, str) else confusion
        evidence.setdefault(task_id, []).append((label, scored))
    return evidence


_SETTLED_WRITE = """
UPDATE labeling_task SET
  judgment_count = v.n,
  status = CASE WHEN v.gold THEN labeling_task.status ELSE v.status END,
  resolution = CASE WHEN v.gold THEN labeling_task.resolution ELSE v.resolution END,
  consensus_label = CASE WHEN v.gold THEN labeling_task.consensus_label ELSE v.label END,
  extra_judgments = CASE WHEN v.gold THEN labeling_task.extra_judgments ELSE v.extra END,
  completed_at = CASE
    WHEN v.gold THEN labeling_task.completed_at
    WHEN v.status = %s THEN COALESCE(labeling_task.completed_at, %s)
    ELSE NULL END,
  updated_at = %s
FROM {source}
WHERE labeling_task.id = v.id"""
# PostgreSQL: the outcomes as one JSON parameter (orjson writes it; the driver would adapt seven lists element by
# element). Elsewhere: rows of VALUES, whose columns are named column1…column7. A gold task keeps its status,
# resolution, label, extra judgments and completed_at.
_SETTLED_JSON = (
    "json_to_recordset(%s::json) AS v(id int8, n int4, status text, resolution text, label text, extra int4, gold bool)"
)
_SETTLED_VALUES = (
    "(SELECT column1 AS id, column2 AS n, column3 AS status, column4 AS resolution, column5 AS label, "
    "column6 AS extra, column7 AS gold FROM (VALUES {rows}) AS settled_values) AS v"
)


def _tasks_settled_write(settled: list[Settled], now: datetime) -> None:
    """Write every settled task in one ``UPDATE … FROM`` the outcomes (on SQLite, in pieces of
    ``SETTLE_WRITE_ROWS``): what ``_settle``'s UPDATEs write, for each task."""
    stamp = sql.timestamp(now)
    head = [TaskStatus.COMPLETE.value, stamp, stamp]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            names = ("id", "n", "status", "resolution", "label", "extra", "gold")
            outcomes = orjson.dumps([dict(zip(names, row, strict=True)) for row in settled]).decode()
            cursor.execute(_SETTLED_WRITE.format(source=_SETTLED_JSON), [*head, outcomes])
            return
        for start in range(0, len(settled), SETTLE_WRITE_ROWS):
            chunk = settled[start : start + SETTLE_WRITE_ROWS]
            source = _SETTLED_VALUES.format(rows=", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk)))
            cursor.execute(_SETTLED_WRITE.format(source=source), head + [value for row in chunk for value in row])

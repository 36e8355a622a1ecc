"""Leases: hand out the next task, take judgments, skip, and expire.

Correctness under concurrency rests on one rule: **every change to a task's leases or judgments happens while
holding that task's row lock.** ``next_task`` takes it with ``SELECT … FOR NO KEY UPDATE SKIP LOCKED`` (on
PostgreSQL; SQLite serialises writers with ``BEGIN IMMEDIATE``), then recounts the task's judgments and live
leases in a fresh statement before leasing it, so no number of concurrent callers can exceed a task's overlap.
A lease counts only while ``expires_at`` is in the future, so an abandoned lease frees its slot the moment it
expires; ``leases_expire`` only records the state afterwards. Calls of one annotator (``next_task`` and
``lease_skip``) are serialised on their membership row, locked in a statement of its own so that what they
read next is fresh: two tabs opening the page at once get the same lease. Partial unique indexes make a second
active lease or a second lease of the same task for one annotator impossible even so.

A paused annotator (membership, or quality in the project) is refused at submit and gets no task; ``next_task``
releases the lease they held and ``leases_expire`` (beat) releases the leases of those who do not come back.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from labeling.db import json_text, timestamp
from labeling.models import (
    Membership,
    Project,
    ProjectKind,
)
from labeling.questions import K_RESPONSE_KINDS, MAX_RESPONSES
from quality.models import AnnotatorScore
from routing import sql
from routing.models import Lease, LeaseState

ACTIVE = LeaseState.ACTIVE
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


def paused_error() -> AnnotatorPaused:
    return AnnotatorPaused(
        "Your work in this project is paused, so this judgment was not saved. Please contact your project manager.",
        code="paused",
    )


def next_task(*, annotator: Any, project: Project) -> Lease | None:
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
        # The pause and the requirements come first: a lease is handed back only while its holder may still work.
        may_work = state.paused_at is None and not state.project_unmet
        if state.lease_id is not None:
            if state.lease_live and may_work and not state.lease_unmet:
                return Lease.objects.for_org(org).select_related("task").get(pk=state.lease_id)
            sql.lease_release(lease=state.lease_id, now=now)
        if not may_work:
            return None
        sensitive_ok = project.sensitive_daily_cap is None or state.recent_sensitive < project.sensitive_daily_cap
        if state.sensitive_requirements and not sensitive_ok:
            return None
        params = {
            "org": org,
            "project": project.pk,
            "user": user,
            "now": timestamp(now),
            "sensitive_ok": sensitive_ok,
            "min": project.min_judgments,
            "start": _rng.random(),
        }
        picked = _pick_normal(params, now)
        if picked is None:
            return None
        # Gold is mixed into real work only: served alone, it would be recognisable as gold.
        gold = sql.pick_gold(params=params) if project.gold_rate > 0 and _rng.random() < project.gold_rate else None
        chosen = gold or picked
        return _lease(
            project,
            annotator,
            chosen.task_id,
            now,
            is_gold=gold is not None,
            sensitive=bool(state.sensitive_requirements or chosen.is_sensitive),
            started=bool(chosen.is_started),
        )


def _pick_normal(params: dict[str, Any], now: datetime) -> sql.TaskCandidate | None:
    """The first eligible task with a free slot, locked; rechecked now that no one else can lease it."""
    tried: list[int] = []
    for _ in range(PICK_ATTEMPTS):
        row = sql.pick_normal(params=params, tried=tried)
        if row is None:
            return None
        # The pick saw a snapshot taken before we held the lock: recount in a fresh statement.
        if row.judgment_count + sql.live_leases(task=row.task_id, now=now) < params["min"] + row.extra_judgments:
            return row
        tried.append(row.task_id)
    return None


def _lease(
    project: Project, annotator: Any, task_id: int, now: datetime, *, is_gold: bool, sensitive: bool, started: bool
) -> Lease:
    lease = Lease(
        organization_id=project.organization_id,
        project=project,
        task_id=task_id,
        annotator=annotator,
        state=ACTIVE,
        is_gold=is_gold,
        a_left=bool(_rng.getrandbits(1)) if project.kind == ProjectKind.PAIRWISE else None,
        response_order=_rng.sample(range(MAX_RESPONSES), MAX_RESPONSES) if project.kind in K_RESPONSE_KINDS else None,
        is_sensitive=sensitive,
        leased_at=now,
        expires_at=now + timedelta(seconds=project.lease_ttl_seconds),
        skip_reason="",
    )
    lease.pk = sql.insert_lease(
        [
            lease.organization_id,
            project.pk,
            task_id,
            annotator.pk,
            is_gold,
            sensitive,
            lease.a_left,
            json_text(lease.response_order),
            timestamp(now),
            timestamp(lease.expires_at),
        ]
    )
    if not started:
        sql.task_mark_started(task=task_id)
    return lease


def lease_error(state: str, *, expired: bool = False) -> LeaseError:
    if state == LeaseState.SUBMITTED:
        return LeaseError("You already submitted this task.", code="already_submitted")
    if state == LeaseState.SKIPPED:
        return LeaseError("You skipped this task.", code="skipped")
    if expired or state == LeaseState.EXPIRED:
        return LeaseExpired(
            "Your time on this task ran out and it may have gone to someone else; nothing was saved. "
            "Open the next task to continue.",
            code="lease_expired",
        )
    return LeaseError("This lease is no longer active.", code="inactive")


def lease_skip(*, lease: Lease, actor: Any, reason: str = "") -> Lease:
    """Release ``actor``'s lease; the task is never offered to them again. Skipping twice is harmless.

    Allowed while paused (it only gives the task back). A lease that ran out may still be skipped unless the task
    was leased to them again since.
    """
    if lease.annotator_id != actor.pk:
        raise LeaseError("This task is leased to someone else.", code="not_yours")
    with transaction.atomic():
        # Serialised with the annotator's router calls: a reload that re-leases this task after its lease ran out
        # either commits first (and this skip is refused below) or waits for the skip (and never re-leases it).
        sql.membership_lock(org=lease.organization_id, user=actor.pk)
        lease = Lease.objects.for_org(lease.organization_id).select_for_update(no_key=True).get(pk=lease.pk)
        if lease.state == LeaseState.SKIPPED:
            return lease
        if lease.state == LeaseState.SUBMITTED:
            raise lease_error(lease.state)
        if (
            lease.state == LeaseState.EXPIRED
            and Lease.objects.filter(
                task_id=lease.task_id,
                annotator=actor,
                state__in=[ACTIVE, LeaseState.SUBMITTED, LeaseState.SKIPPED],
            ).exists()
        ):
            raise lease_error(lease.state)
        lease.state = LeaseState.SKIPPED
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
    expired = Lease.objects.filter(state=ACTIVE, expires_at__lte=now).update(
        state=LeaseState.EXPIRED, finished_at=F("expires_at")
    )
    paused_membership = Membership.objects.filter(
        organization_id=OuterRef("organization_id"), user_id=OuterRef("annotator_id"), paused_at__isnull=False
    )
    paused_score = AnnotatorScore.objects.filter(
        project_id=OuterRef("project_id"), annotator_id=OuterRef("annotator_id"), paused_at__isnull=False
    )
    released = (
        Lease.objects.filter(state=ACTIVE)
        .filter(Exists(paused_membership) | Exists(paused_score))
        .update(state=LeaseState.EXPIRED, finished_at=now)
    )
    return expired + released

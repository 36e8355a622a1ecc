"""The router's hot path in SQL: a handful of short statements per call, portable to PostgreSQL and SQLite.

What this annotator already judged, skipped or holds is excluded with ``NOT IN`` over their own rows in the
project (hashed once per statement), not probed per candidate: with fewer annotators than a task's overlap, every
task they judged stays open and first in line, and the pick walks past all of them.

Written by hand rather than through the ORM because building querysets cost ~10x more CPU than PostgreSQL spent
running them (bench/routing.py). Every statement that searches names its tenant (``organization_id``); the
others update or count rows by the id of a lease or task already found in the tenant. They use the indexes
declared on the models (``task_route_pick``, ``task_route_gold``, ``assignment_task_active`` and the partial
unique indexes). On PostgreSQL the pick takes ``FOR NO KEY UPDATE … SKIP LOCKED``; on SQLite the whole
transaction already holds the database's single write lock (``BEGIN IMMEDIATE``).

All of routing's hand-written SQL lives here. Rows come back as named tuples (``AnnotatorState``,
``TaskCandidate``, ``LeaseAndTask``) made from the cursor's plain tuples, so the prepared statements stay as
they are; callers read fields by name, and a ``SELECT`` whose columns no longer match its row type fails loudly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from labeling.db import execute, fetch_one, is_postgres, timestamp
from routing.models import LeaseState

# A grant that satisfies requirement ``r`` for annotator %(user)s right now: held at the level, unexpired, and
# for sensitivity clearances opted in.
_GRANT_SATISFIES = """
    SELECT 1 FROM routing_annotatorqualification g
    JOIN routing_qualification q ON q.id = g.qualification_id
    WHERE g.qualification_id = r.qualification_id AND g.annotator_id = %(user)s AND g.level >= r.min_level
      AND (g.expires_at IS NULL OR g.expires_at > %(now)s) AND (q.kind <> 'sensitivity' OR g.opted_in)
"""

# Serialises one annotator's router calls (two tabs, a double click). Taken in a statement of its own: in READ
# COMMITTED a statement that waited for a row lock re-checks only the locked row, with every other table as of its
# snapshot, so a lease committed by the call we waited for would be invisible to it (and leased a second time).
_LOCK_MEMBERSHIP = """
SELECT 1 FROM labeling_membership m WHERE m.organization_id = %(org)s AND m.user_id = %(user)s FOR NO KEY UPDATE
"""

# Read after the lock, in a fresh statement: sees everything the annotator's previous call committed.
_ANNOTATOR_STATE = f"""
SELECT COALESCE(m.paused_at, (SELECT s.paused_at FROM quality_annotatorscore s
                               WHERE s.project_id = %(project)s AND s.annotator_id = %(user)s)) AS paused_at,
       a.id, a.expires_at > %(now)s AS live,
       CASE WHEN a.id IS NULL THEN 0 ELSE (
         SELECT count(*) FROM routing_taskrequirement r
         WHERE r.task_id = a.task_id AND NOT EXISTS ({_GRANT_SATISFIES})) END AS lease_unmet,
       (SELECT count(*) FROM routing_projectrequirement r
         WHERE r.project_id = %(project)s AND NOT EXISTS ({_GRANT_SATISFIES})) AS unmet,
       (SELECT count(*) FROM routing_projectrequirement r
         JOIN routing_qualification q ON q.id = r.qualification_id
         WHERE r.project_id = %(project)s AND q.kind = 'sensitivity') AS sensitive_requirements,
       (SELECT count(*) FROM routing_assignment s
         WHERE s.project_id = %(project)s AND s.annotator_id = %(user)s AND s.is_sensitive
           AND s.leased_at > %(since)s) AS recent_sensitive
FROM labeling_membership m
LEFT JOIN routing_assignment a
  ON a.project_id = %(project)s AND a.annotator_id = m.user_id AND a.state = 'active'
WHERE m.organization_id = %(org)s AND m.user_id = %(user)s
"""

_ELIGIBLE = f"""
FROM labeling_task t
WHERE t.organization_id = %(org)s AND t.project_id = %(project)s AND t.status = 'open' AND {{kind}}
  AND (NOT t.is_restricted OR NOT EXISTS (
        SELECT 1 FROM routing_taskrequirement r WHERE r.task_id = t.id AND NOT EXISTS ({_GRANT_SATISFIES})))
  AND (%(sensitive_ok)s OR NOT t.is_sensitive)
  AND t.id NOT IN (SELECT x.task_id FROM labeling_annotation x
                   WHERE x.organization_id = %(org)s AND x.annotator_id = %(user)s AND x.project_id = %(project)s)
"""

_LIVE_LEASES = (
    "SELECT count(*) FROM routing_assignment l WHERE l.task_id = {task} AND l.state = 'active' AND l.expires_at > {now}"
)

_PICK_NORMAL = f"""
SELECT t.id, t.judgment_count, t.extra_judgments, t.is_started, t.is_sensitive
{_ELIGIBLE.format(kind="t.gold_label IS NULL")}
  AND t.judgment_count < %(min)s + t.extra_judgments
  AND t.id NOT IN (SELECT a.task_id FROM routing_assignment a
                   WHERE a.organization_id = %(org)s AND a.project_id = %(project)s AND a.annotator_id = %(user)s
                     AND a.state IN ('active', 'submitted', 'skipped'))
  AND t.id NOT IN ({{tried}})
  AND t.judgment_count + ({_LIVE_LEASES.format(task="t.id", now="%(now)s")}) < %(min)s + t.extra_judgments
ORDER BY t.is_started DESC, t.rank, t.id
LIMIT 1
"""

# Gold: never shown to this annotator before in any state; a random starting point of the shuffle order.
_PICK_GOLD = f"""
SELECT t.id, t.judgment_count, t.extra_judgments, t.is_started, t.is_sensitive
{_ELIGIBLE.format(kind="t.gold_label IS NOT NULL")}
  AND NOT EXISTS (SELECT 1 FROM routing_assignment a WHERE a.task_id = t.id AND a.annotator_id = %(user)s)
  AND t.shuffle {{direction}} %(start)s
ORDER BY t.shuffle
LIMIT 1
"""

_INSERT_LEASE = """
INSERT INTO routing_assignment
  (organization_id, project_id, task_id, annotator_id, state, is_gold, is_sensitive, a_left, response_order,
   leased_at, expires_at, skip_reason)
VALUES (%s, %s, %s, %s, 'active', %s, %s, %s, %s{json}, %s, %s, '')
RETURNING id
"""

# A lease is released (recorded as expired, so its slot frees at once) only while it is still active: a skip or a
# submit that committed first keeps its state.
_RELEASE_LEASE = """
UPDATE routing_assignment SET state = 'expired', finished_at = CASE WHEN expires_at < %(now)s THEN expires_at
                                                                    ELSE %(now)s END
WHERE id = %(id)s AND state = 'active'
"""

_LOCK_LEASE_AND_TASK = """
SELECT a.state, a.expires_at > %(now)s AS live, a.task_id, a.a_left, a.response_order, a.project_id,
       p.kind, p.min_judgments, p.max_judgments, p.consensus_threshold, p.strength_scale, t.gold_label,
       (SELECT count(*) FROM labeling_label lb WHERE lb.project_id = a.project_id AND lb.value = %(label)s),
       COALESCE((SELECT m.paused_at FROM labeling_membership m
                 WHERE m.organization_id = a.organization_id AND m.user_id = a.annotator_id),
                (SELECT s.paused_at FROM quality_annotatorscore s
                 WHERE s.project_id = a.project_id AND s.annotator_id = a.annotator_id)) AS paused_at,
       (SELECT count(*) FROM labeling_question q WHERE q.project_id = a.project_id) AS questions
FROM routing_assignment a
JOIN labeling_project p ON p.id = a.project_id
JOIN labeling_task t ON t.id = a.task_id
WHERE a.id = %(id)s AND a.organization_id = %(org)s
"""

# Only after the judgment was stored, under the task's row lock: the lease's end is the judgment's time.
_SUBMIT_LEASE = "UPDATE routing_assignment SET state = %s, finished_at = %s WHERE id = %s"

_MARK_TASK_STARTED = "UPDATE labeling_task SET is_started = %s WHERE id = %s"

_INSERT_ANNOTATION = """
INSERT INTO labeling_annotation
  (organization_id, project_id, task_id, annotator_id, label, a_left, strength, answers, response_order,
   seconds_on_task, active_seconds, client_id, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s{json}, %s{json}, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
RETURNING id
"""


class AnnotatorState(NamedTuple):
    """What ``next_task`` decides on, read in one statement after the membership lock (``annotator_state``).

    As in every row here, a boolean comes back from SQLite as 0 or 1.
    """

    paused_at: datetime | None  # the membership's pause, else the quality pause in this project
    lease_id: int | None  # the annotator's active lease in the project, if any
    lease_live: bool | None  # that lease has not expired (``None`` without one)
    lease_unmet: int  # that lease's task requirements the annotator no longer meets
    project_unmet: int  # the project's requirements the annotator does not meet
    sensitive_requirements: int  # the project's requirements that are sensitivity clearances
    recent_sensitive: int  # sensitive leases the annotator took in the project within the window


class TaskCandidate(NamedTuple):
    """A task the pick found (``pick_normal``, ``pick_gold``), with what the recount and the lease need."""

    task_id: int
    judgment_count: int
    extra_judgments: int
    is_started: bool
    is_sensitive: bool


class LeaseAndTask(NamedTuple):
    """A lease being submitted, with its project's rules, its task's gold label and the annotator's pause."""

    state: str
    live: bool  # not expired at the submit's ``now``
    task_id: int
    a_left: bool | None  # pairwise: response A was shown on the left
    response_order: Any  # ranking and rating: the lease's permutation of 0-8 (JSON; text on SQLite)
    project_id: int
    kind: str
    min_judgments: int
    max_judgments: int
    consensus_threshold: float
    strength_scale: bool
    gold_label: str | None
    label_known: int  # how many of the project's labels have the posted value (0 or 1)
    paused_at: datetime | None  # the membership's pause, else the quality pause in this project
    questions: int  # the project's stored questions (0: the implied single question, no answers)


def _json_cast() -> str:
    """A JSON parameter (sent as text) into a ``jsonb`` column on PostgreSQL; SQLite stores the text."""
    return "::jsonb" if is_postgres() else ""


def membership_lock(*, org: int, user: int) -> None:
    """Lock the annotator's membership row until the transaction ends: their router calls run one at a time.

    PostgreSQL only; on SQLite the transaction already holds the database's single write lock (``BEGIN
    IMMEDIATE``), so every statement after it sees what earlier calls committed.
    """
    if is_postgres():
        execute(_LOCK_MEMBERSHIP, {"org": org, "user": user})


def annotator_state(*, org: int, project: int, user: int, now: datetime, since: datetime) -> AnnotatorState | None:
    """The annotator's pause, active lease (and whether its task still admits them) and gating counts.

    ``None`` when the user is not a member. Call after ``membership_lock``: as a statement of its own it sees the
    lease a concurrent call of the same annotator committed while this one waited for the lock.
    """
    row = fetch_one(
        _ANNOTATOR_STATE,
        {"org": org, "project": project, "user": user, "now": timestamp(now), "since": timestamp(since)},
    )
    return None if row is None else AnnotatorState._make(row)


def lease_release(*, lease: int, now: datetime) -> int:
    """Record an active lease as expired now (or at its expiry, if that came first); 0 if it is no longer active."""
    return execute(_RELEASE_LEASE, {"id": lease, "now": timestamp(now)})


def pick_normal(*, params: dict[str, Any], tried: Sequence[int]) -> TaskCandidate | None:
    """The first eligible normal task with a free slot in routing order, row-locked (others skip it)."""
    sql = _PICK_NORMAL.format(tried=", ".join(str(int(pk)) for pk in tried) or "0")
    if is_postgres():
        sql += " FOR NO KEY UPDATE OF t SKIP LOCKED"
    row = fetch_one(sql, params)
    return None if row is None else TaskCandidate._make(row)


def pick_gold(*, params: dict[str, Any]) -> TaskCandidate | None:
    """A random gold task this annotator has never been shown (no lock: gold has no overlap limit).

    The shuffle order from a random start, wrapping around to its beginning when nothing lies after the start.
    """
    row = fetch_one(_PICK_GOLD.format(direction=">="), params) or fetch_one(_PICK_GOLD.format(direction="<"), params)
    return None if row is None else TaskCandidate._make(row)


def live_leases(*, task: int, now: datetime) -> int:
    """The task's leases that count against its overlap now (the pick's own subquery, run on its own)."""
    row = fetch_one(_LIVE_LEASES.format(task="%s", now="%s"), [task, timestamp(now)])
    return int(row[0]) if row else 0


def insert_lease(values: Sequence[Any]) -> int:
    """The new active lease's id; ``values`` in ``_INSERT_LEASE``'s column order (a partial unique index refuses
    a second active lease of the annotator in the project)."""
    row = fetch_one(_INSERT_LEASE.format(json=_json_cast()), values)
    assert row is not None
    return int(row[0])


def lock_lease_and_task(*, lease: int, org: int, label: str, now: datetime) -> LeaseAndTask | None:
    """The lease with its project's rules, its task's gold label and the annotator's pause (membership or quality,
    ``None`` if neither); lease and task rows locked. ``None`` when the organization has no such lease."""
    sql = _LOCK_LEASE_AND_TASK + (" FOR NO KEY UPDATE OF a, t" if is_postgres() else "")
    row = fetch_one(sql, {"id": lease, "org": org, "label": label, "now": timestamp(now)})
    return None if row is None else LeaseAndTask._make(row)


def lease_submit(*, lease: int, now: datetime) -> int:
    """Record the lease as submitted at ``now``. No guard on its state: the caller locked the lease
    (``lock_lease_and_task``), found it active and stored its judgment in the same transaction."""
    return execute(_SUBMIT_LEASE, [LeaseState.SUBMITTED.value, timestamp(now), lease])


def task_mark_started(*, task: int) -> int:
    """Flag the task as started on its first lease: the pick serves started tasks first (``ORDER BY t.is_started
    DESC``) so they reach consensus before new ones are opened. The caller holds the task's row lock."""
    return execute(_MARK_TASK_STARTED, [True, task])


def insert_judgment(values: Sequence[Any]) -> int | None:
    """The new judgment's id, or ``None`` when a unique constraint (client id, task and annotator) refused it."""
    row = fetch_one(_INSERT_ANNOTATION.format(json=_json_cast()), values)
    return int(row[0]) if row else None

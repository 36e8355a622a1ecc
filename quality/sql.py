"""Settling's SQL (``quality.consensus``): the judgments of tasks with their annotators' fitted confusion
matrices, the project's priors, and the settled outcomes written back in one statement. Portable to PostgreSQL and
SQLite; every statement finds its rows by primary key or by the task, inside the caller's organization.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import orjson
from django.db import connection

from labeling.db import fetch_one, int_array, is_postgres, json_value, placeholders, raw_cursor, timestamp
from labeling.models import TaskStatus


class Evidence(NamedTuple):
    """One judgment as settling weighs it: its label and its annotator's confusion matrix (``None``: not scored)."""

    label: str
    confusion: Any


class Settled(NamedTuple):
    """A task's settled outcome; a gold task gets its count only."""

    task_id: int
    judgments: int
    status: str | None
    resolution: str | None
    consensus_label: str | None
    extra_judgments: int | None
    is_gold: bool


SETTLE_WRITE_ROWS = 2_000  # SQLite: tasks per UPDATE (7 parameters each stays below its 32,766)


def tasks_lock(project_id: int, task_ids: list[int]) -> dict[int, bool]:
    """Lock the project's tasks among ``task_ids`` in id order; whether each is gold. Found by primary key alone
    (one array parameter on PostgreSQL), so that no plan can read the whole project; rows of another project (the
    caller resolved the ids in the organization's project, so there are none) are left alone."""
    if is_postgres():
        query = (
            "SELECT id, project_id, gold_label FROM labeling_task WHERE id = ANY(%s::int8[]) ORDER BY id "
            "FOR NO KEY UPDATE"
        )
        params: list[Any] = [int_array(task_ids)]
    else:  # SQLite serialises writers: nothing to lock
        query = f"SELECT id, project_id, gold_label FROM labeling_task WHERE id IN ({placeholders(task_ids)})"  # noqa: S608
        params = task_ids
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        rows = sorted(cursor.fetchall())
    return {task_id: gold_label is not None for task_id, project, gold_label in rows if project == project_id}


class Judged(NamedTuple):
    """A judgment of a task as settling reads it, with who made it and its id (an import tells new from old)."""

    task_id: int
    annotator_id: int
    id: int
    label: str
    confusion: Any


# Each task's judgments are a lookup of their own (a LATERAL subquery behind OFFSET 0, which the planner keeps as
# it is): right after a bulk import the table has no statistics yet, and a plan for the whole list of tasks could
# read all of it, once per batch.
_JUDGED_POSTGRES = """
SELECT a.task_id, a.annotator_id, a.id, a.label, s.confusion
FROM unnest(%s::int8[]) AS k(task_id)
CROSS JOIN LATERAL (
  SELECT j.id, j.task_id, j.label, j.project_id, j.annotator_id FROM labeling_annotation j
  WHERE j.task_id = k.task_id OFFSET 0
) AS a
LEFT JOIN quality_annotatorscore s ON s.project_id = a.project_id AND s.annotator_id = a.annotator_id"""


_JUDGED = """
SELECT a.task_id, a.annotator_id, a.id, a.label, s.confusion FROM labeling_annotation a
LEFT JOIN quality_annotatorscore s ON s.project_id = a.project_id AND s.annotator_id = a.annotator_id
WHERE a.task_id IN ({placeholders})"""


def tasks_judged(task_ids: list[int]) -> list[Judged]:
    """Every judgment of the tasks ``task_ids`` (found by task: the caller's, inside its organization) with its
    annotator's confusion matrix (``None`` if not scored), in one query."""
    if not task_ids:
        return []
    with connection.cursor() as cursor:
        if is_postgres():
            cursor.execute(_JUDGED_POSTGRES, [int_array(task_ids)])
        else:
            cursor.execute(_JUDGED.format(placeholders=placeholders(task_ids)), task_ids)
        rows = cursor.fetchall()
    return [Judged(task, annotator, pk, label, json_value(confusion)) for task, annotator, pk, label, confusion in rows]


def batch_evidence(task_ids: list[int]) -> dict[int, list[Evidence]]:
    """``sql.judgment_evidence`` for many tasks in one query: per task, each judgment's label with its annotator's
    confusion matrix (``None`` if not scored)."""
    evidence: dict[int, list[Evidence]] = {}
    for judged in tasks_judged(task_ids):
        evidence.setdefault(judged.task_id, []).append(Evidence(judged.label, judged.confusion))
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


def tasks_settled_write(settled: list[Settled], now: datetime) -> None:
    """Write every settled task in one ``UPDATE … FROM`` the outcomes (on SQLite, in pieces of
    ``SETTLE_WRITE_ROWS``): what ``_settle``'s UPDATEs write, for each task."""
    stamp = timestamp(now)
    head = [TaskStatus.COMPLETE.value, stamp, stamp]
    with connection.cursor() as cursor:
        if is_postgres():
            names = ("id", "n", "status", "resolution", "label", "extra", "gold")
            outcomes = orjson.dumps([dict(zip(names, row, strict=True)) for row in settled]).decode()
            cursor.execute(_SETTLED_WRITE.format(source=_SETTLED_JSON), [*head, outcomes])
            return
        for start in range(0, len(settled), SETTLE_WRITE_ROWS):
            chunk = settled[start : start + SETTLE_WRITE_ROWS]
            source = _SETTLED_VALUES.format(rows=", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk)))
            cursor.execute(_SETTLED_WRITE.format(source=source), head + [value for row in chunk for value in row])


def judgment_evidence(*, task: int) -> list[Evidence]:
    """Each judgment's label with its annotator's stored Dawid-Skene confusion matrix (``None`` if not scored)."""
    sql = """
SELECT a.label, s.confusion FROM labeling_annotation a
LEFT JOIN quality_annotatorscore s ON s.project_id = a.project_id AND s.annotator_id = a.annotator_id
WHERE a.task_id = %s"""
    with raw_cursor(sql, [task]) as cursor:
        return [Evidence(label, json_value(confusion)) for label, confusion in cursor.fetchall()]


def project_priors(*, project: int) -> dict[str, float] | None:
    """The class priors of the project's latest quality snapshot, label -> prior, in label order."""
    row = fetch_one(
        "SELECT priors FROM quality_projectquality WHERE project_id = %s ORDER BY computed_at DESC, id DESC LIMIT 1",
        [project],
    )
    return json_value(row[0]) if row else None

"""Reads for quality: a project's tasks and judgments as numpy arrays, and the stored results.

Tasks and judgments come from one query each whose columns are numbers (labels and display order are turned into
codes by the database; model names excepted). On PostgreSQL each column arrives as one array in binary form
(:mod:`quality.pgarrays`); elsewhere (SQLite) rows stream in chunks straight into arrays. No model instance per row.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
import orjson
from django.db import connection
from django.db.models import Case, IntegerField, Max, TextField, Value, When
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import MD5, Cast, Coalesce, Length
from numpy.typing import NDArray

from labeling.db import json_value
from labeling.models import Judgment, Label, Project, ProjectKind, Task, TaskStatus
from labeling.questions import QuestionSpec
from labeling.selectors import project_stored_questions
from quality import pgarrays
from quality.models import AnnotatorScore, ModelRanking, ProjectQuality, QualityJob

CHUNK = 100_000


@dataclass(frozen=True)
class ProjectData:
    """A project's tasks (index ``t``) and judgments (index ``j``) as parallel arrays.

    Class codes index ``labels`` (the project's label values in order); ``-1`` stands for none. ``task_model_*``
    index ``models``. ``task_content`` groups tasks with identical payloads (repeats, for self-consistency).
    ``j_a_left`` is 1 (A shown on the left), 0, or -1 (categorical).
    """

    labels: list[str]
    models: list[str]
    task_ids: NDArray[np.int64]
    task_gold: NDArray[np.int64]
    task_complete: NDArray[np.bool_]
    task_len_a: NDArray[np.int64]
    task_len_b: NDArray[np.int64]
    task_model_a: NDArray[np.int64]
    task_model_b: NDArray[np.int64]
    task_content: NDArray[np.int64]
    annotator_ids: NDArray[np.int64]
    j_ids: NDArray[np.int64]
    j_task: NDArray[np.int64]
    j_annotator: NDArray[np.int64]
    j_label: NDArray[np.int64]
    j_a_left: NDArray[np.int64]
    j_seconds: NDArray[np.float64]

    @property
    def n_tasks(self) -> int:
        return int(self.task_ids.size)

    @property
    def n_judgments(self) -> int:
        return int(self.j_ids.size)


def _label_code(field: str, values: list[str]) -> Case:
    return Case(
        *(When(**{field: value}, then=Value(code)) for code, value in enumerate(values)),
        default=Value(-1),
        output_field=IntegerField(),
    )


def _rows(queryset: Any, width: int, dtype: Any = np.float64) -> NDArray[Any]:
    """All rows of a ``values_list`` queryset as one ``(n, width)`` array, built chunk by chunk."""
    iterator = queryset.iterator(chunk_size=CHUNK)
    chunks = []
    while chunk := list(islice(iterator, CHUNK)):
        chunks.append(np.array(chunk, dtype=dtype).reshape(-1, width))
    return np.concatenate(chunks) if chunks else np.empty((0, width), dtype=dtype)


def _codes(values: list[str]) -> tuple[list[str], NDArray[np.int64]]:
    """Distinct non-empty strings of ``values`` (sorted) and each value's index among them (-1 for empty)."""
    index: dict[str, int] = {}
    first_seen = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int64, count=len(values))
    names = sorted(index)
    rank = np.empty(len(names), dtype=np.int64)
    rank[[index[name] for name in names]] = np.arange(len(names))
    codes = rank[first_seen]
    if names and names[0] == "":
        return names[1:], codes - 1
    return names, codes


@dataclass(frozen=True)
class _Columns:
    """What the database gives: tasks and judgments, each set of columns in one order (any order)."""

    task_ids: NDArray[np.int64]
    task_gold: NDArray[np.int64]
    task_complete: NDArray[np.int64]
    task_len_a: NDArray[np.int64]
    task_len_b: NDArray[np.int64]
    task_content: NDArray[np.int64]  # equal exactly for equal payloads
    task_model_names: list[str]  # model_a, model_b of every task, interleaved ("" for none)
    j_ids: NDArray[np.int64]
    j_task_ids: NDArray[np.int64]
    j_annotator_ids: NDArray[np.int64]
    j_label: NDArray[np.int64]
    j_a_left: NDArray[np.int64]
    j_seconds: NDArray[np.float64]


def _portable_columns(project: Project, labels: list[str], pairwise: bool) -> _Columns:
    """Through the ORM, row by row (SQLite; any database)."""
    org = project.organization_id
    tasks = Task.objects.for_org(org).filter(project=project).order_by("id")
    numeric = tasks.values_list(
        "id",
        _label_code("gold_label", labels),
        Case(When(status=TaskStatus.COMPLETE, then=Value(1)), default=Value(0), output_field=IntegerField()),
        Coalesce(Length(KeyTextTransform("response_a", "payload")), Value(0)) if pairwise else Value(0),
        Coalesce(Length(KeyTextTransform("response_b", "payload")), Value(0)) if pairwise else Value(0),
    )
    task_rows = _rows(numeric, 5, np.int64)
    texts = list(
        tasks.values_list(
            Coalesce(KeyTextTransform("model_a", "payload"), Value(""), output_field=TextField()),
            Coalesce(KeyTextTransform("model_b", "payload"), Value(""), output_field=TextField()),
            MD5(Cast("payload", TextField())),
        ).iterator(chunk_size=CHUNK)
    )
    _, content = np.unique(np.array([row[2] for row in texts], dtype=str), return_inverse=True)
    judgments = (
        Judgment.objects.for_org(org)
        .filter(project=project)
        .order_by("id")
        .values_list(
            "id",
            "task_id",
            "annotator_id",
            _label_code("label", labels),
            Case(
                When(a_left=True, then=Value(1)),
                When(a_left=False, then=Value(0)),
                default=Value(-1),
                output_field=IntegerField(),
            ),
            "seconds_on_task",
        )
    )
    rows = _rows(judgments, 6)
    return _Columns(
        task_ids=task_rows[:, 0],
        task_gold=task_rows[:, 1],
        task_complete=task_rows[:, 2],
        task_len_a=task_rows[:, 3],
        task_len_b=task_rows[:, 4],
        task_content=content.reshape(-1).astype(np.int64),
        task_model_names=[str(name) for row in texts for name in row[:2]] if pairwise else [],
        j_ids=rows[:, 0].astype(np.int64),
        j_task_ids=rows[:, 1].astype(np.int64),
        j_annotator_ids=rows[:, 2].astype(np.int64),
        j_label=rows[:, 3].astype(np.int64),
        j_a_left=rows[:, 4].astype(np.int64),
        j_seconds=rows[:, 5].astype(np.float64),
    )


def _postgres_columns(project: Project, labels: list[str], pairwise: bool) -> _Columns:
    """Two queries, each returning its columns as whole arrays in binary form (see :mod:`quality.pgarrays`).

    The payload is read once per task (``payload || '{}'`` returns it detoasted; the expressions on it then share
    that copy). Repeated payloads are found by a 64-bit hash of the jsonb value; only tasks sharing a hash are then
    told apart exactly, by the MD5 of their payload text (the portable path's key), in a third, small query.
    """
    org = project.organization_id
    array = "array_send(array_agg({}))".format
    pairwise_columns = [
        array("COALESCE(length(t.j ->> 'response_a'), 0)"),
        array("COALESCE(length(t.j ->> 'response_b'), 0)"),
        "array_agg(COALESCE(t.j ->> 'model_a', ''))",
        "array_agg(COALESCE(t.j ->> 'model_b', ''))",
    ]
    task_sql = f"""
        SELECT {array("t.id")}, {array("COALESCE(array_position(%s::text[], t.gold_label::text) - 1, -1)")},
               {array("(t.status = %s)::int4")}, {array("jsonb_hash_extended(t.j, 0)")}
               {", " + ", ".join(pairwise_columns) if pairwise else ""}
        FROM (
            SELECT id, gold_label, status, payload || '{{}}'::jsonb AS j FROM {Task._meta.db_table}
            WHERE organization_id = %s AND project_id = %s OFFSET 0
        ) AS t
    """  # noqa: S608 (fragments are constants here; every value is a bound parameter)
    row = pgarrays.fetch_row(task_sql, [labels, TaskStatus.COMPLETE, org, project.pk])
    task_ids = pgarrays.from_array(row[0], np.int64)
    _, content, shared = np.unique(pgarrays.from_array(row[3], np.int64), return_inverse=True, return_counts=True)
    content = content.reshape(-1).astype(np.int64)
    suspects = np.flatnonzero(shared[content] > 1)
    if suspects.size:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, md5(payload::text) FROM {Task._meta.db_table} "  # noqa: S608
                "WHERE organization_id = %s AND project_id = %s AND id = ANY(%s)",
                [org, project.pk, task_ids[suspects].tolist()],
            )
            digest = dict(cursor.fetchall())
        # Split each hash group by digest: (hash group, digest) pairs numbered after the groups so far.
        keys = np.array([f"{content[i]}:{digest[int(task_ids[i])]}" for i in suspects.tolist()])
        _, split = np.unique(keys, return_inverse=True)
        content[suspects] = shared.size + split.reshape(-1)
    zeros = np.zeros(task_ids.size, dtype=np.int64)
    judgment_sql = f"""
        SELECT {array("id")}, {array("task_id")}, {array("annotator_id::int8")},
               {array("COALESCE(array_position(%s::text[], label::text) - 1, -1)")},
               {array("CASE WHEN a_left THEN 1 WHEN NOT a_left THEN 0 ELSE -1 END")},
               {array("seconds_on_task::float8")}
        FROM {Judgment._meta.db_table} WHERE organization_id = %s AND project_id = %s
    """  # noqa: S608 (as above)
    judgments = pgarrays.fetch_row(judgment_sql, [labels, org, project.pk])
    return _Columns(
        task_ids=task_ids,
        task_gold=pgarrays.from_array(row[1], np.int32).astype(np.int64),
        task_complete=pgarrays.from_array(row[2], np.int32).astype(np.int64),
        task_len_a=pgarrays.from_array(row[4], np.int32).astype(np.int64) if pairwise else zeros,
        task_len_b=pgarrays.from_array(row[5], np.int32).astype(np.int64) if pairwise else zeros,
        task_content=content,
        task_model_names=[name for pair in zip(row[6] or [], row[7] or [], strict=True) for name in pair]
        if pairwise
        else [],
        j_ids=pgarrays.from_array(judgments[0], np.int64),
        j_task_ids=pgarrays.from_array(judgments[1], np.int64),
        j_annotator_ids=pgarrays.from_array(judgments[2], np.int64),
        j_label=pgarrays.from_array(judgments[3], np.int32).astype(np.int64),
        j_a_left=pgarrays.from_array(judgments[4], np.int32).astype(np.int64),
        j_seconds=pgarrays.from_array(judgments[5], np.float64),
    )


def _by_id(ids: NDArray[np.int64]) -> NDArray[np.int64] | slice:
    """The order that sorts ``ids`` (a no-op slice when they already are)."""
    return slice(None) if ids.size < 2 or bool(np.all(ids[1:] > ids[:-1])) else np.argsort(ids, kind="stable")


def project_data(*, project: Project) -> ProjectData:
    """Every task and judgment of ``project`` (its own organization only) as arrays, tasks and judgments each in
    id order. On PostgreSQL every column comes as one binary array; elsewhere row by row through the ORM."""
    org = project.organization_id
    labels = list(
        Label.objects.for_org(org).filter(project=project).order_by("position", "id").values_list("value", flat=True)
    )
    pairwise = project.kind == ProjectKind.PAIRWISE
    fetch = _postgres_columns if connection.vendor == "postgresql" else _portable_columns
    columns = fetch(project, labels, pairwise)
    t = _by_id(columns.task_ids)
    task_ids = columns.task_ids[t]
    if pairwise:
        models, model_codes = _codes(columns.task_model_names)
        model_codes = model_codes.reshape(-1, 2)[t]
    else:
        models, model_codes = [], np.full((task_ids.size, 2), -1, dtype=np.int64)
    # Judgments in id order, of the tasks read. (The two reads are two statements: one whose task was created or
    # deleted in between is left for the next recompute.)
    j = _by_id(columns.j_ids)
    j_task_ids = columns.j_task_ids[j]
    j_task = np.searchsorted(task_ids, j_task_ids)
    known = task_ids[np.minimum(j_task, max(task_ids.size - 1, 0))] == j_task_ids if task_ids.size else j_task < 0
    if not known.all():
        j = np.arange(j_task.size)[j][known] if isinstance(j, slice) else j[known]
        j_task = j_task[known]
    annotator_ids, j_annotator = np.unique(columns.j_annotator_ids[j], return_inverse=True)
    return ProjectData(
        labels=labels,
        models=models,
        task_ids=task_ids,
        task_gold=columns.task_gold[t],
        task_complete=columns.task_complete[t].astype(bool),
        task_len_a=columns.task_len_a[t],
        task_len_b=columns.task_len_b[t],
        task_model_a=np.ascontiguousarray(model_codes[:, 0]),
        task_model_b=np.ascontiguousarray(model_codes[:, 1]),
        task_content=columns.task_content[t],
        annotator_ids=annotator_ids.astype(np.int64),
        j_ids=columns.j_ids[j],
        j_task=j_task.astype(np.int64),
        j_annotator=j_annotator.reshape(-1).astype(np.int64),
        j_label=columns.j_label[j],
        j_a_left=columns.j_a_left[j],
        j_seconds=columns.j_seconds[j],
    )


def stale_project_ids() -> list[int]:
    """Projects with judgments newer than their latest quality snapshot (or none): the sweep's work list."""
    newest = Judgment.objects.values("project_id").annotate(last=Max("id"))
    counted = dict(
        ProjectQuality.objects.values("project_id")
        .annotate(last=Max("last_annotation_id"))
        .values_list("project_id", "last")
    )
    return sorted(row["project_id"] for row in newest if row["last"] > counted.get(row["project_id"], 0))


def latest_quality(*, project: Project) -> ProjectQuality | None:
    return (
        ProjectQuality.objects.for_org(project.organization_id)
        .filter(project=project)
        .order_by("-computed_at", "-id")
        .first()
    )


def quality_history(*, project: Project, limit: int = 200) -> list[ProjectQuality]:
    rows = (
        ProjectQuality.objects.for_org(project.organization_id).filter(project=project).order_by("-computed_at", "-id")
    )
    return list(reversed(rows[:limit]))


def annotator_scores(*, project: Project) -> list[AnnotatorScore]:
    return list(
        AnnotatorScore.objects.for_org(project.organization_id)
        .filter(project=project)
        .select_related("annotator", "unpaused_by")
        .order_by("annotator__username")
    )


def annotator_confusions(*, project: Project, annotator_ids: Collection[int]) -> dict[int, Any]:
    """The stored Dawid-Skene confusion matrix of each of ``annotator_ids`` that the project's recompute scored."""
    rows = AnnotatorScore.objects.for_org(project.organization_id).filter(
        project=project, annotator_id__in=list(annotator_ids)
    )
    return dict(rows.values_list("annotator_id", "confusion"))


def model_rankings(*, project: Project) -> list[ModelRanking]:
    return list(ModelRanking.objects.for_org(project.organization_id).filter(project=project).order_by("rank"))


def quality_job(*, project: Project) -> QualityJob | None:
    return QualityJob.objects.for_org(project.organization_id).filter(project=project).first()


def paused_scores(*, organization_id: int, project_ids: list[int], annotator: Any) -> dict[int, AnnotatorScore]:
    """The annotator's pauses in these projects of one organization, by project id."""
    rows = AnnotatorScore.objects.for_org(organization_id).filter(
        project_id__in=project_ids, annotator=annotator, paused_at__isnull=False
    )
    return {row.project_id: row for row in rows}


__all__ = [
    "ProjectData",
    "annotator_confusions",
    "annotator_scores",
    "latest_quality",
    "model_rankings",
    "paused_scores",
    "project_data",
    "quality_history",
    "quality_job",
    "stale_project_ids",
]


@dataclass(frozen=True)
class FormAnswers:
    """The answers of a project with questions, aligned with ``ProjectData``'s judgments (index ``j``).

    ``answers[j]`` is judgment ``j``'s answers (``{}`` when it has none); ``task_models[t]`` the model of each of
    task ``t``'s responses (``""`` unknown), read only for ranking projects (their model leaderboard), else empty.
    """

    questions: list[QuestionSpec]
    answers: list[dict[str, Any]]
    task_models: list[list[str]]


def _answers(project: Project, data: ProjectData) -> list[dict[str, Any]]:
    """Every judgment's answers in ``data``'s judgment order; on PostgreSQL as text, decoded by orjson."""
    org = project.organization_id
    if connection.vendor == "postgresql":
        sql = f"SELECT id, answers::text FROM {Judgment._meta.db_table} WHERE organization_id = %s AND project_id = %s"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(sql, [org, project.pk])
            by_id = {pk: orjson.loads(text) if text else None for pk, text in cursor.fetchall()}
    else:
        rows = Judgment.objects.for_org(org).filter(project=project).values_list("id", "answers")
        by_id = {pk: json_value(value) for pk, value in rows.iterator(chunk_size=CHUNK)}
    return [by_id.get(pk) or {} for pk in data.j_ids.tolist()]


def _response_models(project: Project) -> dict[int, list[str]]:
    """Each task's response models (``""`` for none), without reading the responses' texts on PostgreSQL."""
    org = project.organization_id
    if connection.vendor == "postgresql":
        sql = f"""
            SELECT id, ARRAY(SELECT COALESCE(r ->> 'model', '') FROM jsonb_array_elements(payload -> 'responses') r)
            FROM {Task._meta.db_table}
            WHERE organization_id = %s AND project_id = %s AND jsonb_typeof(payload -> 'responses') = 'array'
        """  # noqa: S608 (the table name is a constant)
        with connection.cursor() as cursor:
            cursor.execute(sql, [org, project.pk])
            return {pk: list(names) for pk, names in cursor.fetchall()}
    rows = Task.objects.for_org(org).filter(project=project).values_list("id", KeyTransform("responses", "payload"))
    found: dict[int, list[str]] = {}
    for pk, listed in rows.iterator(chunk_size=CHUNK):
        listed = json_value(listed)
        if isinstance(listed, list):
            found[pk] = [str(item.get("model") or "") for item in listed]
    return found


def form_answers(*, project: Project, data: ProjectData) -> FormAnswers | None:
    """The answers and the tasks' responses of ``project`` for the form figures; ``None`` without questions."""
    questions = project_stored_questions(project=project)
    if not questions:
        return None
    answers = _answers(project, data)
    task_models: list[list[str]] = []
    if project.kind == ProjectKind.RANKING:
        models = _response_models(project)
        task_models = [models.get(pk, []) for pk in data.task_ids.tolist()]
    return FormAnswers(questions=questions, answers=answers, task_models=task_models)

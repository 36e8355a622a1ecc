"""Reads for quality: a project's tasks and judgments as numpy arrays, and the stored results.

Judgments come from one streaming query whose columns are all numbers (labels and display order are turned into
codes by the database), taken in chunks straight into arrays: no model instance per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
from django.db.models import Case, IntegerField, Max, TextField, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import MD5, Cast, Coalesce, Length
from numpy.typing import NDArray

from labeling.models import Annotation, Label, Project, ProjectKind, Task, TaskStatus
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


def _codes(values: NDArray[Any]) -> tuple[list[str], NDArray[np.int64]]:
    """Distinct non-empty strings of ``values`` (sorted) and each value's index among them (-1 for empty)."""
    names, codes = np.unique(values.astype(str), return_inverse=True)
    codes = codes.astype(np.int64)
    if names.size and names[0] == "":
        return names[1:].tolist(), codes - 1
    return names.tolist(), codes


def project_data(*, project: Project) -> ProjectData:
    """Every task and judgment of ``project`` (its own organization only) as arrays."""
    org = project.organization_id
    labels = list(
        Label.objects.for_org(org).filter(project=project).order_by("position", "id").values_list("value", flat=True)
    )
    tasks = Task.objects.for_org(org).filter(project=project).order_by("id")
    pairwise = project.kind == ProjectKind.PAIRWISE
    numeric = tasks.values_list(
        "id",
        _label_code("gold_label", labels),
        Case(When(status=TaskStatus.COMPLETE, then=Value(1)), default=Value(0), output_field=IntegerField()),
        Coalesce(Length(KeyTextTransform("response_a", "payload")), Value(0)) if pairwise else Value(0),
        Coalesce(Length(KeyTextTransform("response_b", "payload")), Value(0)) if pairwise else Value(0),
    )
    task_rows = _rows(numeric, 5, np.int64)
    texts = np.array(
        list(
            tasks.values_list(
                Coalesce(KeyTextTransform("model_a", "payload"), Value(""), output_field=TextField()),
                Coalesce(KeyTextTransform("model_b", "payload"), Value(""), output_field=TextField()),
                MD5(Cast("payload", TextField())),
            ).iterator(chunk_size=CHUNK)
        ),
        dtype=object,
    ).reshape(-1, 3)
    models, model_codes = _codes(texts[:, :2].ravel()) if pairwise else ([], np.full(2 * len(texts), -1))
    _, content = np.unique(texts[:, 2].astype(str), return_inverse=True)

    judgments = (
        Annotation.objects.for_org(org)
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
    task_ids = task_rows[:, 0]
    annotator_ids, j_annotator = np.unique(rows[:, 2].astype(np.int64), return_inverse=True)
    return ProjectData(
        labels=labels,
        models=models,
        task_ids=task_ids,
        task_gold=task_rows[:, 1],
        task_complete=task_rows[:, 2].astype(bool),
        task_len_a=task_rows[:, 3],
        task_len_b=task_rows[:, 4],
        task_model_a=model_codes[0::2].astype(np.int64),
        task_model_b=model_codes[1::2].astype(np.int64),
        task_content=content.astype(np.int64),
        annotator_ids=annotator_ids.astype(np.int64),
        j_ids=rows[:, 0].astype(np.int64),
        j_task=np.searchsorted(task_ids, rows[:, 1].astype(np.int64)).astype(np.int64),
        j_annotator=j_annotator.astype(np.int64),
        j_label=rows[:, 3].astype(np.int64),
        j_a_left=rows[:, 4].astype(np.int64),
        j_seconds=rows[:, 5].astype(np.float64),
    )


def stale_project_ids() -> list[int]:
    """Projects with judgments newer than their latest quality snapshot (or none): the sweep's work list."""
    newest = Annotation.objects.values("project_id").annotate(last=Max("id"))
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
    "annotator_scores",
    "latest_quality",
    "model_rankings",
    "paused_scores",
    "project_data",
    "quality_history",
    "quality_job",
    "stale_project_ids",
]

"""Sampling ranks and model predictions (see ``routing/ranking.py`` for what the ranks mean)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from labeling.models import Project, Task
from labeling.services import project_label_values
from routing.ranking import prediction_clean, task_ranks

BATCH = 2000


def _project_labels(project: Project) -> list[str]:
    return sorted(project_label_values(project=project))


def task_rank_for(*, project: Project, predictions: dict[str, float] | None, shuffle: float) -> float:
    """The rank of one task (for a task being created or edited)."""
    ranks = task_ranks(
        kind=project.kind,
        strategy=project.sampling_strategy,
        labels=_project_labels(project),
        predictions=[predictions],
        shuffles=[shuffle],
    )
    return float(ranks[0])


def _batches(project: Project) -> Iterator[list[tuple[int, Any, float]]]:
    rows = Task.objects.for_org(project.organization_id).filter(project=project).order_by("id")
    batch: list[tuple[int, Any, float]] = []
    for row in rows.values_list("id", "predictions", "shuffle").iterator(chunk_size=BATCH):
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@transaction.atomic
def project_ranks_refresh(*, project: Project) -> int:
    """Recompute every task's rank for the project's current strategy (after a strategy change or predictions).

    Returns the number of tasks ranked.
    """
    labels = _project_labels(project)
    total = 0
    for batch in _batches(project):
        ids, predictions, shuffles = zip(*batch, strict=True)
        ranks = task_ranks(
            kind=project.kind,
            strategy=project.sampling_strategy,
            labels=labels,
            predictions=predictions,
            shuffles=shuffles,
        )
        Task.objects.bulk_update(
            [Task(pk=pk, rank=float(rank)) for pk, rank in zip(ids, ranks, strict=True)], ["rank"], batch_size=BATCH
        )
        total += len(ids)
    return total


@transaction.atomic
def predictions_attach(*, project: Project, predictions: Mapping[str, Any]) -> int:
    """Attach model predictions to tasks by external id, all or nothing, then re-rank the project.

    Errors name every bad external id. Returns the number of tasks updated.
    """
    labels = _project_labels(project)
    tasks = dict(
        Task.objects.for_org(project.organization_id)
        .filter(project=project, external_id__in=list(predictions))
        .values_list("external_id", "id")
    )
    errors: dict[str, str] = {}
    cleaned: list[Task] = []
    for external_id, value in predictions.items():
        if external_id not in tasks:
            errors[external_id] = "no task with this external id in the project"
            continue
        try:
            cleaned.append(
                Task(pk=tasks[external_id], predictions=prediction_clean(kind=project.kind, labels=labels, value=value))
            )
        except ValidationError as error:
            errors[external_id] = "; ".join(error.messages)
    if errors:
        raise ValidationError({"predictions": [f"{key}: {message}" for key, message in errors.items()]})
    Task.objects.bulk_update(cleaned, ["predictions"], batch_size=BATCH)
    project_ranks_refresh(project=project)
    return len(cleaned)

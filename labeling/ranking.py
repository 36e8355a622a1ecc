"""Sampling ranks: the order in which a project's open tasks are served (lowest rank first).

Ranks are computed in bulk with numpy (``numeric``) and stored on ``Task.rank``, so picking the next
task is an index scan (``task_route_pick``), never a scan-and-score.

- ``sequential``: rank 0 for all; ties fall back to import order (id).
- ``random``: the task's own random ``shuffle`` key.
- ``least_confidence`` / ``margin`` / ``entropy``: the uncertainty of the task's model ``predictions``; tasks
  without predictions rank ``UNRANKED`` (after every predicted task, in import order). For pairwise projects
  the prediction is P(A better) and all three strategies order tasks by its closeness to 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction

import numeric
from labeling.models import UNRANKED, Project, ProjectKind, SamplingStrategy, Task
from labeling.selectors import project_label_values

UNCERTAINTY_STRATEGIES = (SamplingStrategy.LEAST_CONFIDENCE, SamplingStrategy.MARGIN, SamplingStrategy.ENTROPY)


def prediction_clean(*, kind: str, labels: Sequence[str], value: Any) -> dict[str, float]:
    """A prediction as stored: probabilities per label. Raises ``ValidationError`` saying what is wrong.

    Pairwise: a number P(A better) or ``{"a": p}``; stored as ``{"a": p, "b": 1 - p}``.
    Categorical: ``{label: p, …}`` over the project's labels (missing labels are 0), summing to 1 (±0.001).
    """
    if kind == ProjectKind.PAIRWISE:
        p = value.get("a") if isinstance(value, dict) else value
        if isinstance(value, dict) and set(value) - {"a", "b"}:
            raise ValidationError("pairwise predictions give P(A better) as a number or as {'a': p}")
        if isinstance(p, bool) or not isinstance(p, int | float) or not math.isfinite(p) or not 0 <= p <= 1:
            raise ValidationError("P(A better) must be a number from 0 to 1")
        if isinstance(value, dict) and "b" in value and abs(float(value["b"]) + p - 1) > 1e-3:
            raise ValidationError("'a' and 'b' must sum to 1")
        return {"a": float(p), "b": 1.0 - float(p)}
    if not isinstance(value, dict) or not value:
        raise ValidationError("categorical predictions are an object of label: probability")
    unknown = sorted(set(value) - set(labels))
    if unknown:
        raise ValidationError(f"unknown labels {', '.join(map(repr, unknown))}")
    probs = [value.get(label, 0) for label in labels]
    if any(isinstance(p, bool) or not isinstance(p, int | float) for p in probs):
        raise ValidationError("probabilities must be numbers")
    try:
        (row,) = numeric.normalize_probs(np.array([probs], dtype=float))
    except ValueError:
        raise ValidationError("probabilities must be from 0 to 1 and sum to 1") from None
    return {label: float(p) for label, p in zip(labels, row, strict=True) if p > 0}


def task_ranks(
    *,
    kind: str,
    strategy: str,
    labels: Sequence[str],
    predictions: Sequence[dict[str, float] | None],
    shuffles: Sequence[float],
) -> np.ndarray:
    """Ranks for tasks with these (clean) ``predictions`` and ``shuffle`` keys under ``strategy``."""
    n = len(shuffles)
    if strategy == SamplingStrategy.SEQUENTIAL:
        return np.zeros(n)
    if strategy == SamplingStrategy.RANDOM:
        return np.asarray(shuffles, dtype=float)
    if strategy not in UNCERTAINTY_STRATEGIES:
        raise ValueError(f"unknown sampling strategy {strategy!r}")
    columns = ["a"] if kind == ProjectKind.PAIRWISE else list(labels)
    matrix = np.array(
        [
            [prediction.get(c, 0.0) for c in columns] if prediction else [np.nan] * len(columns)
            for prediction in predictions
        ],
        dtype=float,
    ).reshape(n, len(columns))
    probs = numeric.pairwise_probs(matrix[:, 0]) if kind == ProjectKind.PAIRWISE else matrix
    ranks = numeric.uncertainty_rank(probs, strategy)
    return np.where(np.isfinite(ranks), ranks, UNRANKED)


# --- Storing ranks -----------------------------------------------------------------------------------------------
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

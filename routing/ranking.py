"""Sampling ranks: the order in which a project's open tasks are served (lowest rank first).

Ranks are computed in bulk with numpy (``quality/metrics.py``) and stored on ``Task.rank``, so picking the next
task is an index scan (``task_route_pick``), never a scan-and-score.

- ``sequential``: rank 0 for all; ties fall back to import order (id).
- ``random``: the task's own random ``shuffle`` key.
- ``least_confidence`` / ``margin`` / ``entropy``: the uncertainty of the task's model ``predictions``; tasks
  without predictions rank ``UNRANKED`` (after every predicted task, in import order). For pairwise projects
  the prediction is P(A better) and all three strategies order tasks by its closeness to 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError

from labeling.models import UNRANKED, ProjectKind, SamplingStrategy
from quality import metrics

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
        (row,) = metrics.normalize_probs(np.array([probs], dtype=float))
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
    probs = metrics.pairwise_probs(matrix[:, 0]) if kind == ProjectKind.PAIRWISE else matrix
    ranks = metrics.uncertainty_rank(probs, strategy)
    return np.where(np.isfinite(ranks), ranks, UNRANKED)

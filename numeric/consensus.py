"""One task's Dawid-Skene posterior from fitted parameters: the E-step for a single item, used by routing to decide
whether a task has reached consensus as each judgment arrives (the full fit runs in the quality recompute)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["task_posterior"]


def task_posterior(given: ArrayLike, confusions: ArrayLike, priors: ArrayLike) -> NDArray[np.float64]:
    """``P(true class | judgments)`` for one task, ∝ ``priors[k] * prod_j confusions[j, k, given[j]]``.

    ``given``: the class each of the task's ``m`` judgments chose; ``confusions``: ``(m, K, K)``, the judging
    annotators' confusion matrices (row = true class, column = given class); ``priors``: ``(K,)``. Computed in log
    space; zero probabilities are floored at 1e-12 so one unexpected label cannot veto a class outright. With no
    judgments the posterior is the normalised priors. ``ValueError`` for mismatched shapes or out-of-range labels.
    """
    given = np.asarray(given, dtype=np.int64)
    confusions = np.asarray(confusions, dtype=np.float64)
    priors = np.asarray(priors, dtype=np.float64)
    k = priors.size
    if priors.ndim != 1 or confusions.shape != (given.size, k, k):
        raise ValueError(f"Expected confusions of shape ({given.size}, {k}, {k}), got {confusions.shape}.")
    if given.size and (given.min() < 0 or given.max() >= k):
        raise ValueError(f"Labels must lie in 0..{k - 1}.")
    log = np.log(np.clip(priors, 1e-12, None))
    log = log + np.log(np.clip(confusions[np.arange(given.size), :, given], 1e-12, None)).sum(axis=0)
    weights = np.exp(log - log.max())
    return weights / weights.sum()

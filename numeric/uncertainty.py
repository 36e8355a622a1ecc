"""Uncertainty scores for active learning: which tasks a model is least sure about.

Every function is vectorised over the rows of its input (no Python loop over items), documents its edge cases, and
is tested against a brute-force pure-Python reference.

Prediction arrays are ``(n, k)`` floats: row ``i`` is a model's probability distribution over the ``k >= 2``
classes of task ``i``. A row containing NaN stands for a task the model has not scored yet; the uncertainty scores
give NaN for it and :func:`uncertainty_rank` serves it after every scored task.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

UNCERTAINTY_STRATEGIES: Final = ("least_confidence", "margin", "entropy")

__all__ = [
    "UNCERTAINTY_STRATEGIES",
    "entropy",
    "least_confidence",
    "margin",
    "normalize_probs",
    "pairwise_probs",
    "uncertainty_rank",
]


def _prediction_matrix(probs: ArrayLike) -> FloatArray:
    """``probs`` as an ``(n, k)`` float array with ``k >= 2``; ``ValueError`` for any other shape."""
    matrix = np.asarray(probs, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise ValueError(f"Expected an (n, k) array of probabilities with k >= 2, got shape {matrix.shape}.")
    return matrix


def _missing_rows(matrix: FloatArray) -> NDArray[np.bool_]:
    return np.isnan(matrix).any(axis=1)


def least_confidence(probs: ArrayLike) -> FloatArray:
    """``1 - max p`` per row: how far the model's top class is from certainty.

    Ranges from 0 (one class has probability 1) to ``1 - 1/k`` (the uniform distribution). Ties for the top
    class do not change the score. Rows containing NaN give NaN.
    """
    matrix = _prediction_matrix(probs)
    # max propagates NaN, so unscored rows come out NaN without a special case.
    return 1.0 - matrix.max(axis=1)


def margin(probs: ArrayLike) -> FloatArray:
    """``p1 - p2`` per row: the largest probability minus the second largest. Smaller is more uncertain.

    Ranges from 0 (the two top classes are tied, e.g. the uniform distribution) to 1 (one class has probability
    1). Rows containing NaN give NaN.
    """
    matrix = _prediction_matrix(probs)
    k = matrix.shape[1]
    # A partial sort per row puts the two largest values in the last two columns: O(n k), not O(n k log k).
    top_two = np.partition(matrix, (k - 2, k - 1), axis=1)[:, -2:]
    scores = top_two[:, 1] - top_two[:, 0]
    scores[_missing_rows(matrix)] = np.nan
    return scores


def entropy(probs: ArrayLike) -> FloatArray:
    """Shannon entropy ``-sum p log p`` per row, in nats (natural log), with ``0 log 0 = 0``.

    Ranges from 0 (one class has probability 1) to ``log k`` (the uniform distribution). Rows containing NaN give
    NaN.
    """
    matrix = _prediction_matrix(probs)
    positive = matrix > 0
    # log only where p > 0, so zero probabilities contribute exactly 0 and no divide-by-zero warning is raised.
    logs = np.log(matrix, out=np.zeros_like(matrix), where=positive)
    scores = -(matrix * logs).sum(axis=1)
    scores[_missing_rows(matrix)] = np.nan
    return scores


def pairwise_probs(p_a_better: ArrayLike) -> FloatArray:
    """``(n,)`` probabilities that response A is better -> the ``(n, 2)`` distributions ``[p, 1 - p]``.

    For a binary distribution all three uncertainty strategies are strictly monotone in ``|p - 0.5|``
    (least confidence ``= 0.5 - |p - 0.5|``, margin ``= 2 |p - 0.5|``, entropy decreases as ``|p - 0.5|`` grows),
    so they order pairwise tasks identically: closest to 0.5 first. In floating point entropy is flat near 0.5
    (``log 2 - 2 d**2`` for ``d = |p - 0.5|``), so predictions within about ``1e-8`` of 0.5 may tie under entropy
    where the other two still tell them apart. NaN (no prediction) gives a NaN row.
    """
    p = np.asarray(p_a_better, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"Expected an (n,) array of P(A better), got shape {p.shape}.")
    return np.column_stack((p, 1.0 - p))


def uncertainty_rank(probs: ArrayLike, strategy: str) -> FloatArray:
    """Sort keys for serving the most informative tasks first: ascending key = most uncertain first.

    ``least_confidence`` gives ``-least_confidence``, ``margin`` gives ``margin`` and ``entropy`` gives
    ``-entropy``. Rows containing NaN (no prediction) give ``+inf``, so they are served after every predicted task.
    Equal keys (ties, e.g. several uniform distributions, or ``[p, 1 - p]`` and ``[1 - p, p]``) are left to the
    caller's tie-break: sort with ``np.argsort(keys, kind="stable")`` to keep the input order (e.g. task id).
    For ``k = 2`` the three strategies give the same order (see :func:`pairwise_probs`).

    Raises ``ValueError`` for a strategy not in ``UNCERTAINTY_STRATEGIES``.
    """
    if strategy == "least_confidence":
        keys = -least_confidence(probs)
    elif strategy == "margin":
        keys = margin(probs)
    elif strategy == "entropy":
        keys = -entropy(probs)
    else:
        raise ValueError(f"Unknown uncertainty strategy {strategy!r}; expected one of {UNCERTAINTY_STRATEGIES}.")
    return np.where(np.isnan(keys), np.inf, keys)


def normalize_probs(probs: ArrayLike, *, atol: float = 1e-3) -> FloatArray:
    """Validate model predictions and renormalise every row to sum to 1 (up to float rounding).

    Accepts an ``(n, k)`` array, ``k >= 2``, of finite values in ``[0, 1]`` whose rows each sum to 1 within
    ``atol`` (predictions rounded for transport rarely sum to exactly 1). Anything else raises ``ValueError`` naming
    the first bad row, so an import can point at the offending line. NaN is rejected here: a task without a
    prediction is left out of the import, not sent as NaN. ``n = 0`` returns an empty ``(0, k)`` array.
    """
    if atol < 0:
        raise ValueError(f"atol must not be negative, got {atol}.")
    matrix = _prediction_matrix(probs)
    not_finite = ~np.isfinite(matrix).all(axis=1)
    out_of_range = ((matrix < 0) | (matrix > 1)).any(axis=1)
    sums = matrix.sum(axis=1)
    bad_sum = np.abs(sums - 1.0) > atol
    bad_rows = np.flatnonzero(not_finite | out_of_range | bad_sum)
    if bad_rows.size:
        row = int(bad_rows[0])
        if not_finite[row]:
            reason = "contains a value that is not a finite number"
        elif out_of_range[row]:
            reason = "contains a value outside [0, 1]"
        else:
            reason = f"sums to {sums[row]:.6g}, not 1 (tolerance {atol:g})"
        raise ValueError(f"Row {row} {reason}.")
    return matrix / sums[:, np.newaxis]

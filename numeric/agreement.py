"""Inter-annotator agreement: Cohen's kappa, Fleiss' kappa, Krippendorff's alpha and percent agreement.

Every function is vectorised (no Python loop over items, units, judgments, raters or categories), documents its
edge cases, and is tested against published tables and oracle libraries (scikit-learn, statsmodels, krippendorff).

Array conventions:

- Cohen's kappa takes two parallel ``(n,)`` label arrays, one per rater (ints or strings).
- Fleiss' kappa, :func:`item_agreement` and :func:`percent_agreement` take an ``(items, categories)`` matrix of
  non-negative integer counts: entry ``[i, j]`` is how many judgments put item ``i`` in category ``j``.
  :func:`label_counts` builds that matrix from parallel ``(item index, label index)`` arrays.
- Krippendorff's alpha takes a ``(raters, units)`` float matrix with NaN for a missing value.

A statistic that is undefined for its input (nothing to compare, or no disagreement to expect by chance) is NaN,
never an exception: a caller can store it and show "not enough data". Malformed input raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

KAPPA_WEIGHTS: Final = ("linear", "quadratic")
KRIPPENDORFF_LEVELS: Final = ("nominal", "ordinal", "interval", "ratio")

__all__ = [
    "KAPPA_WEIGHTS",
    "KRIPPENDORFF_LEVELS",
    "cohens_kappa",
    "fleiss_kappa",
    "item_agreement",
    "krippendorff_alpha",
    "krippendorff_alpha_counts",
    "label_counts",
    "percent_agreement",
]


# --- helpers ---------------------------------------------------------------------------------------------------------


def _count_matrix(counts: ArrayLike) -> IntArray:
    """``counts`` as an ``(items, categories)`` int64 array; ``ValueError`` unless 2-D, finite, whole and >= 0."""
    matrix = np.asarray(counts)
    if matrix.ndim != 2:
        raise ValueError(f"Expected an (items, categories) count matrix, got shape {matrix.shape}.")
    if matrix.dtype == np.bool_ or not np.issubdtype(matrix.dtype, np.number):
        raise ValueError(f"Expected numeric counts, got dtype {matrix.dtype}.")
    if np.issubdtype(matrix.dtype, np.complexfloating):
        raise ValueError("Expected real counts, got complex numbers.")
    if np.issubdtype(matrix.dtype, np.floating):
        bad = ~np.isfinite(matrix) | (matrix != np.round(matrix))
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ValueError(f"Counts must be whole numbers: row {row}, column {col} is {matrix[row, col]!r}.")
    if (matrix < 0).any():
        row, col = np.argwhere(matrix < 0)[0]
        raise ValueError(f"Counts must not be negative: row {row}, column {col} is {matrix[row, col]!r}.")
    return matrix.astype(np.int64)


def _pair_agreement(matrix: IntArray) -> tuple[FloatArray, IntArray]:
    """Per row, the share of agreeing ordered pairs of judgments (NaN below 2 judgments), and the row totals."""
    totals = matrix.sum(axis=1)
    agreeing_pairs = (matrix * (matrix - 1)).sum(axis=1)
    all_pairs = totals * (totals - 1)
    shares = np.full(totals.shape, np.nan)
    np.divide(agreeing_pairs, all_pairs, out=shares, where=totals >= 2)
    return shares, totals


# --- Cohen's kappa ---------------------------------------------------------------------------------------------------


def cohens_kappa(
    a: ArrayLike,
    b: ArrayLike,
    *,
    labels: Sequence[object] | ArrayLike | None = None,
    weights: str | None = None,
) -> float:
    """Cohen's kappa between two raters who labelled the same ``n`` items; weighted kappa per Cohen (1968).

    ``a`` and ``b`` are parallel ``(n,)`` arrays: ``a[i]`` and ``b[i]`` are the two raters' labels for item ``i``.
    Labels may be anything numpy can compare and sort (ints, strings); ``a``, ``b`` and ``labels`` are compared
    after numpy's conversion to a common dtype (so ``1`` and ``"1"`` in the same call are the same label).

    ``labels`` is the ordered sequence of the ``k`` categories. Its order only matters for weighted kappa, where
    it defines the distance between categories. Labels listed but never used are allowed (they do not change the
    result); a value of ``a`` or ``b`` missing from ``labels``, or a repeated label, raises ``ValueError``. By
    default the categories are the sorted union of the observed values.

    ``weights`` gives the disagreement weight of categories ``i`` and ``j`` (positions in ``labels``):

    - ``None``: 0 on the diagonal, 1 elsewhere (unweighted kappa);
    - ``"linear"``: ``|i - j| / (k - 1)``;
    - ``"quadratic"``: ``((i - j) / (k - 1)) ** 2``;

    anything else raises ``ValueError``. Returns ``1 - sum(w * observed) / sum(w * expected)``, where ``observed``
    is the ``k x k`` confusion matrix of ``(a, b)`` and ``expected`` the outer product of its margins divided by
    ``n``; this equals ``sklearn.metrics.cohen_kappa_score``. 1 is perfect agreement, 0 chance-level, negative
    worse than chance.

    Edge cases: ``a`` and ``b`` of different lengths, or not 1-D, raise ``ValueError``. Empty input gives NaN.
    When the expected disagreement is 0 kappa is undefined (0 / 0) and the result is NaN: this happens exactly
    when both raters used one and the same label for every item (with or without weights). Perfect agreement
    with at least two distinct labels used gives 1.0.
    """
    if weights is not None and weights not in KAPPA_WEIGHTS:
        raise ValueError(f"Unknown kappa weights {weights!r}; expected None or one of {KAPPA_WEIGHTS}.")
    first, second = np.asarray(a), np.asarray(b)
    if first.ndim != 1 or second.ndim != 1:
        raise ValueError(f"Expected two 1-D label arrays, got shapes {first.shape} and {second.shape}.")
    if first.shape != second.shape:
        raise ValueError(f"The raters labelled different numbers of items: {first.size} and {second.size}.")
    n = first.size
    parts = (first, second)
    if labels is not None:
        declared = np.asarray(labels)
        if declared.ndim != 1:
            raise ValueError(f"Expected a 1-D sequence of labels, got shape {declared.shape}.")
        parts = (declared, first, second)
    k_declared = 0 if labels is None else parts[0].size
    # One np.unique over labels and values maps every value to a code in a shared, sorted vocabulary.
    vocabulary, codes = np.unique(np.concatenate(parts), return_inverse=True)
    if labels is None:
        k = vocabulary.size
        index_of_code = np.arange(k)
    else:
        k = k_declared
        if np.unique(codes[:k_declared]).size != k_declared:
            raise ValueError("labels contains a repeated label.")
        index_of_code = np.full(vocabulary.size, -1)
        index_of_code[codes[:k_declared]] = np.arange(k_declared)
    indices = index_of_code[codes[k_declared:]]
    unknown = np.flatnonzero(indices < 0)
    if unknown.size:
        raise ValueError(f"Label {vocabulary[codes[k_declared + unknown[0]]]!r} is not in labels.")
    if n == 0:
        return float("nan")
    rows, cols = indices[:n], indices[n:]
    observed = np.bincount(rows * k + cols, minlength=k * k).reshape(k, k).astype(np.float64)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    positions = np.arange(k)
    distance = np.abs(positions[:, np.newaxis] - positions[np.newaxis, :]) / max(k - 1, 1)
    if weights is None:
        w = (distance > 0).astype(np.float64)
    elif weights == "linear":
        w = distance
    else:
        w = distance**2
    expected_disagreement = float((w * expected).sum())
    if expected_disagreement == 0.0:
        return float("nan")
    return 1.0 - float((w * observed).sum()) / expected_disagreement


# --- count matrices --------------------------------------------------------------------------------------------------


def label_counts(items: ArrayLike, labels: ArrayLike, *, n_items: int, n_classes: int) -> IntArray:
    """The ``(n_items, n_classes)`` count matrix of parallel judgment arrays: how often item ``i`` got label ``j``.

    ``items`` and ``labels`` are parallel ``(m,)`` integer arrays, one entry per judgment: judgment ``t`` put item
    ``items[t]`` (a row index in ``[0, n_items)``) in class ``labels[t]`` (a column index in ``[0, n_classes)``).
    Returns an int64 matrix whose rows sum to each item's number of judgments (0 for items never judged).

    Raises ``ValueError`` when the arrays are not 1-D, differ in length, are not integers, or hold an index out of
    range (naming the first such judgment), or when ``n_items`` or ``n_classes`` is negative. Empty arrays give an
    all-zero matrix.
    """
    if n_items < 0 or n_classes < 0:
        raise ValueError(f"n_items and n_classes must not be negative, got {n_items} and {n_classes}.")
    rows, cols = np.asarray(items), np.asarray(labels)
    if rows.ndim != 1 or cols.ndim != 1 or rows.shape != cols.shape:
        raise ValueError(f"Expected two parallel 1-D index arrays, got shapes {rows.shape} and {cols.shape}.")
    # An empty list converts to a float array; only non-empty arrays must already be integers.
    if rows.size and not (np.issubdtype(rows.dtype, np.integer) and np.issubdtype(cols.dtype, np.integer)):
        raise ValueError(f"Expected integer indices, got dtypes {rows.dtype} and {cols.dtype}.")
    rows, cols = rows.astype(np.int64), cols.astype(np.int64)
    bad = np.flatnonzero((rows < 0) | (rows >= n_items) | (cols < 0) | (cols >= n_classes))
    if bad.size:
        t = int(bad[0])
        raise ValueError(
            f"Judgment {t} is out of range: item {rows[t]} (n_items={n_items}), label {cols[t]} "
            f"(n_classes={n_classes})."
        )
    flat = np.bincount(rows * n_classes + cols, minlength=n_items * n_classes)
    return flat.astype(np.int64).reshape(n_items, n_classes)


def item_agreement(counts: ArrayLike) -> FloatArray:
    """Per item, the share of agreeing ordered pairs of judgments: ``sum_j n_ij (n_ij - 1) / (n_i (n_i - 1))``.

    ``counts`` is an ``(items, categories)`` matrix of non-negative integer counts (see :func:`label_counts`);
    rows may have different totals ``n_i``. Returns an ``(items,)`` float array in ``[0, 1]``: 1 when every
    judgment of the item agrees, 0 when no two do. Items with fewer than 2 judgments give NaN (there is no pair to
    compare). Raises ``ValueError`` for a matrix that is not 2-D or holds negative or fractional counts.
    """
    shares, _ = _pair_agreement(_count_matrix(counts))
    return shares


def percent_agreement(counts: ArrayLike) -> float:
    """Mean of :func:`item_agreement` over the items with at least 2 judgments (the observed agreement).

    ``counts`` is an ``(items, categories)`` matrix of non-negative integer counts. Unlike :func:`fleiss_kappa`,
    rows may have different totals: every item with at least 2 judgments weighs the same, however many judgments
    it has, and items with fewer are ignored. Returns NaN when no item has 2 judgments (including 0 items). No
    correction for chance: use a kappa or alpha for that.
    """
    shares = item_agreement(counts)
    scored = shares[~np.isnan(shares)]
    if scored.size == 0:
        return float("nan")
    return float(scored.mean())


# --- Fleiss' kappa ---------------------------------------------------------------------------------------------------


def fleiss_kappa(counts: ArrayLike) -> float:
    """Fleiss' (1971) kappa for many raters: ``(P_bar - P_e) / (1 - P_e)``.

    ``counts`` is an ``(items, categories)`` matrix of non-negative integer counts in which every row has the
    same total ``n >= 2`` (each item was judged by ``n`` raters, not necessarily the same people). ``P_bar`` is
    the mean of :func:`item_agreement` and ``P_e = sum_j p_j ** 2``, ``p_j`` being category ``j``'s share of all
    judgments. Equals ``statsmodels.stats.inter_rater.fleiss_kappa(counts, method="fleiss")``.

    Raises ``ValueError`` when rows have unequal totals (the message names the first row whose total differs
    from row 0's, and its total), when ``n < 2``, or for a matrix that is not 2-D or holds negative or fractional
    counts. For items with varying numbers of judgments use :func:`krippendorff_alpha` or
    :func:`percent_agreement`. Returns NaN for 0 items, and when every judgment is in one category (``P_e = 1``:
    kappa is 0 / 0, undefined).
    """
    matrix = _count_matrix(counts)
    if matrix.shape[0] == 0:
        return float("nan")
    shares, totals = _pair_agreement(matrix)
    unequal = np.flatnonzero(totals != totals[0])
    if unequal.size:
        row = int(unequal[0])
        raise ValueError(
            f"Fleiss' kappa needs rows with equal totals (the same number of judgments per item): row {row} has "
            f"total {totals[row]}, row 0 has {totals[0]}."
        )
    n = int(totals[0])
    if n < 2:
        raise ValueError(f"Fleiss' kappa needs at least 2 judgments per item, rows total {n}.")
    category_totals = matrix.sum(axis=0)
    # Decided on integers, not on a rounded P_e: P_e == 1 exactly when a single category holds every judgment.
    if np.count_nonzero(category_totals) <= 1:
        return float("nan")
    shares_of_judgments = category_totals / category_totals.sum()
    p_expected = float((shares_of_judgments**2).sum())
    p_observed = float(shares.mean())
    return (p_observed - p_expected) / (1.0 - p_expected)


# --- Krippendorff's alpha --------------------------------------------------------------------------------------------


def _squared_distances(values: FloatArray, value_totals: FloatArray, level: str) -> FloatArray:
    """Krippendorff's ``delta ** 2`` between every pair of the sorted distinct ``values``, as a ``(V, V)`` matrix."""
    if level == "nominal":
        return 1.0 - np.eye(values.size)
    if level == "interval":
        return (values[:, np.newaxis] - values[np.newaxis, :]) ** 2
    if level == "ratio":
        sums = values[:, np.newaxis] + values[np.newaxis, :]
        differences = values[:, np.newaxis] - values[np.newaxis, :]
        # Only 0 vs 0 has a zero sum (values are non-negative), and identical values are at distance 0.
        ratios = np.divide(differences, sums, out=np.zeros_like(sums), where=sums != 0)
        return ratios**2
    # Ordinal: (sum of n_g for g from c to k - (n_c + n_k) / 2) ** 2, with n_g the coincidence marginals.
    positions = np.arange(values.size)
    low = np.minimum(positions[:, np.newaxis], positions[np.newaxis, :])
    high = np.maximum(positions[:, np.newaxis], positions[np.newaxis, :])
    cumulative = np.concatenate(([0.0], np.cumsum(value_totals)))
    between = cumulative[high + 1] - cumulative[low]
    return (between - (value_totals[low] + value_totals[high]) / 2.0) ** 2


def krippendorff_alpha(data: ArrayLike, *, level: str = "nominal") -> float:
    """Krippendorff's alpha reliability, ``1 - D_o / D_e``, from the coincidence matrix (Krippendorff 2011).

    ``data`` is a ``(raters, units)`` float array: ``data[r, u]`` is the value rater ``r`` gave unit ``u``, NaN
    where rater ``r`` did not judge unit ``u``. Values are category codes or numbers; units may have different
    numbers of values. ``level`` picks the difference function ``delta ** 2`` between values ``c`` and ``k``:

    - ``"nominal"``: 0 if equal, else 1;
    - ``"ordinal"``: ``(sum_{g=c..k} n_g - (n_c + n_k) / 2) ** 2`` over the sorted distinct values, ``n_g`` being
      the coincidence-matrix marginal of value ``g`` (only the order of the values matters, not their spacing);
    - ``"interval"``: ``(c - k) ** 2``;
    - ``"ratio"``: ``((c - k) / (c + k)) ** 2``; values must be non-negative (``ValueError`` otherwise);

    anything else raises ``ValueError``. Units with fewer than 2 values are not pairable and are dropped. The
    coincidence matrix is ``o_ck = sum_u (number of c-k pairs in unit u) / (m_u - 1)``, ``m_u`` being unit ``u``'s
    number of values; ``D_o`` weighs ``o`` by ``delta ** 2`` and ``D_e`` weighs the chance coincidences
    ``n_c (n_k - [c == k]) / (n - 1)``. Equals ``krippendorff.alpha(reliability_data=data,
    level_of_measurement=level)``. 1 is perfect reliability, 0 chance-level, negative systematic disagreement.

    Edge cases, all NaN: no pairable values (no unit has 2 values; includes a single rater and 0 units); a single
    distinct value among the pairable values (``D_e = 0``, alpha is undefined even though everyone agrees). Raises
    ``ValueError`` for data that is not 2-D or contains an infinite value. Memory is ``O(units * V + V ** 2)`` for
    ``V`` distinct values, so continuous data with very many distinct values should be rounded first.
    """
    if level not in KRIPPENDORFF_LEVELS:
        raise ValueError(f"Unknown level of measurement {level!r}; expected one of {KRIPPENDORFF_LEVELS}.")
    matrix = np.asarray(data, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"Expected a (raters, units) array, got shape {matrix.shape}.")
    if np.isinf(matrix).any():
        raise ValueError("Values must be finite numbers or NaN (missing).")
    if level == "ratio" and (matrix < 0).any():
        raise ValueError("Ratio-level values must not be negative.")
    present = ~np.isnan(matrix)
    # Units with fewer than 2 values are dropped before the value domain is built.
    pairable_units = present.sum(axis=0) >= 2
    present &= pairable_units[np.newaxis, :]
    _, unit_of_value = np.nonzero(present)
    distinct, value_index = np.unique(matrix[present], return_inverse=True)
    if distinct.size < 2:
        return float("nan")
    n_values = distinct.size
    unit_codes = np.cumsum(pairable_units) - 1  # original unit -> row among the pairable units
    n_units = int(pairable_units.sum())
    unit_counts = np.bincount(unit_codes[unit_of_value] * n_values + value_index, minlength=n_units * n_values)
    return _alpha_from_unit_counts(unit_counts.reshape(n_units, n_values).astype(np.float64), distinct, level)


def krippendorff_alpha_counts(counts: ArrayLike, *, values: ArrayLike | None = None, level: str = "nominal") -> float:
    """Krippendorff's alpha from a ``(units, V)`` matrix of value counts: ``counts[u, v]`` is how many raters gave
    unit ``u`` the value ``values[v]`` (default ``0..V-1``; must be increasing). Same result as
    :func:`krippendorff_alpha` on the raters x units data those counts summarise, without the raters x units array
    (a project with a thousand annotators and a million judgments fits in units x V).

    Units with fewer than 2 values are dropped; values no unit uses are ignored. NaN when nothing is pairable or only
    one distinct value is left, as for :func:`krippendorff_alpha`. ``ValueError`` for a bad level, negative or
    fractional counts, or ``values`` of the wrong length or not increasing.
    """
    if level not in KRIPPENDORFF_LEVELS:
        raise ValueError(f"Unknown level of measurement {level!r}; expected one of {KRIPPENDORFF_LEVELS}.")
    matrix = _count_matrix(counts).astype(np.float64)
    domain = np.arange(matrix.shape[1], dtype=np.float64) if values is None else np.asarray(values, np.float64)
    if domain.shape != (matrix.shape[1],) or (np.diff(domain) <= 0).any():
        raise ValueError("values must be increasing, one per column of counts.")
    if level == "ratio" and (domain < 0).any():
        raise ValueError("Ratio-level values must not be negative.")
    matrix = matrix[matrix.sum(axis=1) >= 2]
    used = matrix.sum(axis=0) > 0
    if used.sum() < 2:
        return float("nan")
    return _alpha_from_unit_counts(matrix[:, used], domain[used], level)


def _alpha_from_unit_counts(unit_counts: FloatArray, distinct: FloatArray, level: str) -> float:
    """Alpha from the value counts of pairable units (every row totals at least 2) over ``distinct`` values."""
    weighted = unit_counts / (unit_counts.sum(axis=1, keepdims=True) - 1.0)
    coincidences = weighted.T @ unit_counts - np.diag(weighted.sum(axis=0))
    value_totals = coincidences.sum(axis=0)
    n = value_totals.sum()
    chance = (np.outer(value_totals, value_totals) - np.diag(value_totals)) / (n - 1.0)
    distances = _squared_distances(distinct, value_totals, level)
    return 1.0 - float((coincidences * distances).sum()) / float((chance * distances).sum())

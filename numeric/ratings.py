"""Statistics for numeric rating answers: Krippendorff's alpha, per-item consensus, leniency, straight-lining.

Array conventions: one entry per rating, as parallel 1-D arrays of one length ``n``:

- ``items``: int index in ``0 .. n_items - 1`` of the rated unit. What a unit is belongs to the caller: a
  ``(task, response)`` pair for per-response ratings, a ``(task, response, question)`` triple when a form asks
  several rating questions, or a task.
- ``annotators``: int index in ``0 .. n_annotators - 1`` (the caller maps user ids to positions). Where agreement
  between annotators is computed (:func:`rating_alpha`, :func:`leniency`) an annotator rates an item at most once:
  a repeated ``(item, annotator)`` pair raises ``ValueError``, since it would pair an annotator with themself.
- ``values``: the ratings as finite numbers (typically small integers such as 1..7; NaN is not "missing" here:
  leave a missing rating out of the arrays).

Nothing builds an ``(annotators, items)`` matrix: every statistic is a handful of ``np.bincount`` passes over the
ratings, so a million ratings of 300,000 items by 5,000 annotators take a fraction of a second. A statistic that is
undefined for its input (no pairable ratings, a single rating) is NaN; malformed input raises ``ValueError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._keys import group_keys
from .agreement import KRIPPENDORFF_LEVELS, krippendorff_alpha_counts
from .bias import _flags
from .stats import normal_quantile

__all__ = [
    "Leniency",
    "leniency",
    "rating_alpha",
    "rating_consensus",
    "straight_lining",
    "straight_lining_share",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

# Integer ratings spanning at most this many steps are coded by counting instead of sorting.
_DENSE_SPAN: Final = 1 << 16
# Largest (pairable items x distinct values) count matrix rating_alpha builds: 2**26 cells = 512 MiB of int64.
_MAX_CELLS: Final = 1 << 26
# Student t quantiles are exact (bisection on the closed-form CDF) up to this many degrees of freedom, then a
# fourth-order Cornish-Fisher expansion (relative error below 1e-7 at level 0.95, 1e-6 at 0.999).
_T_EXACT_DF: Final = 30


@dataclass(frozen=True, eq=False)
class Leniency:
    """Per-annotator leniency (positive: rates higher than the others); every field is ``(n_annotators,)``.

    ``offset``: mean over the annotator's scored ratings of ``own rating - mean of the other annotators' ratings of
    that item`` (NaN when ``count == 0``); ``low`` / ``high``: Student t interval for that mean at the requested
    level (NaN when ``count < 2``); ``count``: scored ratings (those of items with at least one other rating).
    """

    offset: FloatArray
    low: FloatArray
    high: FloatArray
    count: IntArray


# -- input handling ---------------------------------------------------------------------------------------------------


def _size(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}.")
    return int(value)


def _index(values: ArrayLike, name: str, n: int | None, length: int | None = None) -> IntArray:
    """``values`` as a 1-D int64 array of indices in ``[0, n)`` (``n = None``: any non-negative index)."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of indices, got shape {array.shape}.")
    if length is not None and array.size != length:
        raise ValueError(f"{name} must have one entry per rating ({length}), got {array.size}.")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer indices, got dtype {array.dtype}.")
    bad = np.flatnonzero((array < 0) | (array >= n)) if n is not None else np.flatnonzero(array < 0)
    if bad.size:
        bound = f"0..{n - 1}" if n is not None else ">= 0"
        raise ValueError(f"{name}[{int(bad[0])}] = {array[bad[0]]} is outside {bound}.")
    return array.astype(np.int64, copy=False)


def _values(values: ArrayLike, length: int) -> FloatArray:
    array = np.asarray(values)
    if array.shape != (length,):
        raise ValueError(f"values must have shape ({length},) like items, got {array.shape}.")
    if array.size and (array.dtype == np.bool_ or array.dtype.kind not in "iuf"):
        raise ValueError(f"values must be real numbers, got dtype {array.dtype}.")
    array = array.astype(np.float64, copy=False)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"values[{int(bad[0])}] = {array[bad[0]]} is not a finite number.")
    return array


def _item_values(items: ArrayLike, values: ArrayLike, n_items: int) -> tuple[IntArray, FloatArray, int]:
    n = _size(n_items, "n_items")
    item = _index(items, "items", n)
    return item, _values(values, item.size), n


def _ratings(
    items: ArrayLike, annotators: ArrayLike, values: ArrayLike, n_items: int, n_annotators: int
) -> tuple[IntArray, IntArray, FloatArray, int, int]:
    """Validated ratings; ``ValueError`` also for an annotator rating one item twice."""
    item, vals, n = _item_values(items, values, n_items)
    m = _size(n_annotators, "n_annotators")
    who = _index(annotators, "annotators", m, item.size)
    if item.size > 1:
        keys = np.sort(item * m + who)
        repeated = np.flatnonzero(keys[1:] == keys[:-1])
        if repeated.size:
            key = int(keys[repeated[0]])
            raise ValueError(
                f"Annotator {key % m} rated item {key // m} more than once; pass one rating per (item, annotator)."
            )
    return item, who, vals, n, m


# -- Krippendorff's alpha ---------------------------------------------------------------------------------------------


def _value_codes(vals: FloatArray) -> tuple[FloatArray, IntArray]:
    """The sorted distinct values and every rating's position among them (counting for integer ratings)."""
    low, high = float(vals.min()), float(vals.max())
    if high - low <= _DENSE_SPAN and (vals == np.round(vals)).all():
        distinct, _, inverse = group_keys((vals - low).astype(np.int64), int(high - low) + 1)
        return distinct.astype(np.float64) + low, inverse
    distinct, inverse = np.unique(vals, return_inverse=True)
    return distinct, inverse.astype(np.int64)


def rating_alpha(
    items: ArrayLike,
    annotators: ArrayLike,
    values: ArrayLike,
    *,
    n_items: int,
    n_annotators: int,
    level: str = "interval",
) -> float:
    """Krippendorff's alpha of the ratings, at ``level`` ``"interval"`` (the default) or ``"ordinal"``.

    Equals ``krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)`` on the ``(n_annotators,
    n_items)`` matrix holding each rating (NaN elsewhere), without building that matrix: the ratings are counted
    into an ``(items with 2+ ratings, distinct values)`` matrix and passed to
    :func:`.agreement.krippendorff_alpha_counts`. Interval alpha uses the values' spacing (``(c - k) ** 2``);
    ordinal alpha only their order (Krippendorff's rank-based distance). ``"nominal"`` and ``"ratio"`` are
    accepted too.

    Items with fewer than 2 ratings are not pairable and do not count. NaN when no item has 2 ratings, or when the
    pairable ratings hold a single distinct value (no expected disagreement). ``ValueError`` for malformed input
    (see the module docstring), an annotator rating an item twice, an unknown level, and for ratings with so many
    distinct values that the count matrix would exceed ``2 ** 26`` cells (round continuous ratings first).
    """
    if level not in KRIPPENDORFF_LEVELS:
        raise ValueError(f"Unknown level of measurement {level!r}; expected one of {KRIPPENDORFF_LEVELS}.")
    item, _, vals, n, _ = _ratings(items, annotators, values, n_items, n_annotators)
    per_item = np.bincount(item, minlength=n)
    pairable = per_item[item] >= 2
    if not pairable.any():
        return float("nan")
    item, vals = item[pairable], vals[pairable]
    unit = (np.cumsum(per_item >= 2) - 1)[item]
    n_units = int(unit.max()) + 1
    domain, code = _value_codes(vals)
    cells = n_units * domain.size
    if cells > _MAX_CELLS:
        raise ValueError(
            f"{domain.size} distinct rating values over {n_units} items need {cells} counts, more than {_MAX_CELLS}; "
            "round the ratings to fewer distinct values."
        )
    counts = np.bincount(unit * domain.size + code, minlength=cells).reshape(n_units, domain.size)
    return krippendorff_alpha_counts(counts, values=domain, level=level)


# -- consensus and leniency -------------------------------------------------------------------------------------------


def rating_consensus(items: ArrayLike, values: ArrayLike, *, n_items: int) -> tuple[FloatArray, FloatArray, IntArray]:
    """``(mean, std, count)`` of the ratings of every item, each ``(n_items,)``.

    ``std`` is the sample standard deviation (``ddof=1``), computed in two passes (no ``E[x^2] - E[x]^2``
    cancellation). ``mean`` is NaN where ``count == 0``, ``std`` where ``count < 2``. ``ValueError`` for malformed
    input. Annotators are not needed: an item's ratings are pooled whoever gave them.
    """
    item, vals, n = _item_values(items, values, n_items)
    count = np.bincount(item, minlength=n).astype(np.int64)
    mean = np.full(n, np.nan)
    np.divide(np.bincount(item, weights=vals, minlength=n), count, out=mean, where=count > 0)
    squares = np.bincount(item, weights=(vals - mean[item]) ** 2, minlength=n)
    std = np.full(n, np.nan)
    np.divide(squares, count - 1, out=std, where=count >= 2)
    return mean, np.sqrt(std), count


def _t_cdf_two_sided(angle: FloatArray, df: IntArray) -> FloatArray:
    """``P(|T| <= sqrt(df) tan(angle))`` for Student's t with integer ``df`` (Abramowitz & Stegun 26.7.3-4)."""
    sin, cos = np.sin(angle), np.cos(angle)
    even = df % 2 == 0
    # Even df: sin * sum_{k < df/2} a_k cos^2k, a_k = a_{k-1} (2k - 1) / (2k). Odd df: 2/pi (angle + sin cos *
    # sum_{k <= (df - 3)/2} b_k cos^2k), b_k = b_{k-1} 2k / (2k + 1); the sum is empty for df = 1.
    n_terms = np.where(even, df // 2, (df - 1) // 2)
    total = np.zeros_like(angle)
    term_even, term_odd = np.ones_like(angle), np.ones_like(angle)
    for k in range(int(n_terms.max())):  # a loop over at most _T_EXACT_DF / 2 series terms
        if k:
            term_even = term_even * (2 * k - 1) / (2 * k) * cos**2
            term_odd = term_odd * (2 * k) / (2 * k + 1) * cos**2
        total += np.where(k < n_terms, np.where(even, term_even, term_odd), 0.0)
    return np.where(even, sin * total, 2.0 / math.pi * (angle + sin * cos * total))


def _t_quantile(probability: float, df: IntArray) -> FloatArray:
    """Student t quantile at ``probability`` in ``(0.5, 1)`` for every positive integer in ``df``."""
    exact = np.arange(1, _T_EXACT_DF + 1)
    target = 2.0 * probability - 1.0
    low, high = np.zeros(exact.size), np.full(exact.size, math.pi / 2)
    for _ in range(100):  # bisection on the angle: 100 halvings reach machine precision
        middle = (low + high) / 2.0
        below = _t_cdf_two_sided(middle, exact) < target
        low, high = np.where(below, middle, low), np.where(below, high, middle)
    table = np.sqrt(exact) * np.tan((low + high) / 2.0)
    z = float(normal_quantile(probability))
    nu = np.maximum(df, 1).astype(np.float64)
    # Cornish-Fisher expansion of t in powers of 1/nu (Abramowitz & Stegun 26.7.5).
    g1 = (z**3 + z) / 4.0
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96.0
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384.0
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160.0
    expansion = z + g1 / nu + g2 / nu**2 + g3 / nu**3 + g4 / nu**4
    return np.where(df <= _T_EXACT_DF, table[np.clip(df, 1, _T_EXACT_DF) - 1], expansion)


def leniency(
    items: ArrayLike,
    annotators: ArrayLike,
    values: ArrayLike,
    *,
    n_items: int,
    n_annotators: int,
    level: float = 0.95,
) -> Leniency:
    """How much higher (or lower) every annotator rates than the other annotators of the same items.

    For a rating ``x`` of an item with ``c >= 2`` ratings summing to ``S``, the rating's offset is
    ``x - (S - x) / (c - 1)``: own rating minus the mean of the *other* annotators' ratings (leave-one-out, so an
    annotator is never compared with a mean they are part of). An annotator's ``offset`` is the mean over their
    ratings of items with at least one other rating; ``low`` / ``high`` is the Student t interval
    ``offset -+ t_{(1 + level) / 2, count - 1} * sd / sqrt(count)`` (``sd`` with ``ddof=1``), treating the
    annotator's offsets as independent (they share other annotators, so with heavy overlap the interval is a little
    optimistic). The t quantile is exact up to 30 degrees of freedom, a Cornish-Fisher expansion beyond.

    Returns :class:`Leniency`: ``offset`` NaN where ``count == 0``, ``low`` / ``high`` NaN where ``count < 2`` (zero
    width when all of an annotator's offsets are equal). ``ValueError`` for malformed input, an annotator rating an
    item twice, or ``level`` outside ``(0, 1)``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}.")
    item, who, vals, n, m = _ratings(items, annotators, values, n_items, n_annotators)
    per_item = np.bincount(item, minlength=n)
    sums = np.bincount(item, weights=vals, minlength=n)
    scored = per_item[item] >= 2
    item, who, vals = item[scored], who[scored], vals[scored]
    offsets = vals - (sums[item] - vals) / (per_item[item] - 1)
    count = np.bincount(who, minlength=m).astype(np.int64)
    mean = np.full(m, np.nan)
    np.divide(np.bincount(who, weights=offsets, minlength=m), count, out=mean, where=count > 0)
    squares = np.bincount(who, weights=(offsets - mean[who]) ** 2, minlength=m)
    spread = count >= 2
    se = np.full(m, np.nan)
    se[spread] = np.sqrt(squares[spread] / (count[spread] - 1) / count[spread])
    half = np.full(m, np.nan)
    half[spread] = _t_quantile((1.0 + level) / 2.0, count[spread] - 1) * se[spread]
    return Leniency(offset=mean, low=mean - half, high=mean + half, count=count)


# -- straight-lining --------------------------------------------------------------------------------------------------


def straight_lining(
    groups: ArrayLike,
    annotators: ArrayLike,
    values: ArrayLike,
    *,
    n_groups: int,
    min_ratings: int = 3,
) -> BoolArray:
    """``(n_groups,)`` bool: which judgments are straight-lined (the same value for every rating).

    A group is one judgment: all the ratings one annotator gave on one task (every response times every rating
    question), ``groups`` being the judgment index in ``0 .. n_groups - 1`` of every rating. The rule: a group is
    straight-lined when it holds at least ``min_ratings`` (default 3) ratings and all of them are equal. Fewer
    ratings are too few to tell a pattern from a genuine opinion (two equal ratings are common), so such groups are
    ``False``, as are empty groups. Use :func:`straight_lining_share` for a per-annotator rate.

    ``annotators`` is checked only: every group must belong to one annotator (``ValueError`` naming the first group
    with two), which catches a grouping key that forgot the annotator. ``ValueError`` also for malformed input or
    ``min_ratings < 1``.
    """
    size = _size(n_groups, "n_groups")
    if isinstance(min_ratings, bool) or not isinstance(min_ratings, int | np.integer) or min_ratings < 1:
        raise ValueError(f"min_ratings must be a positive integer, got {min_ratings!r}.")
    group = _index(groups, "groups", size)
    who = _index(annotators, "annotators", None, group.size)
    vals = _values(values, group.size)
    # Any one member of a group is a valid reference: with repeated indices the assignment keeps one of them.
    owner = np.zeros(size, dtype=np.int64)
    owner[group] = who
    mixed = np.flatnonzero(owner[group] != who)
    if mixed.size:
        raise ValueError(f"Group {int(group[mixed[0]])} holds ratings of more than one annotator.")
    reference = np.zeros(size)
    reference[group] = vals
    differing = np.bincount(group, weights=vals != reference[group], minlength=size)
    return (np.bincount(group, minlength=size) >= min_ratings) & (differing == 0)


def straight_lining_share(
    annotators: ArrayLike,
    flags: ArrayLike,
    *,
    n_annotators: int,
    eligible: ArrayLike | None = None,
) -> FloatArray:
    """``(n_annotators,)``: the share of every annotator's judgments that are straight-lined.

    ``annotators`` and ``flags`` are parallel per judgment (group): the judgment's annotator and its
    :func:`straight_lining` flag. ``eligible`` (optional, bool per judgment) restricts the denominator to the
    judgments that could be flagged at all, e.g. ``np.bincount(groups, minlength=n_groups) >= 3``, so annotators of
    short judgments are not diluted; by default every judgment counts. NaN for an annotator without a counted
    judgment. ``ValueError`` for malformed input, or a flagged judgment that is not eligible.
    """
    m = _size(n_annotators, "n_annotators")
    who = _index(annotators, "annotators", m)
    flagged = _flags(flags, "flags", who.size)
    counted = np.ones(who.size, dtype=bool) if eligible is None else _flags(eligible, "eligible", who.size)
    if (flagged & ~counted).any():
        raise ValueError(f"Judgment {int(np.flatnonzero(flagged & ~counted)[0])} is flagged but not eligible.")
    total = np.bincount(who[counted], minlength=m)
    share = np.full(m, np.nan)
    np.divide(np.bincount(who[flagged], minlength=m), total, out=share, where=total > 0)
    return share

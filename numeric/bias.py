"""Per-annotator bias and reliability: position bias, verbosity bias, self-consistency, gold accuracy, random clicking.

Every function is vectorised over judgments (``np.bincount``, ``np.lexsort``; no Python loop over annotators,
items or judgments), documents its edge cases, and is tested against a brute-force pure-Python reference.

Array conventions: inputs are 1-D arrays with one entry per judgment, all of the same length. ``annotators`` holds
integer indices ``0 .. n_annotators - 1`` (the caller maps user ids to positions); flags (``chose_left``,
``decisive``, ``correct``, ...) are booleans or 0/1 integers. Every result holds ``(n_annotators,)`` arrays indexed
by annotator, so an annotator without any (qualifying) judgment still has a row: count 0, rate NaN, p-value 1.0 and
q-value NaN. Empty input is fine. Malformed input (wrong shapes, an index out of range, a flag other than 0/1)
raises ``ValueError``.

p-values are exact binomial tests (:func:`.stats.binomial_test`); q-values are Benjamini-Hochberg adjusted across
the annotators that have data (:func:`.stats.benjamini_hochberg`), so "flag annotators with ``q < 0.05``" controls
the false discovery rate over one project's annotators.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .stats import benjamini_hochberg, binomial_test, wilson_interval

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

__all__ = [
    "GoldAccuracy",
    "PositionBias",
    "SelfConsistency",
    "VerbosityBias",
    "agreement_with_reference",
    "chance_agreement",
    "gold_accuracy",
    "position_bias",
    "random_clicker_test",
    "self_consistency",
    "verbosity_bias",
]


@dataclass(frozen=True, eq=False)
class PositionBias:
    """Per-annotator left/right preference on decisive pairwise judgments; every field is ``(n_annotators,)``.

    ``n``: decisive judgments; ``left``: how many picked the response shown on the left (Response 1); ``rate``:
    ``left / n`` (NaN when ``n == 0``); ``p_value``: exact two-sided binomial test of ``left`` out of ``n`` against
    0.5 (1.0 when ``n == 0``); ``q_value``: Benjamini-Hochberg across annotators with ``n > 0`` (NaN when ``n == 0``).
    """

    n: IntArray
    left: IntArray
    rate: FloatArray
    p_value: FloatArray
    q_value: FloatArray


@dataclass(frozen=True, eq=False)
class VerbosityBias:
    """Per-annotator preference for the longer response, paired against a baseline; every field ``(n_annotators,)``.

    ``n``: judgments; ``rate``: share where the annotator preferred the longer response; ``baseline_rate``: share
    where the baseline (consensus or gold) did, on the same judgments; ``excess``: ``rate - baseline_rate`` (rates
    and excess NaN when ``n == 0``); ``discordant_longer`` (b): annotator longer, baseline shorter;
    ``discordant_shorter`` (c): annotator shorter, baseline longer; ``p_value``: McNemar's exact test, i.e. the
    two-sided binomial test of b out of ``b + c`` against 0.5 (1.0 when ``b + c == 0``); ``q_value``:
    Benjamini-Hochberg across annotators with ``n > 0`` (NaN when ``n == 0``).
    """

    n: IntArray
    rate: FloatArray
    baseline_rate: FloatArray
    excess: FloatArray
    discordant_longer: IntArray
    discordant_shorter: IntArray
    p_value: FloatArray
    q_value: FloatArray


@dataclass(frozen=True, eq=False)
class SelfConsistency:
    """Per-annotator agreement with themselves on repeated items; every field is ``(n_annotators,)``.

    ``pairs``: ordered pairs of distinct judgments by the annotator on the same item (an item judged ``m`` times
    contributes ``m (m - 1)``); ``agreeing``: those pairs with equal labels; ``rate``: ``agreeing / pairs`` (NaN when
    ``pairs == 0``, i.e. the annotator never saw an item twice).
    """

    pairs: IntArray
    agreeing: IntArray
    rate: FloatArray


@dataclass(frozen=True, eq=False)
class GoldAccuracy:
    """Per-annotator accuracy on gold (known-answer) items; every field is ``(n_annotators,)``.

    ``n``: gold judgments; ``correct``: how many matched the gold label; ``rate``: ``correct / n``; ``low``,
    ``high``: Wilson score interval at the requested level (all three NaN when ``n == 0``).
    """

    n: IntArray
    correct: IntArray
    rate: FloatArray
    low: FloatArray
    high: FloatArray


def _annotator_index(annotators: ArrayLike, n_annotators: int) -> IntArray:
    """``annotators`` as a 1-D int64 array of indices in ``[0, n_annotators)``; ``ValueError`` otherwise."""
    if n_annotators < 0:
        raise ValueError(f"n_annotators must not be negative, got {n_annotators}.")
    index = np.asarray(annotators)
    if index.ndim != 1:
        raise ValueError(f"Expected a 1-D array of annotator indices, got shape {index.shape}.")
    if index.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(index.dtype, np.integer):
        raise ValueError(f"Annotator indices must be integers, got dtype {index.dtype}.")
    if index.min() < 0 or index.max() >= n_annotators:
        raise ValueError(f"Annotator indices must lie in [0, {n_annotators}).")
    return index.astype(np.int64)


def _flags(values: ArrayLike, name: str, length: int) -> BoolArray:
    """``values`` as a 1-D bool array of ``length``: booleans or 0/1 numbers; ``ValueError`` otherwise."""
    array = np.asarray(values)
    if array.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},) like annotators, got {array.shape}.")
    if array.dtype != np.bool_ and array.size and not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must hold booleans (or 0/1).")
    return array.astype(np.bool_)


def _labels(values: ArrayLike, name: str, length: int) -> IntArray:
    """``values`` as a 1-D int64 array of ``length``; ``ValueError`` for another shape or a non-integer dtype."""
    array = np.asarray(values)
    if array.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},) like annotators, got {array.shape}.")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer codes, got dtype {array.dtype}.")
    return array.astype(np.int64)


def _count(index: IntArray, mask: BoolArray | None, n_annotators: int) -> IntArray:
    """Judgments per annotator (those where ``mask`` is true, if given)."""
    selected = index if mask is None else index[mask]
    return np.bincount(selected, minlength=n_annotators).astype(np.int64)


def _ratio(numerator: IntArray, denominator: IntArray) -> FloatArray:
    """``numerator / denominator`` elementwise, NaN where the denominator is 0 (without a divide warning)."""
    return np.divide(
        numerator,
        denominator,
        out=np.full(denominator.shape, np.nan),
        where=denominator > 0,
    )


def _q_values(p_values: FloatArray, tested: BoolArray) -> FloatArray:
    """Benjamini-Hochberg over the annotators in ``tested``; NaN for the others (not counted in ``m``)."""
    return benjamini_hochberg(np.where(tested, p_values, np.nan))


def position_bias(
    annotators: ArrayLike, chose_left: ArrayLike, decisive: ArrayLike, *, n_annotators: int
) -> PositionBias:
    """Does an annotator favour the response shown on the left? Exact binomial test per annotator against 0.5.

    Per pairwise judgment: ``chose_left`` is true when the annotator preferred the response shown on the left
    (Response 1); ``decisive`` is true when they preferred either side (false for a tie or "both bad"). Only
    decisive judgments count; ``chose_left`` is ignored elsewhere. Position is only a bias when left and right
    are assigned at random per judgment, so a rate far from 0.5 reflects the annotator, not the data.

    Returns :class:`PositionBias`. Edge cases: an annotator without decisive judgments gets ``n = 0``, NaN rate,
    p-value 1.0 and NaN q-value; no decisive judgments at all, or empty input, give that for every annotator.
    """
    index = _annotator_index(annotators, n_annotators)
    left_flags = _flags(chose_left, "chose_left", index.size)
    counted = _flags(decisive, "decisive", index.size)
    n = _count(index, counted, n_annotators)
    left = _count(index, counted & left_flags, n_annotators)
    p_value = binomial_test(left, n, 0.5)
    return PositionBias(
        n=n,
        left=left,
        rate=_ratio(left, n),
        p_value=p_value,
        q_value=_q_values(p_value, n > 0),
    )


def verbosity_bias(
    annotators: ArrayLike, chose_longer: ArrayLike, baseline_chose_longer: ArrayLike, *, n_annotators: int
) -> VerbosityBias:
    """Does an annotator prefer the longer response more often than the baseline does on the same items?

    Pass only decisive judgments on items whose two responses differ in length and whose consensus (or gold)
    label is decisive: ``chose_longer`` is true when the annotator preferred the longer response,
    ``baseline_chose_longer`` when the baseline label of the judgment's item did. Comparing against the baseline
    on the same judgments (rather than against 0.5) separates a taste for length from longer responses simply
    being better in this data.

    The test is McNemar's exact test on the paired outcomes: only the discordant judgments carry information,
    ``b`` = annotator longer & baseline shorter and ``c`` = annotator shorter & baseline longer; under no bias each
    discordant judgment is equally likely to go either way, so the p-value is the two-sided binomial test of ``b``
    out of ``b + c`` against 0.5 (1.0 when ``b + c == 0``, e.g. an annotator who always agrees with the baseline).

    Returns :class:`VerbosityBias`; an annotator without judgments gets ``n = 0``, NaN rates, p-value 1.0 and NaN
    q-value. Annotators with judgments but no discordant pair keep p-value 1.0 and are counted in the
    Benjamini-Hochberg ``m``.
    """
    index = _annotator_index(annotators, n_annotators)
    longer = _flags(chose_longer, "chose_longer", index.size)
    baseline = _flags(baseline_chose_longer, "baseline_chose_longer", index.size)
    n = _count(index, None, n_annotators)
    rate = _ratio(_count(index, longer, n_annotators), n)
    baseline_rate = _ratio(_count(index, baseline, n_annotators), n)
    discordant_longer = _count(index, longer & ~baseline, n_annotators)
    discordant_shorter = _count(index, ~longer & baseline, n_annotators)
    p_value = binomial_test(discordant_longer, discordant_longer + discordant_shorter, 0.5)
    return VerbosityBias(
        n=n,
        rate=rate,
        baseline_rate=baseline_rate,
        excess=rate - baseline_rate,
        discordant_longer=discordant_longer,
        discordant_shorter=discordant_shorter,
        p_value=p_value,
        q_value=_q_values(p_value, n > 0),
    )


def self_consistency(
    annotators: ArrayLike, items: ArrayLike, labels: ArrayLike, *, n_annotators: int
) -> SelfConsistency:
    """How often an annotator gives the same label when they judge the same item again.

    ``items`` are integer item (task) ids and ``labels`` integer label codes (for pairwise judgments e.g. 0 = left
    better, 1 = right better, 2 = tie, with sides mapped back to fixed responses first so a swapped display
    still counts as the same answer). For every (annotator, item) judged ``m >= 2`` times, all ``m (m - 1)``
    ordered pairs of distinct judgments are compared; a label given ``c`` times contributes ``c (c - 1)`` agreeing
    pairs. Items judged once contribute nothing.

    Implementation: one sort by (annotator, item, label) — of a single combined int64 key when the three ranges
    fit, else ``np.lexsort`` — then run lengths of equal (annotator, item) and equal (annotator, item, label) keys,
    summed per annotator with ``np.bincount``.

    Returns :class:`SelfConsistency`; ``rate`` is NaN for an annotator with no repeated item.
    """
    index = _annotator_index(annotators, n_annotators)
    item_ids = _labels(items, "items", index.size)
    label_codes = _labels(labels, "labels", index.size)
    if index.size:  # shift to 0 .. range - 1 (codes may be negative, e.g. -1 for none)
        item_ids, label_codes = item_ids - item_ids.min(), label_codes - label_codes.min()
    n_item = int(item_ids.max()) + 1 if index.size else 1
    n_label = int(label_codes.max()) + 1 if index.size else 1
    if n_annotators * n_item * n_label < 2**62:
        key = np.sort((index * n_item + item_ids) * n_label + label_codes)
        pair_key = key // n_label
        a = pair_key // n_item
        new_item = np.ones(a.size, dtype=np.bool_)
        new_item[1:] = pair_key[1:] != pair_key[:-1]
        new_label = np.ones(a.size, dtype=np.bool_)
        new_label[1:] = key[1:] != key[:-1]
    else:
        order = np.lexsort((label_codes, item_ids, index))
        a, i, lab = index[order], item_ids[order], label_codes[order]
        new_item = np.ones(a.size, dtype=np.bool_)
        new_item[1:] = (a[1:] != a[:-1]) | (i[1:] != i[:-1])
        new_label = new_item.copy()
        new_label[1:] |= lab[1:] != lab[:-1]
    item_starts = np.flatnonzero(new_item)
    label_starts = np.flatnonzero(new_label)
    item_runs = np.diff(np.append(item_starts, a.size))
    label_runs = np.diff(np.append(label_starts, a.size))
    pairs = np.bincount(a[item_starts], weights=item_runs * (item_runs - 1), minlength=n_annotators)
    agreeing = np.bincount(a[label_starts], weights=label_runs * (label_runs - 1), minlength=n_annotators)
    # bincount sums the integer weights in float64: exact below 2**53, so the round trip to int64 loses nothing.
    pairs_int = pairs.astype(np.int64)
    agreeing_int = agreeing.astype(np.int64)
    return SelfConsistency(pairs=pairs_int, agreeing=agreeing_int, rate=_ratio(agreeing_int, pairs_int))


def gold_accuracy(annotators: ArrayLike, correct: ArrayLike, *, n_annotators: int, level: float = 0.95) -> GoldAccuracy:
    """Accuracy on gold items per annotator, with a Wilson score interval at ``level``.

    ``correct`` is true where the judgment matched the item's gold label (pass gold judgments only). The Wilson
    interval stays sensible for the small counts typical of gold checks (e.g. 10 of 10 correct gives a lower bound
    near 0.72 at 95%, not 1). Returns :class:`GoldAccuracy`; ``rate``, ``low`` and ``high`` are NaN where ``n == 0``.
    ``ValueError`` for ``level`` outside ``(0, 1)``.
    """
    index = _annotator_index(annotators, n_annotators)
    hits = _flags(correct, "correct", index.size)
    n = _count(index, None, n_annotators)
    n_correct = _count(index, hits, n_annotators)
    low, high = wilson_interval(n_correct, n, level=level)
    return GoldAccuracy(n=n, correct=n_correct, rate=_ratio(n_correct, n), low=low, high=high)


def agreement_with_reference(
    annotators: ArrayLike, agrees: ArrayLike, *, n_annotators: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """``(n, agreeing, rate)`` per annotator: judgments compared with a reference (e.g. consensus), how many agreed.

    ``agrees`` is true where the judgment matched the reference label of its item; pass only judgments whose item
    has a reference. ``rate = agreeing / n`` is NaN where ``n == 0``. All three arrays are ``(n_annotators,)``.
    """
    index = _annotator_index(annotators, n_annotators)
    hits = _flags(agrees, "agrees", index.size)
    n = _count(index, None, n_annotators)
    agreeing = _count(index, hits, n_annotators)
    return n, agreeing, _ratio(agreeing, n)


def chance_agreement(
    annotators: ArrayLike, labels: ArrayLike, reference: ArrayLike, *, n_annotators: int, n_classes: int
) -> FloatArray:
    """Per annotator, the agreement expected by chance: ``sum_k p_annotator(k) * p_reference(k)``.

    Per judgment: ``labels`` is the annotator's label and ``reference`` the reference (consensus or gold) label of
    the same item, both integer codes in ``[0, n_classes)``. ``p_annotator(k)`` is the share of the annotator's
    judgments labelled ``k``; ``p_reference(k)`` the share of the reference labels on those same judgments equal to
    ``k``. This is what an annotator who kept their label frequencies but answered independently of the item
    would agree on (the chance term of Cohen's kappa, per annotator), i.e. the null for
    :func:`random_clicker_test`. Returns ``(n_annotators,)`` floats in ``[0, 1]``, NaN for an annotator without
    judgments. ``ValueError`` for a label outside ``[0, n_classes)``.
    """
    if n_classes < 1:
        raise ValueError(f"n_classes must be positive, got {n_classes}.")
    index = _annotator_index(annotators, n_annotators)
    own = _labels(labels, "labels", index.size)
    ref = _labels(reference, "reference", index.size)
    if ((own < 0) | (own >= n_classes) | (ref < 0) | (ref >= n_classes)).any():
        raise ValueError(f"labels and reference must lie in [0, {n_classes}).")
    cells = n_annotators * n_classes
    own_counts = np.bincount(index * n_classes + own, minlength=cells).reshape(n_annotators, n_classes)
    ref_counts = np.bincount(index * n_classes + ref, minlength=cells).reshape(n_annotators, n_classes)
    n = _count(index, None, n_annotators)
    # sum_k (own_k / n) (ref_k / n) = (sum_k own_k ref_k) / n^2, in integers until the one division.
    products = (own_counts.astype(np.int64) * ref_counts).sum(axis=1)
    return _ratio(products, n * n)


def random_clicker_test(
    annotators: ArrayLike, agrees: ArrayLike, chance: ArrayLike, *, n_annotators: int
) -> FloatArray:
    """Per annotator, the one-sided exact binomial p-value that their agreement with the reference beats chance.

    ``agrees`` is per judgment (as in :func:`agreement_with_reference`); ``chance`` is per annotator, shape
    ``(n_annotators,)``, the agreement probability of someone answering at random (e.g. :func:`chance_agreement`).
    The p-value is ``P[X >= agreeing]`` for ``X ~ Binomial(n, chance)``: small means clearly better than chance; a
    value near 1 flags a possible random clicker (too few judgments also give a large p-value, so read it with
    ``n``). 1.0 where ``n == 0`` (``chance`` may be NaN there). ``ValueError`` for ``chance`` of the wrong shape,
    or outside ``[0, 1]`` / NaN for an annotator with judgments.
    """
    index = _annotator_index(annotators, n_annotators)
    hits = _flags(agrees, "agrees", index.size)
    null = np.asarray(chance, dtype=np.float64)
    if null.shape != (n_annotators,):
        raise ValueError(f"chance must have shape ({n_annotators},), got {null.shape}.")
    n = _count(index, None, n_annotators)
    agreeing = _count(index, hits, n_annotators)
    tested = n > 0
    if not ((null[tested] >= 0.0) & (null[tested] <= 1.0)).all():
        raise ValueError("chance must lie in [0, 1] for every annotator with judgments.")
    return binomial_test(agreeing, n, np.where(tested, null, 0.5), alternative="greater")

"""Cohen's kappa between every pair of annotators who judged enough of the same items, all pairs at once.

Judgments are parallel int arrays ``items``, ``workers``, ``labels`` (one entry per judgment). Each worker judges an
item at most once (a repeated judgment of the same item by the same worker is dropped from the pairing, keeping
the first). Pairs are formed within items, so the work grows with Σ m_i² over items (m_i judgments each), never
with workers².
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._keys import group_keys

__all__ = ["PeerKappas", "annotator_mean_kappa", "peer_kappas"]

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PeerKappas:
    """``first[p] < second[p]`` are the workers of pair ``p``; ``shared[p]`` the items both judged; ``kappa[p]``
    their unweighted Cohen's kappa on those items (NaN when chance agreement is 1: both always gave one and the
    same label). Only pairs with at least ``min_shared`` shared items are listed."""

    first: IntArray
    second: IntArray
    shared: IntArray
    kappa: FloatArray


def _within_item_pairs(items: IntArray, workers: IntArray, n_workers: int) -> tuple[IntArray, IntArray]:
    """Index pairs ``(i, j)`` of judgments of the same item by different workers, each unordered pair once."""
    # One stable sort of a combined key (timsort: nearly linear on judgments already grouped by item).
    order = np.argsort(items * n_workers + workers, kind="stable")
    items, workers = items[order], workers[order]
    # Drop a worker's repeated judgments of one item (same item and worker as the previous row).
    keep = np.ones(order.size, dtype=bool)
    keep[1:] = (items[1:] != items[:-1]) | (workers[1:] != workers[:-1])
    order, items = order[keep], items[keep]
    if order.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    # The largest number of judgments of one item bounds the offsets: a loop over offsets, not over items.
    run_starts = np.flatnonzero(np.r_[True, items[1:] != items[:-1]])
    longest = int(np.diff(np.r_[run_starts, items.size]).max())
    left, right = [], []
    for offset in range(1, longest):
        same = np.flatnonzero(items[offset:] == items[:-offset])
        left.append(order[same])
        right.append(order[same + offset])
    if not left:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(left), np.concatenate(right)


def peer_kappas(
    items: ArrayLike,
    workers: ArrayLike,
    labels: ArrayLike,
    *,
    n_workers: int,
    n_classes: int,
    min_shared: int = 20,
) -> PeerKappas:
    """Cohen's kappa for every pair of workers sharing at least ``min_shared`` items (see :class:`PeerKappas`).

    Empty input, or no pair reaching ``min_shared``, gives empty arrays. Labels outside ``0..n_classes-1`` or
    workers outside ``0..n_workers-1`` raise ``ValueError``.
    """
    items = np.asarray(items, dtype=np.int64)
    workers = np.asarray(workers, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if not items.shape == workers.shape == labels.shape or items.ndim != 1:
        raise ValueError("items, workers and labels must be 1-D arrays of the same length.")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}.")
    if workers.size and (workers.min() < 0 or workers.max() >= n_workers):
        raise ValueError(f"workers must lie in 0..{n_workers - 1}.")
    empty = PeerKappas(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    i, j = _within_item_pairs(items, workers, n_workers)
    if i.size == 0:
        return empty
    # Orient every pair so that the first worker has the smaller index; the labels follow their worker.
    swap = workers[i] > workers[j]
    i, j = np.where(swap, j, i), np.where(swap, i, j)
    pair_keys, _, pair_of = group_keys(workers[i] * n_workers + workers[j], n_workers * n_workers)
    k2 = n_classes * n_classes
    tables = np.bincount(pair_of * k2 + labels[i] * n_classes + labels[j], minlength=pair_keys.size * k2).reshape(
        pair_keys.size, n_classes, n_classes
    )
    shared = tables.sum(axis=(1, 2))
    enough = shared >= min_shared
    if not enough.any():
        return empty
    tables, shared, pair_keys = tables[enough].astype(np.float64), shared[enough], pair_keys[enough]
    observed = np.trace(tables, axis1=1, axis2=2) / shared
    expected = np.einsum("pk,pk->p", tables.sum(axis=2), tables.sum(axis=1)) / shared.astype(np.float64) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(expected < 1.0, (observed - expected) / (1.0 - expected), np.nan)
    return PeerKappas(pair_keys // n_workers, pair_keys % n_workers, shared.astype(np.int64), kappa)


def annotator_mean_kappa(peers: PeerKappas, *, n_workers: int) -> FloatArray:
    """Each worker's mean kappa over the pairs they belong to (NaN kappas left out; NaN with no pair)."""
    valid = ~np.isnan(peers.kappa)
    ends = np.concatenate([peers.first[valid], peers.second[valid]])
    values = np.concatenate([peers.kappa[valid], peers.kappa[valid]])
    totals = np.bincount(ends, weights=values, minlength=n_workers)
    counts = np.bincount(ends, minlength=n_workers)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)

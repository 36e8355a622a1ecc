"""Cohen's kappa between all annotator pairs, checked pair by pair against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from numeric import annotator_mean_kappa, peer_kappas


def _crowd(seed: int, n_items: int = 400, n_workers: int = 12, per_item: int = 4, k: int = 3):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    items = np.repeat(np.arange(n_items), per_item)
    workers = np.concatenate([rng.choice(n_workers, per_item, replace=False) for _ in range(n_items)])
    accuracy = rng.uniform(0.4, 0.95, n_workers)[workers]
    labels = np.where(rng.random(items.size) < accuracy, truth[items], rng.integers(0, k, items.size))
    order = rng.permutation(items.size)  # input order must not matter
    return items[order], workers[order], labels[order]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_pair_matches_scikit_learn_on_its_shared_items(seed: int) -> None:
    items, workers, labels = _crowd(seed)
    result = peer_kappas(items, workers, labels, n_workers=12, n_classes=3, min_shared=20)
    assert result.first.size > 20
    for a, b, shared, kappa in zip(result.first, result.second, result.shared, result.kappa, strict=True):
        assert a < b
        on_a = dict(zip(items[workers == a], labels[workers == a], strict=True))
        on_b = dict(zip(items[workers == b], labels[workers == b], strict=True))
        common = sorted(set(on_a) & set(on_b))
        assert shared == len(common) >= 20
        expected = cohen_kappa_score([on_a[i] for i in common], [on_b[i] for i in common], labels=[0, 1, 2])
        assert kappa == pytest.approx(expected, abs=1e-12)
    # Pairs below the threshold are left out, and every listed pair is one no other listed pair repeats.
    assert len(set(zip(result.first.tolist(), result.second.tolist(), strict=True))) == result.first.size


def test_mean_kappa_per_annotator_averages_their_pairs() -> None:
    items, workers, labels = _crowd(5)
    result = peer_kappas(items, workers, labels, n_workers=12, n_classes=3, min_shared=20)
    means = annotator_mean_kappa(result, n_workers=12)
    for w in range(12):
        mine = result.kappa[(result.first == w) | (result.second == w)]
        assert means[w] == pytest.approx(mine.mean())


def test_edge_cases() -> None:
    empty = peer_kappas([], [], [], n_workers=3, n_classes=2)
    assert empty.first.size == 0 and np.isnan(annotator_mean_kappa(empty, n_workers=3)).all()
    # Two workers who always give the same single label: kappa is undefined (chance agreement 1).
    items = np.repeat(np.arange(25), 2)
    workers = np.tile([0, 1], 25)
    same = peer_kappas(items, workers, np.zeros(50, int), n_workers=2, n_classes=2, min_shared=20)
    assert same.shared.tolist() == [25] and np.isnan(same.kappa).all()
    # A worker's repeated judgment of one item does not pair with itself.
    alone = peer_kappas([0, 0], [1, 1], [0, 1], n_workers=2, n_classes=2, min_shared=1)
    assert alone.first.size == 0
    with pytest.raises(ValueError, match="labels"):
        peer_kappas([0], [0], [5], n_workers=1, n_classes=2)
    with pytest.raises(ValueError, match="same length"):
        peer_kappas([0, 1], [0], [0], n_workers=1, n_classes=2)

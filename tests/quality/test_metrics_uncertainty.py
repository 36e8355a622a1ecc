"""Uncertainty scores against brute-force pure-Python references (``math`` only), over random Dirichlet predictions."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from numeric import (
    entropy,
    least_confidence,
    margin,
    normalize_probs,
    pairwise_probs,
    uncertainty_rank,
)

STRATEGIES = ("least_confidence", "margin", "entropy")
CASES = [(k, seed) for k in (2, 3, 5, 10) for seed in (0, 1, 2)]


def ref_least_confidence(row: list[float]) -> float:
    return 1.0 - max(row)


def ref_margin(row: list[float]) -> float:
    first, second = sorted(row, reverse=True)[:2]
    return first - second


def ref_entropy(row: list[float]) -> float:
    return -sum(p * math.log(p) for p in row if p > 0)


REFERENCES = {"least_confidence": ref_least_confidence, "margin": ref_margin, "entropy": ref_entropy}
SCORES = {"least_confidence": least_confidence, "margin": margin, "entropy": entropy}


def ref_most_informative_first(rows: list[list[float]], strategy: str) -> list[int]:
    """Row indices, most uncertain first; unscored rows (NaN) last; ties by index."""

    def key(index: int) -> tuple[int, float, int]:
        row = rows[index]
        if any(math.isnan(p) for p in row):
            return (1, 0.0, index)
        score = REFERENCES[strategy](row)
        return (0, score if strategy == "margin" else -score, index)

    return sorted(range(len(rows)), key=key)


def dirichlet(k: int, seed: int, n: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Mix peaked (alpha 0.3) and flat (alpha 3) predictions, and include exact one-hot and uniform rows.
    probs = np.vstack([rng.dirichlet(np.full(k, 0.3), n // 2), rng.dirichlet(np.full(k, 3.0), n - n // 2)])
    probs[0] = np.eye(k)[0]
    probs[1] = np.full(k, 1.0 / k)
    return probs


@pytest.mark.parametrize(("k", "seed"), CASES)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_score_matches_reference(strategy: str, k: int, seed: int) -> None:
    probs = dirichlet(k, seed)
    expected = [REFERENCES[strategy](row) for row in probs.tolist()]
    np.testing.assert_allclose(SCORES[strategy](probs), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("k", "seed"), CASES)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_rank_orders_like_reference_with_unscored_last(strategy: str, k: int, seed: int) -> None:
    probs = dirichlet(k, seed)
    probs[np.random.default_rng(seed).choice(len(probs), 15, replace=False)] = np.nan
    keys = uncertainty_rank(probs, strategy)
    assert keys.shape == (len(probs),)
    assert list(np.argsort(keys, kind="stable")) == ref_most_informative_first(probs.tolist(), strategy)


def test_known_values_for_one_hot_uniform_and_tie() -> None:
    probs = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.4, 0.4, 0.2]])
    np.testing.assert_allclose(least_confidence(probs), [0.0, 2 / 3, 0.6])
    np.testing.assert_allclose(margin(probs), [1.0, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(entropy(probs), [0.0, math.log(3), -(2 * 0.4 * math.log(0.4) + 0.2 * math.log(0.2))])


@pytest.mark.parametrize("score", [least_confidence, margin, entropy])
def test_row_with_nan_scores_nan_and_others_are_untouched(score: Callable[[np.ndarray], np.ndarray]) -> None:
    probs = np.array([[0.7, 0.3], [np.nan, np.nan], [0.5, np.nan], [0.0, 1.0]])
    result = score(probs)
    assert np.isnan(result[1]) and np.isnan(result[2])
    assert not np.isnan(result[0]) and not np.isnan(result[3])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_rank_puts_unscored_rows_at_infinity(strategy: str) -> None:
    keys = uncertainty_rank([[0.99, 0.01], [np.nan, np.nan], [0.5, 0.5]], strategy)
    assert keys[1] == np.inf
    assert np.isfinite(keys[[0, 2]]).all()
    assert list(np.argsort(keys, kind="stable")) == [2, 0, 1]


def test_rank_rejects_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="'random'"):
        uncertainty_rank([[0.5, 0.5]], "random")


@pytest.mark.parametrize("bad", [[0.5, 0.5], [[1.0]], [[[0.5, 0.5]]]])
def test_scores_reject_wrong_shapes(bad: object) -> None:
    with pytest.raises(ValueError, match="k >= 2"):
        least_confidence(bad)  # type: ignore[arg-type]


def test_empty_input_gives_empty_scores() -> None:
    empty = np.empty((0, 3))
    for strategy in STRATEGIES:
        assert uncertainty_rank(empty, strategy).shape == (0,)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_pairwise_strategies_all_order_by_closeness_to_half(seed: int) -> None:
    p = np.random.default_rng(seed).random(300)
    p[:3] = [0.0, 1.0, 0.5]
    probs = pairwise_probs(p)
    np.testing.assert_array_equal(probs, np.column_stack([p, 1 - p]))
    expected = list(np.argsort(np.abs(p - 0.5), kind="stable"))
    for strategy in STRATEGIES:
        assert list(np.argsort(uncertainty_rank(probs, strategy), kind="stable")) == expected, strategy


def test_pairwise_probs_keeps_missing_predictions_missing() -> None:
    probs = pairwise_probs([0.8, np.nan])
    np.testing.assert_allclose(probs[0], [0.8, 0.2])
    assert np.isnan(probs[1]).all()
    assert uncertainty_rank(probs, "entropy")[1] == np.inf


def test_pairwise_probs_rejects_a_matrix() -> None:
    with pytest.raises(ValueError, match=r"\(n,\)"):
        pairwise_probs([[0.5, 0.5]])


def test_normalize_renormalises_rows_within_tolerance() -> None:
    probs = np.array([[0.3333, 0.3333, 0.3333], [0.5, 0.5, 0.0], [0.2, 0.2, 0.6005]])
    result = normalize_probs(probs)
    np.testing.assert_allclose(result.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(result[0], [1 / 3] * 3)
    np.testing.assert_array_equal(result[1], [0.5, 0.5, 0.0])


def test_normalize_accepts_no_rows() -> None:
    assert normalize_probs(np.empty((0, 4))).shape == (0, 4)


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ([0.5, np.nan], "Row 2 contains a value that is not a finite number"),
        ([np.inf, 0.0], "Row 2 contains a value that is not a finite number"),
        ([1.2, -0.2], r"Row 2 contains a value outside \[0, 1\]"),
        ([0.6, 0.6], r"Row 2 sums to 1\.2, not 1"),
        ([0.0, 0.0], "Row 2 sums to 0, not 1"),
    ],
)
def test_normalize_names_the_first_bad_row(bad_row: list[float], message: str) -> None:
    probs = [[0.5, 0.5], [0.9, 0.1], bad_row, [2.0, 2.0]]
    with pytest.raises(ValueError, match=message):
        normalize_probs(probs)


def test_normalize_tolerance_is_configurable() -> None:
    probs = [[0.5, 0.51]]
    with pytest.raises(ValueError, match=r"Row 0 sums to 1\.01"):
        normalize_probs(probs)
    np.testing.assert_allclose(normalize_probs(probs, atol=0.02), [[0.5 / 1.01, 0.51 / 1.01]])


@pytest.mark.parametrize("bad", [[0.5, 0.5], [[1.0]]])
def test_normalize_rejects_wrong_shapes(bad: object) -> None:
    with pytest.raises(ValueError, match="k >= 2"):
        normalize_probs(bad)  # type: ignore[arg-type]

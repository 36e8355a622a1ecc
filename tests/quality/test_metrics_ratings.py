"""Rating statistics against the krippendorff package (alpha on the dense raters x units matrix), scipy (Student t
quantiles and intervals) and plain Python loops (consensus, leniency, straight-lining)."""

from __future__ import annotations

import ast
import inspect

import krippendorff
import numpy as np
import pytest
from scipy import stats

from numeric import ratings
from numeric.ratings import (
    Leniency,
    leniency,
    rating_alpha,
    rating_consensus,
    straight_lining,
    straight_lining_share,
)


def simulate(
    n_items: int, n_annotators: int, seed: int, missing: float = 0.5, scale: tuple[int, int] = (1, 7)
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A dense (annotators, items) matrix of integer ratings with NaN holes, and its parallel-array form."""
    rng = np.random.default_rng(seed)
    quality = rng.normal(0, 1.2, n_items)
    bias = rng.normal(0, 0.6, n_annotators)
    matrix = np.round(
        (scale[0] + scale[1]) / 2 + quality[None, :] + bias[:, None] + rng.normal(0, 1, (n_annotators, n_items))
    )
    matrix = np.clip(matrix, *scale)
    matrix[rng.random(matrix.shape) < missing] = np.nan
    annotators, items = np.nonzero(~np.isnan(matrix))
    order = rng.permutation(items.size)  # the order of the ratings must not matter
    annotators, items = annotators[order], items[order]
    return matrix, items, annotators, matrix[annotators, items]


# -- Krippendorff's alpha -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("level", ["interval", "ordinal"])
def test_alpha_matches_krippendorff_package(seed: int, level: str) -> None:
    matrix, items, annotators, values = simulate(120, 9, seed)
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
    got = rating_alpha(items, annotators, values, n_items=120, n_annotators=9, level=level)
    assert got == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("level", ["interval", "ordinal", "nominal", "ratio"])
def test_alpha_non_integer_and_wide_ratings(level: str) -> None:
    """Half-point ratings go through np.unique; a 0..100 slider with gaps through the counting path."""
    matrix, items, annotators, values = simulate(80, 6, seed=11, scale=(1, 9))
    halves = matrix / 2 + 0.25
    expected = krippendorff.alpha(reliability_data=halves, level_of_measurement=level)
    got = rating_alpha(items, annotators, values / 2 + 0.25, n_items=80, n_annotators=6, level=level)
    assert got == pytest.approx(expected, abs=1e-10)
    slider = matrix * 11 - 3
    expected = krippendorff.alpha(reliability_data=slider, level_of_measurement=level)
    got = rating_alpha(items, annotators, values * 11 - 3, n_items=80, n_annotators=6, level=level)
    assert got == pytest.approx(expected, abs=1e-10)


def test_alpha_ignores_items_rated_once_and_unused_indices() -> None:
    _, items, annotators, values = simulate(50, 5, seed=3)
    reference = rating_alpha(items, annotators, values, n_items=50, n_annotators=5)
    # Extra items with a single rating each and unused item / annotator indices change nothing.
    more_items = np.concatenate([items, [50, 51, 52]])
    more_annotators = np.concatenate([annotators, [0, 1, 2]])
    more_values = np.concatenate([values, [1.0, 7.0, 3.0]])
    got = rating_alpha(more_items, more_annotators, more_values, n_items=60, n_annotators=8)
    assert got == pytest.approx(reference, abs=1e-12)


def test_alpha_edge_cases() -> None:
    assert np.isnan(rating_alpha([], [], [], n_items=3, n_annotators=2))
    assert np.isnan(rating_alpha([0, 1, 2], [0, 0, 1], [1.0, 2.0, 3.0], n_items=3, n_annotators=2))  # none pairable
    assert np.isnan(rating_alpha([0, 0, 1, 1], [0, 1, 0, 1], [4, 4, 4, 4], n_items=2, n_annotators=2))  # one value
    assert rating_alpha([0, 0, 1, 1], [0, 1, 0, 1], [1, 1, 5, 5], n_items=2, n_annotators=2) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="level"):
        rating_alpha([0, 0], [0, 1], [1, 2], n_items=1, n_annotators=2, level="fuzzy")
    with pytest.raises(ValueError, match="Annotator 1 rated item 0 more than once"):
        rating_alpha([0, 0, 0], [0, 1, 1], [1, 2, 3], n_items=1, n_annotators=2)
    with pytest.raises(ValueError, match="distinct rating values"):
        rng = np.random.default_rng(0)
        n = 40_000
        rating_alpha(np.arange(n) // 2, np.arange(n) % 2, rng.random(n), n_items=n // 2, n_annotators=2)


@pytest.mark.parametrize(
    ("items", "annotators", "values", "match"),
    [
        ([0, 3], [0, 1], [1.0, 2.0], "items"),
        ([0, 1], [0, 2], [1.0, 2.0], "annotators"),
        ([0, 1], [0, 1], [1.0, np.nan], "finite"),
        ([0, 1], [0, 1], [1.0, np.inf], "finite"),
        ([0, 1], [0, 1], [1.0], "shape"),
        ([0, 1], [0], [1.0, 2.0], "one entry per rating"),
        ([0.0, 1.0], [0, 1], [1.0, 2.0], "integer"),
        ([[0, 1]], [0, 1], [1.0, 2.0], "1-D"),
        ([0, 1], [0, 1], ["a", "b"], "real numbers"),
    ],
)
def test_malformed_ratings_raise(items: list, annotators: list, values: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rating_alpha(items, annotators, values, n_items=3, n_annotators=2)
    with pytest.raises(ValueError, match=match):
        leniency(items, annotators, values, n_items=3, n_annotators=2)


# -- consensus ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_consensus_matches_a_loop(seed: int) -> None:
    matrix, items, _, values = simulate(70, 6, seed, missing=0.6)
    mean, std, count = rating_consensus(items, values, n_items=72)
    for i in range(72):
        column = matrix[:, i] if i < 70 else np.array([np.nan])
        present = column[~np.isnan(column)]
        assert count[i] == present.size
        if present.size == 0:
            assert np.isnan(mean[i]) and np.isnan(std[i])
            continue
        assert mean[i] == pytest.approx(present.mean(), abs=1e-12)
        if present.size < 2:
            assert np.isnan(std[i])
        else:
            assert std[i] == pytest.approx(np.std(present, ddof=1), abs=1e-12)


def test_consensus_is_stable_for_large_offsets() -> None:
    mean, std, _ = rating_consensus([0, 0, 0], [1e9 + 1, 1e9 + 2, 1e9 + 3], n_items=1)
    assert mean[0] == 1e9 + 2 and std[0] == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="items"):
        rating_consensus([0, 2], [1.0, 2.0], n_items=2)


# -- leniency -------------------------------------------------------------------------------------------------------


def test_t_quantiles_match_scipy() -> None:
    df = np.arange(1, 400)
    for probability in (0.55, 0.8, 0.95, 0.975, 0.995, 0.9995):
        expected = stats.t.ppf(probability, df)
        np.testing.assert_allclose(ratings._t_quantile(probability, df), expected, rtol=1e-6)
        np.testing.assert_allclose(ratings._t_quantile(probability, df[:30]), expected[:30], rtol=1e-12)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("level", [0.9, 0.95])
def test_leniency_matches_a_loop_and_scipy_t_intervals(seed: int, level: float) -> None:
    n_items, n_annotators = 60, 8
    matrix, items, annotators, values = simulate(n_items, n_annotators, seed, missing=0.7)
    result = leniency(items, annotators, values, n_items=n_items, n_annotators=n_annotators + 1, level=level)
    assert isinstance(result, Leniency)
    for a in range(n_annotators + 1):
        offsets = []
        for i in range(n_items):
            if a < n_annotators and not np.isnan(matrix[a, i]):
                others = np.delete(matrix[:, i], a)
                others = others[~np.isnan(others)]
                if others.size:
                    offsets.append(matrix[a, i] - others.mean())
        assert result.count[a] == len(offsets)
        if not offsets:
            assert np.isnan(result.offset[a]) and np.isnan(result.low[a]) and np.isnan(result.high[a])
            continue
        assert result.offset[a] == pytest.approx(np.mean(offsets), abs=1e-12)
        if len(offsets) < 2:
            assert np.isnan(result.low[a]) and np.isnan(result.high[a])
            continue
        low, high = stats.t.interval(level, len(offsets) - 1, loc=np.mean(offsets), scale=stats.sem(offsets))
        assert result.low[a] == pytest.approx(low, abs=1e-9)
        assert result.high[a] == pytest.approx(high, abs=1e-9)


def test_leniency_recovers_annotator_bias() -> None:
    rng = np.random.default_rng(5)
    n_items, n_annotators = 4_000, 20
    bias = np.linspace(-1, 1, n_annotators)
    items = np.repeat(np.arange(n_items), 5)
    annotators = np.concatenate([rng.choice(n_annotators, 5, replace=False) for _ in range(n_items)])
    values = rng.normal(0, 1, n_items)[items] + bias[annotators] + rng.normal(0, 0.5, items.size)
    result = leniency(items, annotators, values, n_items=n_items, n_annotators=n_annotators)
    # own - mean of the 4 others, drawn from the 19 other annotators whose biases average -b_a / 19 (the biases sum
    # to 0): E[offset] = b_a + b_a / 19 = b_a * 20 / 19.
    expected = bias * 20 / 19
    np.testing.assert_allclose(result.offset, expected, atol=0.08)
    assert ((result.low < expected) & (expected < result.high)).mean() >= 0.85


def test_leniency_edge_cases() -> None:
    # Item 0: two ratings, item 1: one rating (not scored); annotator 2 never rated anything.
    result = leniency([0, 0, 1], [0, 1, 0], [5.0, 3.0, 7.0], n_items=2, n_annotators=3)
    np.testing.assert_array_equal(result.count, [1, 1, 0])
    np.testing.assert_allclose(result.offset[:2], [2.0, -2.0])
    assert np.isnan(result.offset[2]) and np.isnan(result.low).all() and np.isnan(result.high).all()
    # Equal offsets give a zero-width interval.
    result = leniency([0, 0, 1, 1], [0, 1, 0, 1], [5.0, 4.0, 3.0, 2.0], n_items=2, n_annotators=2)
    np.testing.assert_allclose(result.low, result.high)
    np.testing.assert_allclose(result.offset, [1.0, -1.0])
    with pytest.raises(ValueError, match="level"):
        leniency([0, 0], [0, 1], [1.0, 2.0], n_items=1, n_annotators=2, level=1.0)
    with pytest.raises(ValueError, match="more than once"):
        leniency([0, 0], [1, 1], [1.0, 2.0], n_items=1, n_annotators=2)
    empty = leniency([], [], [], n_items=0, n_annotators=2)
    assert empty.count.tolist() == [0, 0] and np.isnan(empty.offset).all()


# -- straight-lining ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_straight_lining_matches_a_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_groups = 300
    sizes = rng.integers(0, 7, n_groups)
    groups = np.repeat(np.arange(n_groups), sizes)
    owner = rng.integers(0, 12, n_groups)
    annotators = owner[groups]
    lazy = rng.random(n_groups) < 0.3
    values = np.where(lazy[groups], 4.0, rng.integers(1, 8, groups.size)).astype(float)
    order = rng.permutation(groups.size)
    groups, annotators, values = groups[order], annotators[order], values[order]
    flags = straight_lining(groups, annotators, values, n_groups=n_groups)
    expected = [(groups == g).sum() >= 3 and np.unique(values[groups == g]).size == 1 for g in range(n_groups)]
    np.testing.assert_array_equal(flags, expected)
    two = straight_lining(groups, annotators, values, n_groups=n_groups, min_ratings=2)
    np.testing.assert_array_equal(
        two, [(groups == g).sum() >= 2 and np.unique(values[groups == g]).size == 1 for g in range(n_groups)]
    )
    share = straight_lining_share(owner, flags, n_annotators=13)
    eligible = np.bincount(groups, minlength=n_groups) >= 3
    share_eligible = straight_lining_share(owner, flags, n_annotators=13, eligible=eligible)
    for a in range(13):
        mine = owner == a
        if not mine.any():
            assert np.isnan(share[a]) and np.isnan(share_eligible[a])
            continue
        assert share[a] == pytest.approx(flags[mine].mean())
        if (mine & eligible).any():
            assert share_eligible[a] == pytest.approx(flags[mine & eligible].mean())
        else:
            assert np.isnan(share_eligible[a])


def test_straight_lining_rules_and_errors() -> None:
    flags = straight_lining([0, 0, 0, 1, 1, 1, 2, 2], [5, 5, 5, 6, 6, 6, 7, 7], [3, 3, 3, 3, 4, 3, 2, 2], n_groups=4)
    assert flags.tolist() == [True, False, False, False]  # group 2 has two ratings only, group 3 none
    with pytest.raises(ValueError, match="Group 0 holds ratings of more than one annotator"):
        straight_lining([0, 0, 0], [1, 1, 2], [3, 3, 3], n_groups=1)
    with pytest.raises(ValueError, match="min_ratings"):
        straight_lining([0], [0], [1.0], n_groups=1, min_ratings=0)
    with pytest.raises(ValueError, match="groups"):
        straight_lining([0, 1], [0, 0], [1.0, 1.0], n_groups=1)
    with pytest.raises(ValueError, match="flagged but not eligible"):
        straight_lining_share([0, 1], [True, False], n_annotators=2, eligible=[False, True])
    with pytest.raises(ValueError, match="flags"):
        straight_lining_share([0, 1], [2, 0], n_annotators=2)
    assert straight_lining([], [], [], n_groups=2).tolist() == [False, False]


# -- module hygiene -------------------------------------------------------------------------------------------------


def test_module_is_pure_numpy() -> None:
    tree = ast.parse(inspect.getsource(ratings))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert {name.split(".")[0] for name in imported} <= {"__future__", "dataclasses", "math", "typing", "numpy"}
    for name in ratings.__all__:
        assert getattr(ratings, name).__doc__, name

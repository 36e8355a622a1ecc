"""group_keys and group_medians against numpy's own np.unique and np.median, on both of their code paths."""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest

import numeric
from numeric import _keys, group_keys, group_medians, self_consistency


@pytest.mark.parametrize(("n_keys", "n_bins"), [(1000, 50), (1000, 4000), (10, 10**9), (0, 5)])
def test_group_keys_is_np_unique(n_keys: int, n_bins: int) -> None:
    keys = np.random.default_rng(n_keys + n_bins).integers(0, n_bins, n_keys)
    distinct, counts, inverse = group_keys(keys, n_bins)
    expected, expected_inverse, expected_counts = np.unique(keys, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(distinct, expected)
    np.testing.assert_array_equal(counts, expected_counts)
    np.testing.assert_array_equal(inverse, expected_inverse)
    np.testing.assert_array_equal(distinct[inverse], keys)
    assert distinct.dtype == counts.dtype == inverse.dtype == np.int64


def test_group_keys_counts_only_when_the_range_is_small() -> None:
    assert _keys.dense(1000, 4000) and _keys.dense(10, 1 << 16)
    assert not _keys.dense(1000, 10**9)


def reference_medians(groups: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    return np.array([np.median(values[groups == g]) if (groups == g).any() else np.nan for g in range(n_groups)])


@pytest.mark.parametrize(
    ("sizes", "n_groups"),
    [
        ((20, 40), 30),  # balanced: the padded, row-sorted path
        ((1, 2), 50),  # tiny groups, odd and even counts
        ((0, 3), 40),  # some groups empty
    ],
)
def test_group_medians_match_np_median(sizes: tuple[int, int], n_groups: int) -> None:
    rng = np.random.default_rng(n_groups)
    per_group = rng.integers(sizes[0], sizes[1] + 1, n_groups)
    groups = rng.permutation(np.repeat(np.arange(n_groups), per_group))
    values = rng.exponential(10.0, groups.size).round(1)  # ties within groups too
    np.testing.assert_array_equal(group_medians(groups, values, n_groups), reference_medians(groups, values, n_groups))


def test_group_medians_with_one_huge_group_take_the_sorting_path() -> None:
    rng = np.random.default_rng(7)
    groups = np.concatenate([np.zeros(5000, dtype=np.int64), rng.integers(1, 300, 300)])
    values = rng.normal(size=groups.size)
    assert not _keys.dense(groups.size, 301 * 5000)  # the padded matrix would be too big
    np.testing.assert_allclose(group_medians(groups, values, 301), reference_medians(groups, values, 301))
    # Group indices past int16 (no radix sort): the same answer.
    wide = groups * 200
    np.testing.assert_allclose(group_medians(wide, values, 60_001)[::200], reference_medians(groups, values, 301))
    assert np.isnan(group_medians(np.zeros(0, dtype=np.int64), np.zeros(0), 3)).all()


def test_self_consistency_same_on_the_combined_key_and_the_lexsort_path() -> None:
    rng = np.random.default_rng(3)
    annotators = rng.integers(0, 20, 3000)
    items = rng.integers(0, 200, 3000)
    labels = rng.integers(-1, 3, 3000)  # -1 (none) is a label code like any other
    small = self_consistency(annotators, items, labels, n_annotators=20)
    huge = self_consistency(annotators, items * 2**50, labels, n_annotators=20)  # the combined key would overflow
    np.testing.assert_array_equal(small.pairs, huge.pairs)
    np.testing.assert_array_equal(small.agreeing, huge.agreeing)
    assert small.pairs.sum() > 0


def test_module_is_pure_numpy_loop_free_and_exported() -> None:
    tree = ast.parse(inspect.getsource(_keys))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "typing", "numpy", "numpy.typing"}
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.For | ast.While | ast.comprehension)]
    for name in _keys.__all__:
        assert getattr(numeric, name) is getattr(_keys, name)

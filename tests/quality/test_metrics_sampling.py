"""Reservoir sampling: uniform, one pass, deterministic per seed."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from numeric import reservoir_sample

# Upper 0.001 critical value of the chi-square distribution with 19 degrees of freedom (published tables).
CHI2_19_DF_0_001 = 43.82
SEEDS = range(4000)


def chi_square(counts: Counter[int], categories: int, expected: float) -> float:
    return sum((counts[category] - expected) ** 2 / expected for category in range(categories))


def inclusion_statistic(sampler: Callable[[list[int], int, int], list[int]], n: int = 20, k: int = 5) -> float:
    """Chi-square of how often each of ``n`` items is drawn over all seeds against ``len(SEEDS) * k / n`` each.

    The counts of a without-replacement sample are less spread than multinomial ones, so under uniformity this
    statistic sits below chi-square(n - 1) on average: the critical value stays a valid (conservative) bar.
    """
    counts: Counter[int] = Counter()
    for seed in SEEDS:
        sample = sampler(list(range(n)), k, seed)
        assert len(sample) == k and len(set(sample)) == k
        counts.update(sample)
    return chi_square(counts, n, len(SEEDS) * k / n)


def test_every_item_is_equally_likely() -> None:
    statistic = inclusion_statistic(lambda items, k, seed: reservoir_sample(iter(items), k, rng=seed))
    assert statistic < CHI2_19_DF_0_001


def test_uniformity_check_catches_a_biased_sampler() -> None:
    assert inclusion_statistic(lambda items, k, seed: items[:k]) > 100 * CHI2_19_DF_0_001
    # Subtler: a sampler that never draws the last item, as an off-by-one at the end of the stream would.
    statistic = inclusion_statistic(lambda items, k, seed: random.Random(seed).sample(items[:-1], k))
    assert statistic > CHI2_19_DF_0_001


def test_positions_in_a_long_stream_are_uniform() -> None:
    """Exercises the skip lengths: 1000 items in 20 buckets of 50, k = 4, 2000 seeds (400 draws expected each)."""
    counts: Counter[int] = Counter()
    for seed in range(2000):
        counts.update(item // 50 for item in reservoir_sample(range(1000), 4, rng=seed))
    assert chi_square(counts, 20, 2000 * 4 / 20) < CHI2_19_DF_0_001


@pytest.mark.parametrize("n", [0, 1, 4, 5])
def test_k_at_least_n_returns_every_item(n: int) -> None:
    assert reservoir_sample((i for i in range(n)), 5, rng=1) == list(range(n))


def test_generator_is_consumed_exactly_once() -> None:
    pulled = 0

    def stream() -> Iterator[int]:
        nonlocal pulled
        for i in range(100_000):
            pulled += 1
            yield i

    generator = stream()
    sample = reservoir_sample(generator, 10, rng=3)
    assert pulled == 100_000
    assert next(generator, None) is None
    assert len(sample) == 10 and len(set(sample)) == 10
    assert all(0 <= item < 100_000 for item in sample)


@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one_is_refused(k: int) -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        reservoir_sample(range(10), k)


def test_same_seed_gives_same_sample() -> None:
    first = reservoir_sample(range(10_000), 25, rng=42)
    assert reservoir_sample(iter(range(10_000)), 25, rng=42) == first
    assert reservoir_sample(range(10_000), 25, rng=random.Random(42)) == first
    assert reservoir_sample(range(10_000), 25, rng=43) != first


def test_rng_instance_is_advanced_so_repeated_calls_differ() -> None:
    rng = random.Random(7)
    assert reservoir_sample(range(10_000), 25, rng=rng) != reservoir_sample(range(10_000), 25, rng=rng)


def test_without_seed_samples_still_valid() -> None:
    sample = reservoir_sample(range(50), 5)
    assert len(set(sample)) == 5 and set(sample) <= set(range(50))

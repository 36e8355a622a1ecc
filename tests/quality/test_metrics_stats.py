"""Exact binomial tests, Benjamini-Hochberg, Wilson intervals and the normal quantile against scipy and statsmodels.

scipy's binomial tail functions lose accuracy once p-values fall below about 1e-250 (checked against exact rational
arithmetic: e.g. ``binomtest(648, 672, 0.3233...)`` is 3% off), so scipy is the oracle above 1e-200 and exact
``fractions`` arithmetic is the oracle for the deep tail.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as sp_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from numeric import benjamini_hochberg, binomial_test, normal_quantile, wilson_interval

ALTERNATIVES = ("two-sided", "greater", "less")
# scipy is trusted down to this p-value; below it the exact-arithmetic oracle takes over.
SCIPY_FLOOR = 1e-200


def scipy_pvalues(k: np.ndarray, n: np.ndarray, p: np.ndarray, alternative: str) -> np.ndarray:
    return np.asarray(sp_stats.binomtest(k, n, p, alternative=alternative).pvalue, dtype=np.float64)


def exact_pvalue(k: int, n: int, p: float, alternative: str) -> float:
    """The p-value in exact integer arithmetic (scipy's two-sided definition), rounded once at the end.

    With ``p = a / d`` exactly (a float is a dyadic rational), ``pmf(x) = C(n, x) a^x (d - a)^(n - x) / d^n``: the
    numerators are integers over one common denominator.
    """
    a, d = Fraction(p).as_integer_ratio()
    powers_a, powers_b = [1], [1]
    for _ in range(n):
        powers_a.append(powers_a[-1] * a)
        powers_b.append(powers_b[-1] * (d - a))
    weights = [math.comb(n, x) * powers_a[x] * powers_b[n - x] for x in range(n + 1)]
    if alternative == "less":
        total = sum(weights[: k + 1])
    elif alternative == "greater":
        total = sum(weights[k:])
    else:
        # pmf(x) <= pmf(k) (1 + 1e-7)  <=>  weight(x) <= weight(k) (1 + 1e-7), compared exactly.
        slack_num, slack_den = (1 + 1e-7).as_integer_ratio()
        bound = weights[k] * slack_num
        total = min(d**n, sum(w for w in weights if w * slack_den <= bound))
    return float(Fraction(total, d**n))


def random_cases(seed: int, size: int, max_n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random (k, n, p) with k drawn near and far from n p, and the edges k = 0, k = n, p near 0 and 1."""
    rng = np.random.default_rng(seed)
    n = rng.integers(1, max_n + 1, size)
    n[:4] = (1, 2, max_n, max_n - 1)
    p = rng.uniform(0.001, 0.999, size)
    p[4:10] = (1e-6, 1 - 1e-6, 0.5, 0.5, 0.01, 0.99)
    # Half the ks follow the null (p-values spread over (0, 1]), half a different rate (small p-values).
    k = np.where(rng.random(size) < 0.5, rng.binomial(n, p), rng.binomial(n, rng.uniform(0, 1, size)))
    k[10:14] = 0
    k[14:18] = n[14:18]
    return k, n, p


# Normal quantile ---------------------------------------------------------------------------------------------------


def test_normal_quantile_matches_scipy_from_1e_10_to_1_minus_1e_10() -> None:
    rng = np.random.default_rng(0)
    tails = np.geomspace(1e-10, 0.5, 4000)
    q = np.concatenate([tails, 1.0 - tails, rng.uniform(1e-10, 1 - 1e-10, 4000), [0.075, 0.925, 0.5, 0.025]])
    np.testing.assert_allclose(normal_quantile(q), sp_stats.norm.ppf(q), rtol=1e-12, atol=0)


def test_normal_quantile_far_tail_matches_scipy() -> None:
    # Below 1e-10 AS 241 switches to its third rational approximation (r > 5, i.e. q < exp(-25)).
    q = np.geomspace(1e-300, 1e-10, 2000)
    np.testing.assert_allclose(normal_quantile(q), sp_stats.norm.ppf(q), rtol=1e-12, atol=0)


def test_normal_quantile_known_values_and_edges() -> None:
    assert float(normal_quantile(0.5)) == 0.0
    assert float(normal_quantile(0.975)) == pytest.approx(1.959963984540054, rel=1e-14)
    np.testing.assert_array_equal(normal_quantile([0.0, 1.0]), [-np.inf, np.inf])
    assert np.isnan(normal_quantile([np.nan, 0.3])[0])
    assert normal_quantile(0.3).shape == ()
    assert normal_quantile(np.full((2, 3), 0.3)).shape == (2, 3)
    # Symmetry: the quantiles of q and 1 - q are opposite.
    q = np.array([0.001, 0.2, 0.4])
    np.testing.assert_allclose(normal_quantile(q), -normal_quantile(1 - q), rtol=1e-12)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_normal_quantile_rejects_values_outside_unit_interval(bad: float) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        normal_quantile([0.5, bad])


# Binomial test -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize(("seed", "max_n"), [(0, 20), (1, 300), (2, 3000), (3, 20000), (4, 20000)])
def test_binomial_test_matches_scipy(alternative: str, seed: int, max_n: int) -> None:
    k, n, p = random_cases(seed, 250, max_n)
    got = binomial_test(k, n, p, alternative=alternative)
    expected = scipy_pvalues(k, n, p, alternative)
    trusted = expected >= SCIPY_FLOOR
    assert trusted.mean() > 0.5  # the comparison below covers most cases, not a handful
    np.testing.assert_allclose(got[trusted], expected[trusted], rtol=1e-10, atol=0)
    # Deep-tail cases: tiny on both sides (their exact values are checked against rational arithmetic below).
    assert (got[~trusted] < 1e-190).all()


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("seed", [10, 11, 12])
def test_binomial_test_deep_tail_matches_exact_arithmetic(alternative: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = rng.integers(300, 800, 12)
    p = rng.uniform(0.05, 0.95, 12)
    # k 15 to 35 standard deviations into the tail the alternative looks at (either tail for two-sided), which
    # puts most p-values between 1e-300 and 1e-50; clipping at 0 or n adds the edge cases.
    if alternative == "greater":
        sign = np.ones(12)
    elif alternative == "less":
        sign = -np.ones(12)
    else:
        sign = rng.choice([-1.0, 1.0], 12)
    z = rng.uniform(15, 35, 12)
    k = np.clip(np.round(n * p + sign * z * np.sqrt(n * p * (1 - p))), 0, n).astype(np.int64)
    got = binomial_test(k, n, p, alternative=alternative)
    expected = np.array([exact_pvalue(int(a), int(b), float(c), alternative) for a, b, c in zip(k, n, p, strict=True)])
    assert (expected < 1e-50).sum() >= 6
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-300)


def test_binomial_test_is_exact_where_scipy_is_not() -> None:
    k, n, p = 648, 672, 0.32332638623830345
    exact = exact_pvalue(k, n, p, "two-sided")
    assert float(binomial_test(k, n, p)) == pytest.approx(exact, rel=1e-10)
    assert sp_stats.binomtest(k, n, p).pvalue == pytest.approx(exact, rel=0.05)  # scipy: 3% off


def test_binomial_test_hand_values() -> None:
    # n = 10, p = 1/2: P[X <= 2] = (1 + 10 + 45) / 1024; two-sided doubles it by symmetry.
    assert float(binomial_test(2, 10, alternative="less")) == pytest.approx(56 / 1024, rel=1e-13)
    assert float(binomial_test(2, 10)) == pytest.approx(112 / 1024, rel=1e-13)
    assert float(binomial_test(8, 10, alternative="greater")) == pytest.approx(56 / 1024, rel=1e-13)
    # k at the mean: every outcome is at least as extreme.
    assert float(binomial_test(5, 10)) == 1.0
    assert float(binomial_test(3, 12, 0.25)) == 1.0
    # n = 3, p = 0.2: pmf = (0.512, 0.384, 0.096, 0.008); two-sided for k = 2 sums pmf <= 0.096.
    assert float(binomial_test(2, 3, 0.2)) == pytest.approx(0.096 + 0.008, rel=1e-13)
    # k = 0, p = 0.2, two-sided: pmf(0) = 0.512 is the mode, so p = 1.
    assert float(binomial_test(0, 3, 0.2)) == 1.0


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_binomial_test_point_mass_p_matches_scipy(alternative: str) -> None:
    k = np.array([0, 3, 5, 0, 5, 2])
    n = np.array([5, 5, 5, 5, 5, 5])
    p = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(binomial_test(k, n, p, alternative=alternative), scipy_pvalues(k, n, p, alternative))


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_binomial_test_n_zero_is_one(alternative: str) -> None:
    np.testing.assert_array_equal(binomial_test([0, 0], [0, 0], [0.5, 0.1], alternative=alternative), [1.0, 1.0])


def test_binomial_test_broadcasts_and_keeps_shapes() -> None:
    assert binomial_test(3, 10).shape == ()
    k = np.arange(11).reshape(1, 11)
    p = np.array([[0.2], [0.5], [0.7]])
    got = binomial_test(k, 10, p)
    assert got.shape == (3, 11)
    expected = scipy_pvalues(
        np.broadcast_to(k, (3, 11)), np.full((3, 11), 10), np.broadcast_to(p, (3, 11)), "two-sided"
    )
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert binomial_test(np.zeros(0, dtype=int), np.zeros(0, dtype=int)).shape == (0,)
    # Whole-number floats are accepted as counts.
    assert float(binomial_test(2.0, 10.0)) == float(binomial_test(2, 10))


def test_binomial_test_duplicate_rows_share_one_computation_and_value() -> None:
    k = np.array([7, 3, 7, 7, 0])
    n = np.array([10, 10, 10, 10, 10])
    got = binomial_test(k, n)
    assert got[0] == got[2] == got[3]
    np.testing.assert_allclose(got, scipy_pvalues(k, n, np.full(5, 0.5), "two-sided"), rtol=1e-12)


@pytest.mark.parametrize(
    ("k", "n", "p", "alternative", "message"),
    [
        (3, 2, 0.5, "two-sided", "exceed"),
        (-1, 2, 0.5, "two-sided", "negative"),
        (1.5, 2, 0.5, "two-sided", "whole"),
        (1, 2, 1.5, "two-sided", r"\[0, 1\]"),
        (1, 2, np.nan, "two-sided", r"\[0, 1\]"),
        (1, 2, 0.5, "both", "alternative"),
        (True, 2, 0.5, "two-sided", "integer"),
    ],
)
def test_binomial_test_rejects_bad_input(k: object, n: object, p: object, alternative: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        binomial_test(k, n, p, alternative=alternative)  # type: ignore[arg-type]


# Benjamini-Hochberg ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "m"), [(0, 1), (1, 2), (2, 10), (3, 100), (4, 1000)])
def test_benjamini_hochberg_matches_statsmodels(seed: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    # A mix of nulls (uniform) and signals (small p-values).
    p = np.where(rng.random(m) < 0.3, rng.uniform(0, 1e-3, m), rng.uniform(0, 1, m))
    np.testing.assert_allclose(benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1], rtol=1e-12, atol=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_benjamini_hochberg_with_ties_and_bounds(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.round(rng.uniform(0, 1, 200), 2)  # many exact ties
    p[:3] = (0.0, 1.0, 1.0)
    got = benjamini_hochberg(p)
    np.testing.assert_allclose(got, multipletests(p, method="fdr_bh")[1], rtol=1e-12, atol=0)
    for value in np.unique(p):
        assert np.unique(got[p == value]).size == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_benjamini_hochberg_ignores_nans(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 0.1, 50)
    missing = rng.random(50) < 0.3
    p[missing] = np.nan
    got = benjamini_hochberg(p)
    assert np.isnan(got[missing]).all()
    # m counts only the non-NaN p-values.
    np.testing.assert_allclose(got[~missing], multipletests(p[~missing], method="fdr_bh")[1], rtol=1e-12, atol=0)


def test_benjamini_hochberg_hand_example_and_edges() -> None:
    # Sorted: 0.01, 0.03, 0.04, 0.20 -> p m / rank = 0.04, 0.06, 0.0533, 0.20 -> running min from the right.
    np.testing.assert_allclose(
        benjamini_hochberg([0.01, 0.04, 0.03, 0.20]), [0.04, 0.16 / 3, 0.16 / 3, 0.20], rtol=1e-14
    )
    assert benjamini_hochberg([]).shape == (0,)
    assert np.isnan(benjamini_hochberg([np.nan, np.nan])).all()
    grid = np.array([[0.01, 0.5], [np.nan, 0.02]])
    got = benjamini_hochberg(grid)
    assert got.shape == (2, 2)
    np.testing.assert_allclose(got.ravel()[[0, 1, 3]], multipletests([0.01, 0.5, 0.02], method="fdr_bh")[1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        benjamini_hochberg([0.1, 1.2])


# Wilson interval ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wilson_interval_matches_statsmodels(level: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = rng.integers(1, 5000, 300)
    n[:3] = (1, 2, 3)
    successes = rng.binomial(n, rng.uniform(0, 1, 300))
    successes[3:6] = 0
    successes[6:9] = n[6:9]
    low, high = wilson_interval(successes, n, level=level)
    expected_low, expected_high = proportion_confint(successes, n, alpha=1 - level, method="wilson")
    np.testing.assert_allclose(low, expected_low, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(high, expected_high, rtol=1e-12, atol=1e-15)


def test_wilson_interval_hand_values_and_edges() -> None:
    z2 = 1.959963984540054**2
    # 0 of n: low = 0 and high = z^2 / (n + z^2); n of n: low = n / (n + z^2) and high = 1.
    low, high = wilson_interval([0, 10], [10, 10])
    np.testing.assert_allclose(low, [0.0, 10 / (10 + z2)], rtol=1e-13)
    np.testing.assert_allclose(high, [z2 / (10 + z2), 1.0], rtol=1e-13)
    low, high = wilson_interval([0, 3], [0, 5])
    assert np.isnan(low[0]) and np.isnan(high[0])
    assert 0 < low[1] < 0.6 < high[1] < 1
    low, high = wilson_interval(3, 5)
    assert low.shape == high.shape == ()
    # Higher level, wider interval.
    narrow = wilson_interval(30, 100, level=0.9)
    wide = wilson_interval(30, 100, level=0.99)
    assert wide[0] < narrow[0] < 0.3 < narrow[1] < wide[1]
    with pytest.raises(ValueError, match="level"):
        wilson_interval(1, 2, level=1.0)
    with pytest.raises(ValueError, match="exceed"):
        wilson_interval(3, 2)


def test_binomial_test_when_every_n_is_at_most_one() -> None:
    """Tiny projects: every annotator has at most one judgment."""
    for alternative in ("two-sided", "greater", "less"):
        got = binomial_test([1, 0, 0], [1, 1, 0], [0.5, 0.3, 0.4], alternative=alternative)
        expected = [sp_stats.binomtest(1, 1, 0.5, alternative=alternative).pvalue,
                    sp_stats.binomtest(0, 1, 0.3, alternative=alternative).pvalue, 1.0]  # fmt: skip
        assert np.allclose(got, expected, rtol=1e-12)


def test_binomial_test_one_sided_tail_with_nearly_all_mass_stays_at_most_one() -> None:
    # Found at scale (bench/quality.py): P[X <= 838] for n = 1012, p = 0.6074 summed to 1 + 2.2e-16, which
    # benjamini_hochberg rejects as no p-value.
    rng = np.random.default_rng(0)
    n = rng.integers(900, 1100, 2000)
    p = rng.uniform(0.55, 0.65, n.size)
    k = np.minimum(n, (n * (p + 0.2)).astype(np.int64))
    for alternative, successes in (("less", k), ("greater", n - k)):
        pvalues = binomial_test(successes, n, p if alternative == "less" else 1 - p, alternative=alternative)
        assert pvalues.max() <= 1.0
        assert np.allclose(pvalues, 1.0)
    benjamini_hochberg(binomial_test(k, n, p, alternative="less"))

"""Small-sample statistics for per-annotator quality checks: exact binomial tests, Benjamini-Hochberg, Wilson intervals.

Every function is vectorised over its input arrays (no Python loop over items or annotators), documents its edge
cases, and is tested against an oracle library (scipy, statsmodels; dev-only dependencies).

Counts (``k``, ``n``, ``successes``) are non-negative integers: an integer dtype, or floats holding whole numbers.
Anything else (negative, fractional, NaN, ``k > n``) raises ``ValueError``, so a bad query result fails loudly
instead of producing a plausible p-value.
"""

from __future__ import annotations

from typing import Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Alternative = Literal["two-sided", "greater", "less"]

ALTERNATIVES: Final = ("two-sided", "greater", "less")

__all__ = [
    "ALTERNATIVES",
    "benjamini_hochberg",
    "binomial_test",
    "normal_quantile",
    "wilson_interval",
]

# scipy.stats.binomtest counts an outcome as "at least as extreme" when its pmf is within this relative slack of
# pmf(k), so outcomes whose pmf equals pmf(k) in exact arithmetic are not lost to rounding.
_TWO_SIDED_RERR: Final = 1.0 + 1e-7

# Cells (rows x outcomes) of one pmf block in binomial_test: 2**19 float64 cells = 4 MiB per temporary array, about
# 60 MiB at the peak of a block.
_BLOCK_CELLS: Final = 1 << 19

# Outcomes further than this from where a tail's mass lies are left out of its sum: 15 standard deviations plus 40
# outcomes, where the pmf has fallen below exp(-112) (about 1e-49) of the terms kept, far under float64 precision
# (Gaussian decay near the mean; faster than geometric decay beyond, and faster still in a skewed Poisson-like
# tail). Sums over a whole tail containing the mean are taken as 1 minus the opposite, narrow tail.
_WINDOW_SDS: Final = 15.0
_WINDOW_PAD: Final = 40

_LOG_2PI: Final = float(np.log(2.0 * np.pi))

# Stirling series for the Stirling error of n >= 16 (Loader 2000): 1/12, 1/360, 1/1260, 1/1680, 1/1188.
_S0, _S1, _S2, _S3, _S4 = 1.0 / 12.0, 1.0 / 360.0, 1.0 / 1260.0, 1.0 / 1680.0, 1.0 / 1188.0

# sum_{j=1..10} w**(j-1) / (2j + 1), highest power first for np.polyval (the series branch of bd0).
_BD0_SERIES: Final = 1.0 / (2.0 * np.arange(10, 0, -1) + 1.0)


def _counts(values: ArrayLike, name: str) -> IntArray:
    """``values`` as an int64 array of non-negative whole numbers; ``ValueError`` for anything else."""
    array = np.asarray(values)
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.number) or array.size == 0):
        raise ValueError(f"{name} must hold non-negative integer counts, got dtype {array.dtype}.")
    if np.issubdtype(array.dtype, np.integer):
        result = array.astype(np.int64)
    else:
        as_float = array.astype(np.float64)
        if not np.isfinite(as_float).all() or (np.floor(as_float) != as_float).any():
            raise ValueError(f"{name} must hold whole numbers (no NaN, infinity or fractions).")
        result = as_float.astype(np.int64)
    if (result < 0).any():
        raise ValueError(f"{name} must not be negative.")
    return result


# Normal quantile ---------------------------------------------------------------------------------------------------

# Wichura (1988), Algorithm AS 241 (PPND16), highest power first. Relative accuracy about 1e-16.
_AS241_CENTRAL_NUM: Final = np.array(
    [
        2.5090809287301226727e3,
        3.3430575583588128105e4,
        6.7265770927008700853e4,
        4.5921953931549871457e4,
        1.3731693765509461125e4,
        1.9715909503065514427e3,
        1.3314166789178437745e2,
        3.3871328727963666080e0,
    ]
)
_AS241_CENTRAL_DEN: Final = np.array(
    [
        5.2264952788528545610e3,
        2.8729085735721942674e4,
        3.9307895800092710610e4,
        2.1213794301586595867e4,
        5.3941960214247511077e3,
        6.8718700749205790830e2,
        4.2313330701600911252e1,
        1.0,
    ]
)
_AS241_TAIL_NUM: Final = np.array(
    [
        7.74545014278341407640e-4,
        2.27238449892691845833e-2,
        2.41780725177450611770e-1,
        1.27045825245236838258e0,
        3.64784832476320460504e0,
        5.76949722146069140550e0,
        4.63033784615654529590e0,
        1.42343711074968357734e0,
    ]
)
_AS241_TAIL_DEN: Final = np.array(
    [
        1.05075007164441684324e-9,
        5.47593808499534494600e-4,
        1.51986665636164571966e-2,
        1.48103976427480074590e-1,
        6.89767334985100004550e-1,
        1.67638483018380384940e0,
        2.05319162663775882187e0,
        1.0,
    ]
)
_AS241_FAR_NUM: Final = np.array(
    [
        2.01033439929228813265e-7,
        2.71155556874348757815e-5,
        1.24266094738807843860e-3,
        2.65321895265761230930e-2,
        2.96560571828504891230e-1,
        1.78482653991729133580e0,
        5.46378491116411436990e0,
        6.65790464350110377720e0,
    ]
)
_AS241_FAR_DEN: Final = np.array(
    [
        2.04426310338993978564e-15,
        1.42151175831644588870e-7,
        1.84631831751005468180e-5,
        7.86869131145613259100e-4,
        1.48753612908506148525e-2,
        1.36929880922735805310e-1,
        5.99832206555887937690e-1,
        1.0,
    ]
)


def normal_quantile(q: ArrayLike) -> FloatArray:
    """The standard normal quantile (inverse CDF, ``scipy.stats.norm.ppf``) of every element of ``q``.

    Wichura's Algorithm AS 241 (PPND16): three rational approximations (central ``|q - 0.5| <= 0.425``, tail, far
    tail), accurate to about 1e-16 relative. The tails are computed from ``min(q, 1 - q)``, so for ``q`` near 1 the
    accuracy is limited by ``1 - q`` itself (as in scipy). ``q = 0`` gives ``-inf``, ``q = 1`` gives ``+inf``, NaN
    stays NaN; a value outside ``[0, 1]`` raises ``ValueError``. Returns an array of ``q``'s shape (0-d for a
    scalar).
    """
    probs = np.asarray(q, dtype=np.float64)
    if ((probs < 0) | (probs > 1)).any():
        raise ValueError("normal_quantile needs probabilities in [0, 1].")
    centred = probs - 0.5
    central = np.abs(centred) <= 0.425
    # Safe stand-ins keep the branches that np.where discards free of log(0) and NaN warnings.
    tail_prob = np.where(central | np.isnan(probs), 0.25, np.minimum(probs, 1.0 - probs))
    edge = tail_prob == 0.0
    r = np.sqrt(-np.log(np.where(edge, 0.25, tail_prob)))
    far = r > 5.0
    r_tail = np.where(far, r - 5.0, r - 1.6)
    tail = np.where(
        far,
        np.polyval(_AS241_FAR_NUM, r_tail) / np.polyval(_AS241_FAR_DEN, r_tail),
        np.polyval(_AS241_TAIL_NUM, r_tail) / np.polyval(_AS241_TAIL_DEN, r_tail),
    )
    tail = np.where(edge, np.inf, tail)
    r_central = 0.180625 - centred * centred
    central_value = centred * np.polyval(_AS241_CENTRAL_NUM, r_central) / np.polyval(_AS241_CENTRAL_DEN, r_central)
    result = np.where(central, central_value, np.copysign(tail, centred))
    return np.where(np.isnan(probs), np.nan, result)


# Binomial test -----------------------------------------------------------------------------------------------------


def _stirling_errors(size: int) -> FloatArray:
    """``stirlerr(i) = log(i!) - (i + 1/2) log(i) + i - log(sqrt(2 pi))`` for ``i = 0 .. size - 1`` (0 at i = 0).

    Exact factorials (``15! < 2**53``) for ``i <= 15``, the five-term Stirling series beyond (Loader 2000): each
    value is accurate to a few ulps of ``log(i!)`` at small ``i``, far better than a cumulative sum of logs, whose
    rounding drifts by about 1e-9 by ``i = 20000``.
    """
    errors = np.zeros(size, dtype=np.float64)
    small = np.arange(1, min(size, 16), dtype=np.float64)
    errors[1 : small.size + 1] = np.log(np.cumprod(small)) - (small + 0.5) * np.log(small) + small - 0.5 * _LOG_2PI
    large = np.arange(16, size, dtype=np.float64)
    squared = large * large
    errors[16:] = (_S0 - (_S1 - (_S2 - (_S3 - _S4 / squared) / squared) / squared) / squared) / large
    return errors


def _bd0(x: FloatArray, mean: FloatArray) -> FloatArray:
    """Loader's deviance term ``x log(x / mean) + mean - x`` (``x, mean > 0``), without cancellation near ``x = mean``.

    Near the mean (``|x - mean| < 0.1 (x + mean)``) it sums the series in ``v = (x - mean) / (x + mean)``, whose
    terms shrink by a factor of at least 100 each; elsewhere the direct formula loses no more than a few ulps.
    """
    diff = x - mean
    total = x + mean
    v = diff / total
    w = v * v
    series = diff * v + 2.0 * x * v * w * np.polyval(_BD0_SERIES, w)
    direct = x * np.log(x / mean) + mean - x
    return np.where(np.abs(diff) < 0.1 * total, series, direct)


def _binomial_pmf(outcomes: IntArray, n: IntArray, p: FloatArray, stirling: FloatArray) -> FloatArray:
    """``P[X = outcomes]`` for ``X ~ Binomial(n, p)``: ``outcomes`` is a ``(1, w)`` row, ``n`` and ``p`` ``(r, 1)``.

    Loader's saddle-point form (the algorithm behind R's ``dbinom``): every term is computed to a relative accuracy
    of about 1e-13 even at ``n = 20000``, where ``log C(n, x)`` from log-factorials would already be off by 1e-10.
    Outcomes above ``n`` have probability 0; ``p`` may be 0 or 1 (a point mass).
    """
    proper = (p > 0.0) & (p < 1.0)
    interior = (outcomes > 0) & (outcomes < n) & proper
    # Stand-in values for the cells np.where discards, so nothing below divides by zero or takes log(0).
    x = np.where(interior, outcomes, 1)
    size = np.where(interior, n, 2)
    rest = size - x
    prob = np.where(proper, p, 0.5)
    log_interior = (
        stirling[size]
        - stirling[x]
        - stirling[rest]
        - _bd0(x.astype(np.float64), size * prob)
        - _bd0(rest.astype(np.float64), size * (1.0 - prob))
        - 0.5 * (_LOG_2PI + np.log(x) + np.log1p(-x / size))
    )
    log_pmf = np.where(outcomes == 0, n * np.log1p(-prob), np.where(outcomes == n, n * np.log(prob), log_interior))
    log_pmf = np.where(outcomes > n, -np.inf, log_pmf)
    log_pmf = np.where(p == 0.0, np.where(outcomes == 0, 0.0, -np.inf), log_pmf)
    log_pmf = np.where(p == 1.0, np.where(outcomes == n, 0.0, -np.inf), log_pmf)
    return np.exp(log_pmf)


def _windows(k: IntArray, n: IntArray, p: FloatArray, alternative: str) -> tuple[IntArray, IntArray, NDArray[np.bool_]]:
    """For each test, the outcomes ``lo .. hi`` whose pmf is summed and whether the p-value is 1 minus that sum.

    One-sided: the requested tail when it lies away from the mean (``k`` below ``n p`` for ``"less"``, above for
    ``"greater"``), else the complement of the opposite tail; either way only ``_WINDOW_SDS`` standard deviations
    plus ``_WINDOW_PAD`` outcomes next to its boundary. Two-sided with ``p = 1/2`` (symmetric): the outcomes within
    ``|k - n p|`` plus that margin of the mean. Two-sided otherwise: all of ``0 .. n`` (the far side's reach
    depends on the skew).
    """
    mean = n * p
    margin = np.ceil(_WINDOW_SDS * np.sqrt(mean * (1.0 - p))).astype(np.int64) + _WINDOW_PAD
    if alternative == "less":
        complement = k >= mean
        lo = np.where(complement, k + 1, np.maximum(k - margin, 0))
        hi = np.where(complement, np.minimum(k + 1 + margin, n), k)
    elif alternative == "greater":
        complement = k <= mean
        lo = np.where(complement, np.maximum(k - 1 - margin, 0), k)
        hi = np.where(complement, k - 1, np.minimum(k + margin, n))
    else:
        complement = np.zeros(k.size, dtype=np.bool_)
        reach = np.ceil(np.abs(k - mean)).astype(np.int64) + margin
        symmetric = p == 0.5
        lo = np.where(symmetric, np.maximum(np.floor(mean).astype(np.int64) - reach, 0), 0)
        hi = np.where(symmetric, np.minimum(np.ceil(mean).astype(np.int64) + reach, n), n)
    return lo, hi, complement


def _block_pvalues(
    k: IntArray,
    n: IntArray,
    p: FloatArray,
    lo: IntArray,
    hi: IntArray,
    complement: NDArray[np.bool_],
    alternative: str,
    stirling: FloatArray,
) -> FloatArray:
    """p-values for one block of rows (``n >= 1``): a ``(rows, widest window)`` pmf matrix summed over masks."""
    k_col, n_col, p_col = k[:, np.newaxis], n[:, np.newaxis], p[:, np.newaxis]
    width = max(int((hi - lo).max()) + 1, 1)
    outcomes = lo[:, np.newaxis] + np.arange(width)[np.newaxis, :]
    inside = outcomes <= hi[:, np.newaxis]
    pmf = np.where(inside, _binomial_pmf(outcomes, n_col, p_col, stirling), 0.0)
    if alternative != "two-sided":
        # The window is the tail (or its complement): sum it. A tail holding nearly all the mass can sum to
        # 1 + 1e-16 in floating point: clipped, as a p-value must be.
        total = pmf.sum(axis=1)
        return np.clip(np.where(complement, 1.0 - total, total), 0.0, 1.0)
    # Two-sided, exactly as scipy.stats.binomtest: the tail on k's side of n p, plus every outcome on the far side of
    # the mode whose pmf is at most pmf(k) (with a 1e-7 relative slack). The two sets are disjoint except when
    # k == n p, where both contain k and the sum passes 1 before the final clip (scipy's p-value there is 1 too).
    threshold = np.take_along_axis(pmf, k_col - lo[:, np.newaxis], axis=1) * _TWO_SIDED_RERR
    mean = p_col * n_col
    below = k_col < mean
    own_tail = np.where(below, outcomes <= k_col, outcomes >= k_col)
    far_side = np.where(below, outcomes >= np.ceil(mean), outcomes <= np.floor(mean)) & (pmf <= threshold)
    own = np.where(own_tail, pmf, 0.0).sum(axis=1)
    far = np.where(far_side, pmf, 0.0).sum(axis=1)
    return np.minimum(1.0, own + far)


def binomial_test(
    k: ArrayLike, n: ArrayLike, p: ArrayLike = 0.5, *, alternative: Alternative = "two-sided"
) -> FloatArray:
    """Exact binomial test p-values for ``k`` successes out of ``n`` trials against success probability ``p``.

    ``k``, ``n`` and ``p`` broadcast against each other; the result has the broadcast shape (0-d for scalars).
    ``alternative``:

    - ``"two-sided"`` (default): scipy's definition, the total probability of outcomes ``x`` with
      ``pmf(x) <= pmf(k) * (1 + 1e-7)``, clipped to 1;
    - ``"greater"``: ``P[X >= k]`` (small when ``k`` is large for ``p``);
    - ``"less"``: ``P[X <= k]``.

    Matches ``scipy.stats.binomtest(k, n, p, alternative=...).pvalue`` to about 1e-12 relative (tested to 1e-10 up
    to ``n = 20000``), down to p-values near the float64 underflow threshold, below which both give 0 or a
    subnormal. Edge cases: ``n == 0`` gives 1.0 (no evidence either way; scipy raises instead); ``p`` may be 0 or
    1 (a point mass, as in scipy). ``ValueError`` for counts that are not whole numbers, ``k > n``, ``p`` outside
    ``[0, 1]`` or NaN, or an unknown ``alternative``.

    Cost: each distinct ``(k, n, p)`` sums the pmf over a window of ``O(sqrt(n))`` outcomes (one-sided, or
    two-sided at ``p = 1/2``) or all ``n + 1`` (two-sided otherwise); rows are sorted by window width and
    processed in blocks of half a million cells, so thousands of annotators peak at about 60 MiB.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"Unknown alternative {alternative!r}; expected one of {ALTERNATIVES}.")
    successes, trials = _counts(k, "k"), _counts(n, "n")
    prob = np.asarray(p, dtype=np.float64)
    if not ((prob >= 0.0) & (prob <= 1.0)).all():
        raise ValueError("p must be a probability in [0, 1].")
    successes, trials, prob = np.broadcast_arrays(successes, trials, prob)
    if (successes > trials).any():
        raise ValueError("k must not exceed n.")
    shape = successes.shape
    successes, trials, prob = successes.ravel(), trials.ravel(), prob.ravel()
    pvalues = np.ones(successes.size, dtype=np.float64)
    tested = trials > 0
    if not tested.any():
        return pvalues.reshape(shape)
    # Identical (k, n, p) rows (common: many annotators with the same counts) are computed once.
    triples = np.column_stack((successes[tested], trials[tested], prob[tested]))
    unique, inverse = np.unique(triples, axis=0, return_inverse=True)
    k_u, n_u, p_u = unique[:, 0].astype(np.int64), unique[:, 1].astype(np.int64), unique[:, 2]
    stirling = _stirling_errors(max(int(n_u.max()) + 1, 3))  # stand-in index 2 must exist
    lo, hi, complement = _windows(k_u, n_u, p_u, alternative)
    widths = np.maximum(hi - lo + 1, 1)
    order = np.argsort(widths, kind="stable")
    # Blocks: rows of one power-of-two width class, at most _BLOCK_CELLS / (class's largest width) rows each.
    width_class = np.log2(widths[order]).astype(np.int64)
    rows_per_block = np.maximum(1, _BLOCK_CELLS >> (width_class + 1))
    chunk = (np.arange(order.size) - np.searchsorted(width_class, width_class)) // rows_per_block
    starts = np.flatnonzero((width_class[1:] != width_class[:-1]) | (chunk[1:] != chunk[:-1])) + 1
    unique_pvalues = np.empty(n_u.size, dtype=np.float64)
    # The one loop in this module: over blocks of rows of similar width (bounded memory), never over single tests.
    for rows in np.split(order, starts):
        unique_pvalues[rows] = _block_pvalues(
            k_u[rows], n_u[rows], p_u[rows], lo[rows], hi[rows], complement[rows], alternative, stirling
        )
    pvalues[tested] = unique_pvalues[inverse.reshape(-1)]
    return pvalues.reshape(shape)


# Multiple testing --------------------------------------------------------------------------------------------------


def benjamini_hochberg(pvalues: ArrayLike) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (q-values) controlling the false discovery rate.

    For the ``m`` p-values sorted ascending, ``q_(i) = min_{j >= i} min(1, p_(j) m / j)``, returned in the input's
    order and shape (``statsmodels.stats.multitest.multipletests(p, method="fdr_bh")[1]``). Reject at FDR level
    ``alpha`` where ``q <= alpha``. Tied p-values get equal q-values.

    NaN marks "no test" (e.g. an annotator without data): it stays NaN and is left out of ``m``, so untested
    entries do not dilute the correction. Empty input gives an empty array. ``ValueError`` for a value outside
    ``[0, 1]``.
    """
    values = np.asarray(pvalues, dtype=np.float64)
    flat = values.ravel()
    if ((flat < 0.0) | (flat > 1.0)).any():
        raise ValueError("p-values must lie in [0, 1] (NaN for no test).")
    adjusted = np.full(flat.shape, np.nan)
    present = np.flatnonzero(~np.isnan(flat))
    m = present.size
    if m == 0:
        return adjusted.reshape(values.shape)
    order = np.argsort(flat[present], kind="stable")
    ranked = flat[present][order]
    raw = ranked / (np.arange(1, m + 1) / float(m))
    stepped = np.minimum.accumulate(raw[::-1])[::-1]
    adjusted[present[order]] = np.minimum(stepped, 1.0)
    return adjusted.reshape(values.shape)


# Confidence intervals ----------------------------------------------------------------------------------------------


def wilson_interval(successes: ArrayLike, n: ArrayLike, *, level: float = 0.95) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval ``(low, high)`` for the success probability behind ``successes`` out of ``n``.

    With ``z`` the ``1 - (1 - level) / 2`` normal quantile and ``phat = successes / n``: centre
    ``(phat + z^2 / 2n) / (1 + z^2 / n)``, half-width ``z sqrt(phat (1 - phat) / n + z^2 / 4n^2) / (1 + z^2 / n)``,
    clipped to ``[0, 1]`` (``statsmodels.stats.proportion.proportion_confint(..., alpha=1 - level,
    method="wilson")``, to 1e-12 relative or 1e-16 absolute). Unlike the Wald interval it stays informative at
    ``successes = 0`` or ``n``; the bound on that side is exactly 0 or 1 (statsmodels leaves ~1e-17 of rounding).

    ``successes`` and ``n`` broadcast; both results have the broadcast shape (0-d for scalars). ``n == 0`` gives
    ``(nan, nan)``. ``ValueError`` for counts that are not whole numbers, ``successes > n`` or ``level`` outside
    ``(0, 1)``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}.")
    count, trials = np.broadcast_arrays(_counts(successes, "successes"), _counts(n, "n"))
    if (count > trials).any():
        raise ValueError("successes must not exceed n.")
    # Same arithmetic as statsmodels: alpha = 1 - level, z = isf(alpha / 2) = -ppf(alpha / 2).
    crit = -float(normal_quantile((1.0 - level) / 2.0))
    crit2 = crit**2
    empty = trials == 0
    nobs = np.where(empty, 1, trials).astype(np.float64)
    phat = count / nobs
    denom = 1.0 + crit2 / nobs
    centre = (phat + crit2 / (2.0 * nobs)) / denom
    half_width = crit * np.sqrt(phat * (1.0 - phat) / nobs + crit2 / (4.0 * nobs**2)) / denom
    # The bound on the side of an extreme count is 0 (or 1) exactly; the formula leaves rounding noise of ~1e-17.
    low = np.where(count == 0, 0.0, np.clip(centre - half_width, 0.0, 1.0))
    high = np.where(count == trials, 1.0, np.clip(centre + half_width, 0.0, 1.0))
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)

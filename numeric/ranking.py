"""Statistics for ranking answers: Kendall's W, consensus rankings, annotator-vs-consensus tau, Plackett-Luce.

Conventions for the per-task statistics (:func:`ranks_from_orders`, :func:`mean_ranks`, :func:`consensus_orders`,
:func:`kendalls_w`, :func:`project_w`, :func:`annotator_tau`):

- One row per ranking judgment, as parallel arrays: ``tasks`` ``(n,)`` int task index in ``0 .. n_tasks - 1``,
  ``annotators`` ``(n,)`` int annotator index in ``0 .. n_annotators - 1`` (where needed), and ``orders`` ``(n, K)``
  int: row ``r`` lists the task's ``K`` responses (indices ``0 .. K - 1``) best first, so ``orders[r, 0]`` is the
  response annotator ``annotators[r]`` ranked first. Every row must be a permutation of ``0 .. K - 1``: strict
  orders only, no ties, no partial rankings.
- ``K`` is fixed for one call. Tasks whose rankings have different numbers of responses (a project mixing 3- and
  4-response tasks) are passed in separate calls, one per ``K``, by the caller; a task index may then simply have no
  rows in a call (its statistics are NaN / "no consensus").
- Ranks are 1-based: rank 1 is the best response.

Plackett-Luce (:func:`plackett_luce`, :func:`plackett_luce_intervals`) works on rankings of *items* (e.g. the
models that wrote the responses): ``orders`` is an ``(n, L)`` int array whose row ``r`` lists item indices in
``0 .. n_items - 1`` best first, padded at the end with ``-1`` when the ranking is shorter than ``L``. A row is a
complete ranking *of the items it lists* (the models whose responses were shown), so rankings of different lengths
and of different subsets mix freely; a row with fewer than 2 items carries no information. Log-strengths ``theta``
are centred to mean 0, and ``P(i ranked first among S) = exp(theta_i) / sum_{j in S} exp(theta_j)``.

A statistic that is undefined for its input (too few rankings, nothing to compare) is NaN, never an exception;
malformed input (an order that is not a permutation, wrong shapes, indices out of range) raises ``ValueError``.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._keys import group_keys
from .stats import normal_quantile

__all__ = [
    "annotator_tau",
    "consensus_orders",
    "kendalls_w",
    "mean_ranks",
    "plackett_luce",
    "plackett_luce_information_intervals",
    "plackett_luce_intervals",
    "project_w",
    "ranks_from_orders",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

# Stopping tolerance on the MM step for bootstrap replicates (far below any interval's resolution).
_BOOT_TOL: Final = 1e-8
# Largest (replicates x rankings x positions) block the bootstrap fits at once: about 32 MiB per float64 temporary.
_BOOT_BLOCK: Final = 1 << 22
# Newton iterations allowed for one MM step's per-item equation when alpha > 0 (it converges in a handful).
_INNER_MAX: Final = 100


# -- input handling ---------------------------------------------------------------------------------------------------


def _count_arg(value: int, name: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _index(values: ArrayLike, name: str, n: int, length: int | None = None) -> IntArray:
    """``values`` as a 1-D int64 array of indices in ``[0, n)`` (of ``length`` entries if given)."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of indices, got shape {array.shape}.")
    if length is not None and array.size != length:
        raise ValueError(f"{name} must have one entry per ranking ({length}), got {array.size}.")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer indices, got dtype {array.dtype}.")
    bad = np.flatnonzero((array < 0) | (array >= n))
    if bad.size:
        raise ValueError(f"{name}[{int(bad[0])}] = {array[bad[0]]} is outside 0..{n - 1}.")
    return array.astype(np.int64, copy=False)


def _orders(orders: ArrayLike) -> IntArray:
    """``orders`` as an ``(n, K)`` int64 array whose every row is a permutation of ``0 .. K - 1``."""
    array = np.asarray(orders)
    if array.ndim != 2:
        raise ValueError(f"orders must be an (n, K) array of response indices, got shape {array.shape}.")
    if array.size and array.dtype.kind not in "iu":
        raise ValueError(f"orders must hold integer response indices, got dtype {array.dtype}.")
    array = array.astype(np.int64, copy=False)
    k = array.shape[1]
    bad = np.flatnonzero((np.sort(array, axis=1) != np.arange(k)).any(axis=1))
    if bad.size:
        row = int(bad[0])
        raise ValueError(f"orders row {row} = {array[row].tolist()} is not a permutation of 0..{k - 1}.")
    return array


def _judgments(tasks: ArrayLike, orders: ArrayLike, n_tasks: int) -> tuple[IntArray, IntArray]:
    n = _count_arg(n_tasks, "n_tasks")
    ranked = _orders(orders)
    return _index(tasks, "tasks", n, ranked.shape[0]), ranked


def _rank_sums(task: IntArray, ranks: IntArray, n_tasks: int) -> tuple[IntArray, IntArray]:
    """``(n_tasks, K)`` integer rank sums and ``(n_tasks,)`` ranking counts per task."""
    k = ranks.shape[1]
    flat = (task[:, np.newaxis] * k + np.arange(k)).ravel()
    sums = np.bincount(flat, weights=ranks.ravel(), minlength=n_tasks * k).reshape(n_tasks, k)
    # Sums of small integers in float64 are exact far beyond any realistic number of rankings.
    return sums.astype(np.int64), np.bincount(task, minlength=n_tasks).astype(np.int64)


def _int_ranks(orders: IntArray) -> IntArray:
    n, k = orders.shape
    ranks = np.empty((n, k), dtype=np.int64)
    np.put_along_axis(ranks, orders, np.broadcast_to(np.arange(1, k + 1), (n, k)), axis=1)
    return ranks


# -- ranks, consensus and concordance -----------------------------------------------------------------------------


def ranks_from_orders(orders: ArrayLike) -> FloatArray:
    """The ``(n, K)`` float ranks of ``(n, K)`` best-first orders: ``ranks[r, orders[r, p]] = p + 1``.

    Rank 1 is the best response. ``ValueError`` unless ``orders`` is 2-D, integer, and every row a permutation of
    ``0 .. K - 1``. ``(0, K)`` input gives a ``(0, K)`` array.
    """
    return _int_ranks(_orders(orders)).astype(np.float64)


def mean_ranks(tasks: ArrayLike, orders: ArrayLike, *, n_tasks: int) -> FloatArray:
    """``(n_tasks, K)``: each response's mean rank (1 = best) over the rankings of its task.

    A task without rankings has a row of NaN. ``ValueError`` for malformed input (see the module docstring).
    """
    task, ranked = _judgments(tasks, orders, n_tasks)
    sums, counts = _rank_sums(task, _int_ranks(ranked), int(n_tasks))
    means = np.full(sums.shape, np.nan)
    np.divide(sums, counts[:, np.newaxis], out=means, where=counts[:, np.newaxis] > 0)
    return means


def consensus_orders(tasks: ArrayLike, orders: ArrayLike, *, n_tasks: int) -> IntArray:
    """``(n_tasks, K)`` int: each task's consensus ranking, best first, by Borda count (= lowest mean rank).

    Responses are sorted by their rank sum over the task's rankings, ascending; with complete strict rankings this is
    exactly the Borda count (``K - rank`` points per ranking, most points first). Equal rank sums are broken by the
    lower response index (a deterministic, documented choice: the tie is real and the order within it arbitrary).
    A task without rankings gets a row of ``-1`` (no consensus). ``ValueError`` for malformed input.
    """
    task, ranked = _judgments(tasks, orders, n_tasks)
    sums, counts = _rank_sums(task, _int_ranks(ranked), int(n_tasks))
    consensus = np.argsort(sums, axis=1, kind="stable").astype(np.int64)
    consensus[counts == 0] = -1
    return consensus


def _w_per_task(task: IntArray, ranked: IntArray, n_tasks: int) -> tuple[FloatArray, IntArray]:
    k = ranked.shape[1]
    sums, counts = _rank_sums(task, _int_ranks(ranked), n_tasks)
    m = counts.astype(np.float64)
    # S = sum_j (R_j - m (K + 1) / 2) ** 2, written as sum_j R_j ** 2 - m ** 2 K (K + 1) ** 2 / 4 (exact integers).
    deviation = (sums.astype(np.float64) ** 2).sum(axis=1) - m**2 * k * (k + 1) ** 2 / 4.0
    denominator = m**2 * (k**3 - k)
    w = np.full(n_tasks, np.nan)
    np.divide(12.0 * deviation, denominator, out=w, where=(counts >= 2) & (denominator > 0))
    return w, counts


def kendalls_w(tasks: ArrayLike, orders: ArrayLike, *, n_tasks: int) -> FloatArray:
    """Kendall's coefficient of concordance ``W`` of each task's rankings, ``(n_tasks,)`` float in ``[0, 1]``.

    For a task with ``m`` rankings of ``K`` responses and rank sums ``R_j``:
    ``W = 12 S / (m ** 2 (K ** 3 - K))`` with ``S = sum_j (R_j - m (K + 1) / 2) ** 2``. No tie correction is
    needed (strict orders). 1 when all ``m`` rankings agree, 0 when every response has the same rank sum. Equals
    ``chi2 / (m (K - 1))`` for Friedman's statistic ``chi2`` (``scipy.stats.friedmanchisquare`` with the tasks'
    rankers as blocks).

    NaN for tasks with fewer than 2 rankings, and everywhere when ``K < 2``. The rankings of one task need not come
    from different annotators (this function does not look at who ranked). ``ValueError`` for malformed input.
    """
    task, ranked = _judgments(tasks, orders, n_tasks)
    return _w_per_task(task, ranked, int(n_tasks))[0]


def project_w(tasks: ArrayLike, orders: ArrayLike, *, n_tasks: int) -> float:
    """One project-level concordance: the mean of the per-task :func:`kendalls_w`, task ``t`` weighted by ``m_t - 1``.

    ``m_t`` is task ``t``'s number of rankings; tasks with NaN ``W`` (fewer than 2 rankings) are left out. The
    weight ``m - 1`` is the number of rankings beyond the first, i.e. how much evidence of (dis)agreement the task
    holds: a task ranked twice counts once, one ranked five times counts four times. It also damps chance: with
    ``m`` random rankings ``E[W] = 1 / m``, so the tasks with few rankings, whose ``W`` is most inflated by chance,
    weigh least.
    NaN when no task has 2 rankings, and when ``K < 2``.
    """
    task, ranked = _judgments(tasks, orders, n_tasks)
    w, counts = _w_per_task(task, ranked, int(n_tasks))
    scored = ~np.isnan(w)
    weights = (counts[scored] - 1).astype(np.float64)
    if weights.sum() == 0:
        return float("nan")
    return float((w[scored] * weights).sum() / weights.sum())


def _pair_signs(scores: NDArray[np.int64]) -> NDArray[np.int8]:
    """``(n, K (K - 1) / 2)``: the sign of ``scores[:, i] - scores[:, j]`` for every pair ``i < j``."""
    first, second = np.triu_indices(scores.shape[1], k=1)
    narrow = scores.astype(np.int32)
    return np.sign(narrow[:, first] - narrow[:, second]).astype(np.int8)


def annotator_tau(
    tasks: ArrayLike,
    annotators: ArrayLike,
    orders: ArrayLike,
    consensus: ArrayLike | None = None,
    *,
    n_annotators: int,
) -> tuple[FloatArray, IntArray]:
    """``(mean_tau, count)``, each ``(n_annotators,)``: every annotator's mean Kendall tau-b against consensus.

    For every ranking judgment, Kendall's tau-b between the annotator's ranking and a reference ranking of the same
    task, computed over the ``K (K - 1) / 2`` response pairs: ``(C - D) / sqrt(n0 (n0 - T))`` with ``n0`` the number
    of pairs, ``C`` / ``D`` the concordant / discordant pairs and ``T`` the pairs tied in the reference (the
    annotator's own ranking is strict). Equals ``scipy.stats.kendalltau`` (variant ``"b"``).

    The reference:

    - ``consensus=None`` (the default and the recommended choice): **leave-one-out**. The reference for a judgment
      is the rank sums of the *other* rankings of its task (the task's rank sums minus the judgment's own ranks),
      so an annotator is never compared with a consensus they helped form (which would inflate tau, most on tasks
      with few rankings). Responses with equal leave-one-out rank sums are tied in the reference: tau-b gives that
      pair no credit either way. A judgment whose task has no other ranking is not scored.
    - ``consensus`` an ``(n_tasks, K)`` array of best-first orders (e.g. from :func:`consensus_orders`, or an
      expert ranking): every judgment is compared with its task's row; rows of ``-1`` (no consensus) are skipped.
      ``tasks`` must then lie in ``0 .. n_tasks - 1``.

    ``tasks`` are task indices (``0 .. n_tasks - 1``, as elsewhere in this module): the leave-one-out rank sums take
    ``(max(tasks) + 1) x K`` memory.

    ``count`` is the number of scored judgments per annotator (a judgment whose reference ties every pair, e.g. the
    two other rankings of a 2-response task disagree, has an undefined tau and is not scored either); ``mean_tau``
    is NaN where ``count == 0``. ``ValueError`` for malformed input, or a ``consensus`` whose rows are neither
    permutations of ``0 .. K - 1`` nor all ``-1``.
    """
    ranked = _orders(orders)
    n, k = ranked.shape
    n_ann = _count_arg(n_annotators, "n_annotators")
    who = _index(annotators, "annotators", n_ann, n)
    ranks = _int_ranks(ranked)
    if consensus is None:
        task = _index(tasks, "tasks", np.iinfo(np.int64).max, n)
        n_tasks = int(task.max()) + 1 if n else 0
        sums, counts = _rank_sums(task, ranks, n_tasks)
        reference = sums[task] - ranks
        usable = counts[task] >= 2
    else:
        table = np.asarray(consensus)
        if table.ndim != 2 or table.shape[1] != k:
            raise ValueError(f"consensus must be an (n_tasks, {k}) array of orders, got shape {table.shape}.")
        missing = (table == -1).all(axis=1) if k else np.zeros(table.shape[0], dtype=bool)
        filled = _orders(np.where(missing[:, np.newaxis], np.arange(k), table))
        task = _index(tasks, "tasks", table.shape[0], n)
        reference = _int_ranks(filled)[task]
        usable = ~missing[task]
    own = _pair_signs(ranks)
    ref = _pair_signs(reference)
    n_pairs = own.shape[1]
    concordance = (own * ref).sum(axis=1, dtype=np.int64)
    untied = (ref != 0).sum(axis=1)
    scored = usable & (untied > 0)
    tau = np.zeros(n)
    np.divide(concordance, np.sqrt(float(n_pairs) * untied), out=tau, where=scored)
    count = np.bincount(who[scored], minlength=n_ann).astype(np.int64)
    total = np.bincount(who[scored], weights=tau[scored], minlength=n_ann)
    mean = np.full(n_ann, np.nan)
    np.divide(total, count, out=mean, where=count > 0)
    return mean, count


# -- Plackett-Luce ----------------------------------------------------------------------------------------------------


def _item_orders(n_items: int, orders: ArrayLike) -> tuple[int, IntArray]:
    """Validated ``(n_items, orders)``: an ``(n, L)`` int64 array of items, ``-1`` padding only at row ends."""
    n = _count_arg(n_items, "n_items", minimum=1)
    array = np.asarray(orders)
    if array.ndim != 2:
        raise ValueError(f"orders must be an (n, L) array of item indices padded with -1, got shape {array.shape}.")
    if array.size and array.dtype.kind not in "iu":
        raise ValueError(f"orders must hold integer item indices, got dtype {array.dtype}.")
    array = array.astype(np.int64, copy=False)
    out_of_range = np.argwhere((array < -1) | (array >= n))
    if out_of_range.size:
        row, col = (int(x) for x in out_of_range[0])
        raise ValueError(f"orders[{row}, {col}] = {array[row, col]} is outside 0..{n - 1} (or -1 for padding).")
    valid = array >= 0
    gaps = np.flatnonzero((valid[:, 1:] & ~valid[:, :-1]).any(axis=1))
    if gaps.size:
        raise ValueError(f"orders row {int(gaps[0])} has an item after -1 padding; pad only at the end.")
    ordered = np.sort(np.where(valid, array, -1 - np.arange(array.shape[1])), axis=1)
    repeated = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
    if repeated.size:
        raise ValueError(f"orders row {int(repeated[0])} lists an item twice.")
    return n, array


def _distinct_rankings(n: int, array: IntArray) -> tuple[IntArray, IntArray]:
    """The distinct rows of ``array`` and how often each occurs (identical rankings are fitted once, weighted)."""
    length = array.shape[1]
    if array.shape[0] == 0:
        return np.zeros((0, length), dtype=np.int64), np.zeros(0, dtype=np.int64)
    if length * math.log2(n + 1) < 62:
        keys = np.zeros(array.shape[0], dtype=np.int64)
        for position in range(length):  # a loop over the L <= ~60 columns, not over rankings
            keys = keys * (n + 1) + array[:, position] + 1
        _, counts, inverse = group_keys(keys, (n + 1) ** length)
        # Rows with one key are identical, so any one of them represents the group.
        representative = np.zeros(counts.size, dtype=np.int64)
        representative[inverse] = np.arange(inverse.size)
        return array[representative], counts
    distinct, counts = np.unique(array, axis=0, return_counts=True)
    return distinct.astype(np.int64), counts.astype(np.int64)


def _strongly_connected(adjacency: BoolArray) -> BoolArray:
    """``(B,)``: whether each ``(n, n)`` boolean adjacency matrix of the ``(B, n, n)`` stack is strongly connected."""
    batch, n, _ = adjacency.shape
    edges = adjacency.astype(np.float64)

    def reach(matrix: FloatArray) -> BoolArray:
        reached = np.zeros((batch, n), dtype=bool)
        reached[:, 0] = True
        for _ in range(n):  # frontier expansion: at most n rounds
            grown = reached | (np.einsum("bi,bij->bj", reached.astype(np.float64), matrix) > 0)
            if (grown == reached).all():
                break
            reached = grown
        return reached

    return reach(edges).all(axis=1) & reach(edges.transpose(0, 2, 1)).all(axis=1)


def _adjacency(n: int, distinct: IntArray, weights: FloatArray) -> BoolArray:
    """``(B, n, n)``: ``a[b, i, j]`` when ``i`` is ranked directly above ``j`` in a ranking with weight > 0 in row
    ``b``. Consecutive pairs suffice: "ranked above" is their transitive closure, which has the same strong
    components."""
    batch = weights.shape[0]
    upper, lower = distinct[:, :-1], distinct[:, 1:]
    pair = (upper >= 0) & (lower >= 0)
    rows, cols = np.nonzero(pair)
    flat = upper[rows, cols] * n + lower[rows, cols]
    present = weights[:, rows] > 0
    index = (np.arange(batch)[:, np.newaxis] * n * n + flat[np.newaxis, :])[present]
    return (np.bincount(index, minlength=batch * n * n) > 0).reshape(batch, n, n)


def _identification_problem(n: int, distinct: IntArray, counts: IntArray) -> str | None:
    """Why the unpenalised maximum-likelihood estimate does not exist (Hunter 2004, Assumption 1), or ``None``."""
    adjacency = _adjacency(n, distinct, counts[np.newaxis, :].astype(np.float64))[0]
    above, below = adjacency.any(axis=1), adjacency.any(axis=0)
    absent = np.flatnonzero(~above & ~below)
    if absent.size:
        return f"item {int(absent[0])} is in no ranking of 2 or more items"
    never_below = np.flatnonzero(~below)
    if never_below.size:
        return f"item {int(never_below[0])} is never ranked below another item"
    never_above = np.flatnonzero(~above)
    if never_above.size:
        return f"item {int(never_above[0])} is never ranked above another item"
    if not _strongly_connected(adjacency[np.newaxis])[0]:
        return "the items split into groups that are never ranked against each other in both directions"
    return None


def _not_identified(reason: str) -> ValueError:
    return ValueError(
        f"The Plackett-Luce maximum-likelihood estimate does not exist: {reason}. Pass alpha > 0 for a regularised "
        "estimate."
    )


def _fit(
    n: int,
    distinct: IntArray,
    weights: FloatArray,
    alpha: float,
    tol: float,
    max_iter: int,
    start: FloatArray,
) -> tuple[FloatArray, BoolArray]:
    """Hunter's (2004) MM iteration for every row of the ``(B, R)`` ranking weights at once.

    Returns centred ``theta`` ``(B, n)`` and ``converged`` ``(B,)``. The data must be identified when ``alpha = 0``.
    """
    batch, length = weights.shape[0], distinct.shape[1]
    # Position-major layout (L, R): the running sums over positions add contiguous rows of R rankings.
    valid = (distinct >= 0).T
    stage = np.arange(distinct.shape[1])[:, np.newaxis] < valid.sum(axis=0) - 1  # positions that choose an item
    items = np.where(valid, distinct.T, 0)
    # Every (position, ranking) slot holding an item, grouped by item, for one np.add.reduceat per sum over items.
    slots = np.flatnonzero(valid.ravel())
    slots = slots[np.argsort(items.ravel()[slots], kind="stable")]
    slot_items = items.ravel()[slots]
    starts = np.flatnonzero(np.r_[True, slot_items[1:] != slot_items[:-1]]) if slots.size else slots
    listed = slot_items[starts]

    def per_item(values: FloatArray) -> FloatArray:
        """Sum the ``(B, L, R)`` ``values`` over the slots of every item: ``(B, n)``, 0 for items in no slot."""
        totals = np.zeros((values.shape[0], n))
        if slots.size:
            totals[:, listed] = np.add.reduceat(values.reshape(values.shape[0], -1)[:, slots], starts, axis=1)
        return totals

    # wins[b, i]: weighted number of stages at which item i was chosen (the MM numerator).
    wins = per_item(stage[np.newaxis] * weights[:, np.newaxis, :])
    log_wins = np.log(np.where(wins > 0, wins, 1.0))
    theta = start.copy()
    converged = np.zeros(batch, dtype=bool)
    active = np.arange(batch)
    for _ in range(max_iter):
        th = theta[active]
        shift = th.max(axis=1, keepdims=True)
        remaining = np.exp(th - shift)[:, items] * valid
        # Running sums over the L positions as slab additions (np.cumsum along a middle axis is several times slower).
        for position in range(length - 2, -1, -1):
            remaining[:, position] += remaining[:, position + 1]
        inverse = np.zeros_like(remaining)
        np.divide(weights[active][:, np.newaxis, :], remaining, out=inverse, where=stage[np.newaxis])
        for position in range(1, length):
            inverse[:, position] += inverse[:, position - 1]
        # D_i = sum over the stages item i took part in of weight / (sum of the remaining strengths): the running
        # sum of ``inverse`` over positions, summed over item i's slots. Computed with strengths divided by
        # exp(shift), it is D * exp(shift).
        scaled = per_item(inverse)
        seen = scaled > 0
        log_d = np.where(seen, np.log(np.where(seen, scaled, 1.0)), -np.inf) - shift
        # alpha = 0: the surrogate's maximum is log(wins / D) in closed form; otherwise a 1-D Newton solve per item.
        new = log_wins[active] - log_d if alpha == 0.0 else _penalised_step(wins[active], log_d, th, alpha)
        # The likelihood is shift-invariant and the penalty is smallest at mean 0, so centring maximises the
        # objective along the shift direction exactly: still an ascent step, and it removes MM's slowest mode (the
        # surrogate's curvature along the shift is sum D_i exp(theta_i), the objective's only 2 alpha n).
        new -= new.mean(axis=1, keepdims=True)
        step = np.abs(new - th).max(axis=1)
        theta[active] = new
        done = step <= tol
        converged[active[done]] = True
        active = active[~done]
        if active.size == 0:
            break
    theta -= theta.mean(axis=1, keepdims=True)
    return theta, converged


def _penalised_step(wins: FloatArray, log_d: FloatArray, current: FloatArray, alpha: float) -> FloatArray:
    """Maximise the separable MM surrogate ``wins_i t - D_i exp(t) - alpha t ** 2`` in every coordinate ``t``.

    Newton on ``f(t) = wins - D exp(t) - 2 alpha t`` (concave, decreasing) from a point with ``f <= 0`` converges
    monotonically: start from the current ``theta`` when ``f <= 0`` there, else from ``max(log(wins / D), 0)``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        fallback = np.maximum(np.log(wins) - log_d, 0.0)
    fallback = np.where(np.isfinite(fallback), fallback, 0.0)
    t = np.where(wins - np.exp(log_d + current) - 2.0 * alpha * current <= 0, current, fallback)
    for _ in range(_INNER_MAX):
        push = np.exp(log_d + t)
        step = (wins - push - 2.0 * alpha * t) / (push + 2.0 * alpha)
        t = t + step
        if np.abs(step).max() <= 1e-14 * (1.0 + np.abs(t).max()):
            break
    return t


def _check_fit_options(alpha: float, tol: float, max_iter: int) -> float:
    alpha = float(alpha)
    if not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}.")
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}.")
    _count_arg(max_iter, "max_iter", minimum=1)
    return alpha


def plackett_luce(
    n_items: int,
    orders: ArrayLike,
    *,
    alpha: float = 0.0,
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> FloatArray:
    """Plackett-Luce log-strengths ``(n_items,)``, centred, fitted by Hunter's (2004) MM algorithm.

    ``orders`` is an ``(n, L)`` int array of best-first rankings of items, each row a complete ranking of the items it
    lists, padded at the end with ``-1`` when shorter than ``L`` (see the module docstring). The likelihood of a row
    ``(i_1, ..., i_l)`` is ``prod_{s < l} exp(theta_{i_s}) / sum_{t >= s} exp(theta_{i_t})``; identical rows are
    fitted once with their multiplicity as weight, so the cost of an iteration depends on the number of distinct
    rankings, not of rankings.

    ``alpha`` is choix's ``opt_rankings`` penalty: the fit maximises the log-likelihood minus
    ``alpha * sum(theta ** 2)`` (a Gaussian prior of variance ``1 / (2 alpha)``; MAP estimate). Each MM step
    maximises Hunter's separable minorant ``sum_i (w_i theta_i - D_i exp(theta_i))`` minus the same penalty exactly
    (``w_i``: times ``i`` was chosen; ``D_i``: sum of ``1 / (remaining strength)`` over the stages ``i`` took part
    in), in closed form when ``alpha = 0`` and by a 1-D Newton solve per item otherwise; every step increases the
    (penalised) likelihood. Iteration stops when no ``theta`` moves by more than ``tol``.

    Edge cases: with ``alpha = 0`` the estimate exists only when every partition of the items has an item of each
    side ranked above one of the other (Hunter's Assumption 1: the "ranked above" graph is strongly connected);
    otherwise (an item in no ranking, an item always last or never below another, separate groups, no data)
    ``ValueError`` names the problem and suggests ``alpha > 0``. With ``alpha > 0`` every input has an estimate; an
    item in no ranking of 2+ items gets ``theta = 0`` before centring. Rows with fewer than 2 items are accepted and
    ignored. ``RuntimeError`` when ``max_iter`` iterations do not reach ``tol`` (MM converges linearly; very weakly
    connected data may need more iterations or ``alpha > 0``).

    ``ValueError`` for malformed input: not 2-D, not integer, an index outside ``0 .. n_items - 1`` other than ``-1``
    padding, an item after padding, an item listed twice in a row, ``alpha < 0``, ``tol <= 0``, ``max_iter < 1``.
    """
    n, array = _item_orders(n_items, orders)
    alpha = _check_fit_options(alpha, tol, max_iter)
    distinct, counts = _distinct_rankings(n, array)
    if alpha == 0.0:
        reason = _identification_problem(n, distinct, counts)
        if reason is not None:
            raise _not_identified(reason)
    weights = counts[np.newaxis, :].astype(np.float64)
    theta, converged = _fit(n, distinct, weights, alpha, tol, int(max_iter), np.zeros((1, n)))
    if not converged[0]:
        raise RuntimeError(
            f"Plackett-Luce MM did not converge to tol={tol:g} within max_iter={max_iter}; raise max_iter, or pass "
            "alpha > 0 for weakly connected data."
        )
    return theta[0]


def plackett_luce_intervals(
    n_items: int,
    orders: ArrayLike,
    *,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    alpha: float = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """Percentile bootstrap intervals ``(low, high)``, each ``(n_items,)``, for the centred :func:`plackett_luce`.

    Each replicate resamples the ``n`` rankings (rows of ``orders``) with replacement, drawn as multinomial counts
    over the distinct rankings (the same distribution at a cost independent of ``n``), refits with the same
    ``alpha`` starting from the full-data estimate, and centres. ``low`` / ``high`` are the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles over replicates (``np.quantile``, linear interpolation). Randomness comes only from
    ``np.random.default_rng(seed)``: the same arguments give identical output.

    With ``alpha = 0`` a replicate whose resampled rankings leave the estimate undefined (not strongly connected) is
    redrawn, i.e. the bootstrap is conditional on the estimate existing, as in
    :func:`.bradley_terry.bradley_terry_intervals`; redrawing is tolerated only while the redrawn share of all draws
    stays at most ``(1 - level) / 2`` (one tail), beyond which ``ValueError`` suggests ``alpha > 0``.

    Raises ``ValueError`` as :func:`plackett_luce` does for the original data, and for ``n_boot < 1`` or ``level``
    outside ``(0, 1)``. With ``alpha > 0`` and no informative ranking the intervals are zero-width at 0.
    """
    n, array = _item_orders(n_items, orders)
    alpha = _check_fit_options(alpha, 1.0, 1)
    boots = _count_arg(n_boot, "n_boot", minimum=1)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}.")
    estimate = plackett_luce(n, array, alpha=alpha, tol=_BOOT_TOL)
    distinct, counts = _distinct_rankings(n, array)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(n), np.zeros(n)
    probs = counts / total
    tail = (1.0 - level) / 2.0
    max_redrawn = math.floor(tail * boots / (1.0 - tail) + 1e-9)
    block = max(1, _BOOT_BLOCK // max(1, distinct.size, n * n))  # also bounds the (B, n, n) connectivity check
    rng = np.random.default_rng(seed)
    fits: list[FloatArray] = []
    needed, redrawn = boots, 0
    while needed > 0:
        size = min(needed, block)
        draws = rng.multinomial(total, probs, size=size).astype(np.float64)
        usable = np.ones(size, dtype=bool)
        if alpha == 0.0:
            usable = _strongly_connected(_adjacency(n, distinct, draws))
        redrawn += int((~usable).sum())
        if redrawn > max_redrawn:
            raise ValueError(
                f"{redrawn} bootstrap replicates had no finite maximum-likelihood estimate (rankings not strongly "
                f"connected), more than the {max_redrawn} that a {level:g} interval from {boots} replicates "
                "tolerates; the data are too sparse for unregularised intervals: pass alpha > 0"
            )
        keep = draws[usable]
        if keep.shape[0]:
            start = np.broadcast_to(estimate, (keep.shape[0], n))
            theta, _ = _fit(n, distinct, keep, alpha, _BOOT_TOL, 100_000, start)
            fits.append(theta)
        needed -= keep.shape[0]
    replicates = np.concatenate(fits, axis=0)
    low, high = np.quantile(replicates, [tail, 1.0 - tail], axis=0)
    return low, high


def plackett_luce_information(n_items: int, orders: ArrayLike, theta: ArrayLike) -> FloatArray:
    """The Plackett-Luce Fisher information ``(n_items, n_items)`` at ``theta`` (minus the log-likelihood's Hessian).

    Every stage of every ranking, choosing among the items ``C`` still unplaced with probabilities ``p = softmax
    (theta_C)``, adds ``diag(p) - p p^T`` on ``C``; identical rankings are summed once with their count. Vectorised
    over rankings: a loop over the ``L`` positions and pairs of positions only. ``orders`` as in
    :func:`plackett_luce`.
    """
    n, array = _item_orders(n_items, orders)
    theta = np.asarray(theta, dtype=np.float64)
    if theta.shape != (n,):
        raise ValueError(f"theta must have shape ({n},), got {theta.shape}.")
    distinct, counts = _distinct_rankings(n, array)
    weights = counts.astype(np.float64)
    lengths = (distinct >= 0).sum(axis=1)
    information = np.zeros(n * n)
    for stage in range(max(distinct.shape[1] - 1, 0)):
        rows = lengths - 1 > stage  # rankings that still choose at this stage
        if not rows.any():
            break
        items = distinct[rows, stage:]
        valid = items >= 0
        safe = np.where(valid, items, 0)
        logits = np.where(valid, theta[safe], -np.inf)
        strengths = np.exp(logits - logits.max(axis=1, keepdims=True))
        p = strengths / strengths.sum(axis=1, keepdims=True)
        w = weights[rows]
        width = items.shape[1]
        for a in range(width):
            on_a = valid[:, a]
            index = safe[on_a, a] * (n + 1)  # the diagonal entry (i, i)
            information += np.bincount(index, weights=w[on_a] * p[on_a, a], minlength=n * n)
            for b in range(width):
                both = on_a & valid[:, b]
                index = safe[both, a] * n + safe[both, b]
                information -= np.bincount(index, weights=w[both] * p[both, a] * p[both, b], minlength=n * n)
    return information.reshape(n, n)


def plackett_luce_information_intervals(
    n_items: int, orders: ArrayLike, theta: ArrayLike, *, alpha: float = 0.0, level: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    """Wald intervals ``(low, high)`` for the centred :func:`plackett_luce` estimate ``theta``, from the observed
    information: the centred estimate's covariance is the pseudo-inverse of the Fisher information plus the
    penalty's curvature ``2 alpha`` (the likelihood is flat along a common shift, which centring removes).

    For many rankings, where they agree with :func:`plackett_luce_intervals` (the asymptotic normality of the
    maximum-likelihood estimate) at a small fraction of its cost: the bootstrap refits the model 200 times.
    """
    n, array = _item_orders(n_items, orders)
    alpha = _check_fit_options(alpha, 1.0, 1)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}.")
    estimate = np.asarray(theta, dtype=np.float64)
    information = plackett_luce_information(n, array, estimate) + 2.0 * alpha * np.eye(n)
    centre = np.eye(n) - 1.0 / n
    covariance = centre @ np.linalg.pinv(centre @ information @ centre, hermitian=True) @ centre
    z = float(normal_quantile(np.array([(1.0 + level) / 2.0]))[0])
    half = z * np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    return estimate - half, estimate + half

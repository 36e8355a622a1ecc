"""Ranking statistics against published examples and oracle libraries (scipy, choix).

Kendall's W: two published worked examples (InfluentialPoints' strawberry farms, ProofWiki's three competitors),
Friedman's chi-square from ``scipy.stats.friedmanchisquare`` (``W = chi2 / (m (K - 1))`` for strict ranks) and a
per-task Python loop. Tau: ``scipy.stats.kendalltau`` (tau-b) per judgment. Plackett-Luce: ``choix.ilsr_rankings``
(unregularised) and ``choix.opt_rankings`` (same ``alpha`` penalty), and the Fisher information of choix's own
Plackett-Luce objective for the bootstrap widths. None of the expected values is copied from this module's output.
"""

from __future__ import annotations

import ast
import inspect

import choix
import numpy as np
import pytest
from choix.opt import Top1Fcts
from scipy.stats import friedmanchisquare, kendalltau

from numeric import ranking
from numeric.ranking import (
    annotator_tau,
    consensus_orders,
    kendalls_w,
    mean_ranks,
    plackett_luce,
    plackett_luce_intervals,
    project_w,
    ranks_from_orders,
)

# InfluentialPoints, "Kendall coefficient of concordance" (influentialpoints.com/Training/coefficient_of_concordance
# .htm): four raters rank strawberries from eight farms, 1 = best. Rank sums 31 12 12 15 22 5 22 25, SS = 500,
# W = 500 / (504 * 16 / 12) = 0.744, k (N - 1) W = 20.83.
STRAWBERRY_RANKS = np.array(
    [
        [8, 4, 2, 3, 5, 1, 6, 7],
        [7, 3, 1, 4, 5, 2, 6, 8],
        [8, 2, 5, 6, 7, 1, 4, 3],
        [8, 3, 4, 2, 5, 1, 6, 7],
    ]
)
# ProofWiki, "Kendall's Coefficient of Concordance/Examples/Arbitrary Example 1": judges A-D rank competitors X, Y, Z;
# W = 1/16.
PROOFWIKI_RANKS = np.array([[1, 3, 2], [1, 2, 3], [2, 3, 1], [3, 1, 2]])


def orders_of(ranks: np.ndarray) -> np.ndarray:
    """Best-first orders from 1-based rank rows."""
    return np.argsort(ranks, axis=1)


def random_rankings(n_tasks: int, k: int, seed: int, max_per_task: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Tasks with 0..max_per_task rankings each, noisy copies of a per-task true order."""
    rng = np.random.default_rng(seed)
    per_task = rng.integers(0, max_per_task + 1, n_tasks)
    tasks = np.repeat(np.arange(n_tasks), per_task)
    truth = rng.normal(0.0, 1.0, (n_tasks, k))
    noisy = truth[tasks] + rng.normal(0.0, rng.uniform(0.3, 3.0), (tasks.size, k))
    return tasks, np.argsort(-noisy, axis=1)


# -- ranks, consensus ---------------------------------------------------------------------------------------------


def test_ranks_from_orders_inverts_orders() -> None:
    orders = np.array([[2, 0, 1], [0, 1, 2], [1, 2, 0]])
    np.testing.assert_array_equal(ranks_from_orders(orders), [[2.0, 3.0, 1.0], [1.0, 2.0, 3.0], [3.0, 1.0, 2.0]])
    assert ranks_from_orders(np.zeros((0, 4), dtype=int)).shape == (0, 4)
    np.testing.assert_array_equal(ranks_from_orders(orders_of(STRAWBERRY_RANKS)), STRAWBERRY_RANKS)


@pytest.mark.parametrize("seed", range(3))
def test_mean_ranks_and_consensus_match_a_loop(seed: int) -> None:
    n_tasks, k = 40, 5
    tasks, orders = random_rankings(n_tasks, k, seed)
    means = mean_ranks(tasks, orders, n_tasks=n_tasks)
    consensus = consensus_orders(tasks, orders, n_tasks=n_tasks)
    for t in range(n_tasks):
        rows = orders[tasks == t]
        if rows.shape[0] == 0:
            assert np.isnan(means[t]).all() and (consensus[t] == -1).all()
            continue
        ranks = np.argsort(rows, axis=1) + 1.0
        expected = ranks.mean(axis=0)
        np.testing.assert_allclose(means[t], expected, rtol=1e-12)
        # Borda: K - rank points per ranking, most points first, ties to the lower response index.
        borda = (k - ranks).sum(axis=0)
        assert consensus[t].tolist() == sorted(range(k), key=lambda j: (-borda[j], j))


def test_consensus_breaks_ties_by_lower_index() -> None:
    # Two rankers exactly opposed: all rank sums equal, so the consensus is 0, 1, 2, 3.
    consensus = consensus_orders([0, 0, 1], [[3, 1, 0, 2], [2, 0, 1, 3], [1, 0, 2, 3]], n_tasks=3)
    np.testing.assert_array_equal(consensus, [[0, 1, 2, 3], [1, 0, 2, 3], [-1, -1, -1, -1]])


# -- Kendall's W ----------------------------------------------------------------------------------------------------


def test_kendalls_w_published_strawberry_example() -> None:
    orders = orders_of(STRAWBERRY_RANKS)
    w = kendalls_w(np.zeros(4, dtype=int), orders, n_tasks=1)
    assert w[0] == pytest.approx(500 / (504 * 16 / 12), abs=1e-12)
    assert round(float(w[0]), 3) == 0.744
    assert 4 * 7 * w[0] == pytest.approx(20.83, abs=5e-3)
    np.testing.assert_array_equal(mean_ranks([0] * 4, orders, n_tasks=1)[0] * 4, [31, 12, 12, 15, 22, 5, 22, 25])


def test_kendalls_w_published_three_competitor_example() -> None:
    w = kendalls_w([0, 0, 0, 0], orders_of(PROOFWIKI_RANKS), n_tasks=1)
    assert w[0] == pytest.approx(1 / 16, abs=1e-15)


def test_kendalls_w_hand_cases() -> None:
    identical = np.tile([2, 0, 3, 1], (5, 1))
    cyclic = np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]])  # every response ranked 1st, 2nd and 3rd once
    w = kendalls_w(np.zeros(5, dtype=int), identical, n_tasks=2)
    assert w[0] == pytest.approx(1.0, abs=1e-15) and np.isnan(w[1])
    assert kendalls_w([0, 0, 0], cyclic, n_tasks=1)[0] == pytest.approx(0.0, abs=1e-15)
    # Two raters, K = 2, opposed: W = 0; agreeing: W = 1.
    np.testing.assert_allclose(kendalls_w([0, 0, 1, 1], [[0, 1], [1, 0], [1, 0], [1, 0]], n_tasks=2), [0.0, 1.0])
    # A single ranking, or K = 1, leaves W undefined.
    assert np.isnan(kendalls_w([0], [[1, 0, 2]], n_tasks=1)).all()
    assert np.isnan(kendalls_w([0, 0], [[0], [0]], n_tasks=1)).all()


@pytest.mark.parametrize("seed", range(5))
def test_kendalls_w_matches_friedman_chi_square(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k, m = int(rng.integers(3, 9)), int(rng.integers(2, 15))
    truth = rng.normal(0, 1, k)
    orders = np.argsort(-(truth + rng.normal(0, 1.5, (m, k))), axis=1)
    ranks = np.argsort(orders, axis=1) + 1
    chi2 = friedmanchisquare(*ranks.T).statistic  # rankers are the blocks, responses the treatments
    w = kendalls_w(np.zeros(m, dtype=int), orders, n_tasks=1)[0]
    assert w == pytest.approx(chi2 / (m * (k - 1)), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [2, 4, 9])
def test_kendalls_w_and_project_w_match_a_loop(seed: int, k: int) -> None:
    n_tasks = 60
    tasks, orders = random_rankings(n_tasks, k, seed)
    w = kendalls_w(tasks, orders, n_tasks=n_tasks)
    expected, weights = np.full(n_tasks, np.nan), np.zeros(n_tasks)
    for t in range(n_tasks):
        ranks = np.argsort(orders[tasks == t], axis=1) + 1.0
        m = ranks.shape[0]
        if m >= 2:
            sums = ranks.sum(axis=0)
            expected[t] = 12 * ((sums - m * (k + 1) / 2) ** 2).sum() / (m**2 * (k**3 - k))
            weights[t] = m - 1
    np.testing.assert_allclose(w, expected, rtol=1e-12, atol=1e-14)
    assert ((w[~np.isnan(w)] >= -1e-12) & (w[~np.isnan(w)] <= 1 + 1e-12)).all()
    scored = weights > 0
    assert project_w(tasks, orders, n_tasks=n_tasks) == pytest.approx(
        np.average(expected[scored], weights=weights[scored]), abs=1e-12
    )


def test_project_w_edge_cases() -> None:
    assert np.isnan(project_w([0, 1], [[0, 1], [1, 0]], n_tasks=2))
    assert np.isnan(project_w(np.zeros(0, dtype=int), np.zeros((0, 3), dtype=int), n_tasks=0))
    # Weights m - 1: a task ranked 3 times (W = 1) counts twice, one ranked twice (W = 0) once.
    tasks = [0, 0, 0, 1, 1]
    orders = [[0, 1, 2], [0, 1, 2], [0, 1, 2], [0, 1, 2], [2, 1, 0]]
    assert project_w(tasks, orders, n_tasks=2) == pytest.approx(2 / 3, abs=1e-15)


# -- annotator tau --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [2, 3, 5, 9])
def test_leave_one_out_tau_matches_scipy(seed: int, k: int) -> None:
    n_tasks, n_annotators = 50, 7
    tasks, orders = random_rankings(n_tasks, k, seed)
    rng = np.random.default_rng(100 + seed)
    annotators = rng.integers(0, n_annotators, tasks.size)
    mean, count = annotator_tau(tasks, annotators, orders, n_annotators=n_annotators)
    totals, counts = np.zeros(n_annotators), np.zeros(n_annotators, dtype=int)
    ranks = np.argsort(orders, axis=1) + 1.0
    for r in range(tasks.size):
        others = (tasks == tasks[r]) & (np.arange(tasks.size) != r)
        if not others.any():
            continue
        tau = kendalltau(ranks[r], ranks[others].mean(axis=0)).statistic
        if np.isnan(tau):
            continue
        totals[annotators[r]] += tau
        counts[annotators[r]] += 1
    np.testing.assert_array_equal(count, counts)
    expected = np.divide(totals, counts, out=np.full(n_annotators, np.nan), where=counts > 0)
    np.testing.assert_allclose(mean, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("seed", range(3))
def test_tau_against_a_given_consensus_matches_scipy(seed: int) -> None:
    n_tasks, k, n_annotators = 30, 4, 5
    tasks, orders = random_rankings(n_tasks, k, seed)
    annotators = np.random.default_rng(seed).integers(0, n_annotators, tasks.size)
    consensus = consensus_orders(tasks, orders, n_tasks=n_tasks)
    mean, count = annotator_tau(tasks, annotators, orders, consensus, n_annotators=n_annotators)
    taus = [[] for _ in range(n_annotators)]
    for r in range(tasks.size):
        own = np.argsort(orders[r])
        reference = np.argsort(consensus[tasks[r]])
        taus[annotators[r]].append(kendalltau(own, reference).statistic)
    np.testing.assert_array_equal(count, [len(t) for t in taus])
    np.testing.assert_allclose(mean, [np.mean(t) if t else np.nan for t in taus], rtol=1e-12)


def test_tau_hand_cases() -> None:
    # Task 0: annotators 0 and 1 agree, 2 reverses them; task 1 has one ranking only (never scored); task 2: 0 and 1
    # agree, 2 swaps the first two responses.
    tasks = [0, 0, 0, 1, 2, 2, 2]
    annotators = [0, 1, 2, 0, 0, 1, 2]
    orders = [[0, 1, 2], [0, 1, 2], [2, 1, 0], [2, 0, 1], [0, 1, 2], [0, 1, 2], [1, 0, 2]]
    mean, count = annotator_tau(tasks, annotators, orders, n_annotators=4)
    # Task 0, leave-one-out: for annotators 0 and 1 the other two rankings sum to ranks (4, 4, 4), all tied, so they
    # are not scored there; annotator 2 reverses the others' (2, 4, 6): tau = -1. Task 2: for annotators 0 and 1
    # the others sum to (3, 3, 6): pair 0-1 tied, 0-2 and 1-2 concordant, tau-b = 2 / sqrt(3 * 2); annotator 2's
    # (2, 1, 3) against (2, 4, 6): one discordant pair, two concordant: 1 / 3.
    assert count.tolist() == [1, 1, 2, 0]
    np.testing.assert_allclose(mean[:3], [2 / np.sqrt(6), 2 / np.sqrt(6), (-1 + 1 / 3) / 2], rtol=1e-15)
    assert np.isnan(mean[3])
    # With a given consensus, a -1 row (no consensus) is skipped.
    consensus = np.array([[0, 1, 2], [-1, -1, -1], [0, 1, 2]])
    mean, count = annotator_tau(tasks, annotators, orders, consensus, n_annotators=3)
    assert count.tolist() == [2, 2, 2]
    assert mean[0] == pytest.approx(1.0) and mean[2] == pytest.approx((-1 + 1 / 3) / 2)


# -- Plackett-Luce --------------------------------------------------------------------------------------------------


def simulate_pl(
    n_items: int, m: int, seed: int, lengths: tuple[int, int] = (2, 5)
) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """``m`` Plackett-Luce rankings of random subsets (sizes in ``lengths``), -1 padded; also as choix lists."""
    rng = np.random.default_rng(seed)
    skill = rng.normal(0.0, 1.0, n_items)
    sizes = rng.integers(lengths[0], lengths[1] + 1, m)
    width = int(sizes.max())
    shown = np.argsort(rng.random((m, n_items)), axis=1)[:, :width]
    # Gumbel-max: sorting strength + Gumbel noise gives a Plackett-Luce ranking of the shown items.
    keys = np.where(np.arange(width) < sizes[:, None], skill[shown] + rng.gumbel(size=shown.shape), -np.inf)
    order = np.argsort(-keys, axis=1)
    ranked = np.take_along_axis(shown, order, axis=1)
    ranked[np.arange(width) >= sizes[:, None]] = -1
    as_lists = [[int(x) for x in row if x >= 0] for row in ranked]
    return ranked, skill - skill.mean(), as_lists


def centred(values: np.ndarray) -> np.ndarray:
    return values - values.mean()


@pytest.mark.parametrize("seed", range(4))
def test_plackett_luce_matches_choix_ilsr(seed: int) -> None:
    orders, _, lists = simulate_pl(8, 300, seed)
    expected = centred(choix.ilsr_rankings(8, lists, alpha=0.0, max_iter=10_000, tol=1e-13))
    np.testing.assert_allclose(plackett_luce(8, orders), expected, atol=1e-8)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("alpha", [0.01, 0.5, 5.0])
def test_plackett_luce_matches_choix_opt_rankings_regularised(seed: int, alpha: float) -> None:
    orders, _, lists = simulate_pl(6, 80, seed)
    expected = centred(choix.opt_rankings(6, lists, alpha=alpha, tol=1e-12))
    np.testing.assert_allclose(plackett_luce(6, orders, alpha=alpha), expected, atol=1e-6)


def test_plackett_luce_regularised_on_disconnected_data_matches_choix() -> None:
    # Item 0 always wins, items 3 and 4 only meet each other, item 5 is never ranked.
    lists = [[0, 1, 2], [0, 2], [1, 2], [3, 4], [4, 3], [3, 4]]
    orders = np.array([row + [-1] * (3 - len(row)) for row in lists])
    for alpha in (0.05, 1.0):
        expected = centred(choix.opt_rankings(6, lists, alpha=alpha, tol=1e-12))
        np.testing.assert_allclose(plackett_luce(6, orders, alpha=alpha), expected, atol=1e-6)


def test_plackett_luce_recovers_simulated_strengths() -> None:
    orders, truth, _ = simulate_pl(10, 40_000, seed=7, lengths=(4, 4))
    assert orders.shape == (40_000, 4)
    np.testing.assert_allclose(plackett_luce(10, orders), truth, atol=0.05)


def test_plackett_luce_pairs_are_bradley_terry() -> None:
    """Rankings of two items are pairwise comparisons: Plackett-Luce on them is Bradley-Terry (choix's pairwise
    ILSR as the oracle)."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 5, 400)
    b = (a + rng.integers(1, 5, 400)) % 5
    expected = centred(choix.ilsr_pairwise(5, list(zip(a.tolist(), b.tolist(), strict=True)), tol=1e-13))
    np.testing.assert_allclose(plackett_luce(5, np.column_stack([a, b])), expected, atol=1e-8)


def test_plackett_luce_invariances() -> None:
    orders, _, _ = simulate_pl(7, 500, seed=2)
    theta = plackett_luce(7, orders, alpha=0.1)
    assert abs(theta.mean()) < 1e-12
    shuffled = orders[np.random.default_rng(0).permutation(orders.shape[0])]
    np.testing.assert_allclose(plackett_luce(7, shuffled, alpha=0.1), theta, atol=1e-10)
    # Extra -1 columns and rows of fewer than 2 items change nothing.
    padded = np.column_stack([orders, np.full(orders.shape[0], -1)])
    padded = np.vstack([padded, [[3, -1, -1, -1, -1, -1], [-1] * 6]])
    np.testing.assert_allclose(plackett_luce(7, padded, alpha=0.1), theta, atol=1e-10)


@pytest.mark.parametrize(
    ("orders", "match"),
    [
        ([], "no ranking of 2 or more items"),
        ([[0, 1], [1, 0], [2, -1]], "item 2 is in no ranking"),
        ([[0, 1, 2], [0, 2, 1]], "item 0 is never ranked below"),
        ([[0, 2], [1, 2], [0, 1], [1, 0]], "item 2 is never ranked above"),
        ([[0, 1], [1, 0], [2, 3], [3, 2]], "split into groups"),
    ],
)
def test_plackett_luce_unidentified_needs_alpha(orders: list, match: str) -> None:
    data = np.array(orders, dtype=int).reshape(-1, 2 if not orders else len(orders[0]))
    n = 4 if "groups" in match else 3
    with pytest.raises(ValueError, match=match + r".*alpha > 0"):
        plackett_luce(n, data)
    theta = plackett_luce(n, data, alpha=0.1)
    assert np.isfinite(theta).all() and abs(theta.mean()) < 1e-12


def test_plackett_luce_reports_non_convergence() -> None:
    orders, _, _ = simulate_pl(5, 200, seed=1)
    with pytest.raises(RuntimeError, match="max_iter"):
        plackett_luce(5, orders, max_iter=1)


@pytest.mark.parametrize(
    ("orders", "kwargs", "match"),
    [
        ([[0, 1, 5]], {}, "outside"),
        ([[0, -2, 1]], {}, "outside"),
        ([[0, -1, 1]], {}, "after -1 padding"),
        ([[0, 1, 0]], {}, "twice"),
        ([0, 1, 2], {}, "shape"),
        ([[0.0, 1.0]], {}, "integer"),
        ([[0, 1], [1, 0]], {"alpha": -1.0}, "alpha"),
        ([[0, 1], [1, 0]], {"tol": 0.0}, "tol"),
        ([[0, 1], [1, 0]], {"max_iter": 0}, "max_iter"),
    ],
)
def test_plackett_luce_malformed_input(orders: list, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        plackett_luce(3, orders, **kwargs)
    with pytest.raises(ValueError, match="n_items"):
        plackett_luce(0, [[0, 1]])


def fisher_standard_errors(n: int, lists: list[list[int]], theta: np.ndarray) -> np.ndarray:
    """Standard errors of the centred estimate from the Hessian of choix's Plackett-Luce objective."""
    hessian = Top1Fcts.from_rankings(lists, 0.0).hessian(theta)
    # The Hessian is singular along the shift (all theta together); its pseudo-inverse is the covariance of the
    # centred parameters. The cut-off drops that numerically-zero eigenvalue.
    covariance = np.linalg.pinv(hessian, rcond=1e-9, hermitian=True)
    return np.sqrt(np.diag(covariance))


def test_bootstrap_is_deterministic_and_seeded() -> None:
    orders, _, _ = simulate_pl(6, 400, seed=4)
    first = plackett_luce_intervals(6, orders, n_boot=50, seed=3)
    again = plackett_luce_intervals(6, orders, n_boot=50, seed=3)
    other = plackett_luce_intervals(6, orders, n_boot=50, seed=4)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_bootstrap_width_matches_fisher_information_and_covers() -> None:
    orders, _, lists = simulate_pl(6, 6_000, seed=5, lengths=(2, 4))
    theta = plackett_luce(6, orders)
    se = fisher_standard_errors(6, lists, theta)
    low, high = plackett_luce_intervals(6, orders, n_boot=400, level=0.9, seed=1)
    ratio = (high - low) / (2 * 1.6448536269514722 * se)
    assert (ratio > 0.8).all() and (ratio < 1.2).all()
    assert ((low < theta) & (theta < high)).all()


def test_bootstrap_coverage_over_simulated_data_sets() -> None:
    """Across 40 independent data sets, the 90% intervals hold the true centred strengths about 90% of the time."""
    hits = []
    for seed in range(40):
        orders, truth, _ = simulate_pl(5, 400, seed=1000 + seed, lengths=(2, 4))
        low, high = plackett_luce_intervals(5, orders, n_boot=100, level=0.9, seed=seed)
        hits.append((low <= truth) & (truth <= high))
    coverage = float(np.mean(hits))
    assert 0.8 <= coverage <= 0.97, coverage


def test_bootstrap_sparse_data_needs_alpha() -> None:
    # Item 2 is ranked below another item only twice in 300 rankings: many replicates lose it.
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 298)
    orders = np.vstack([np.column_stack([a, 1 - a]), [[0, 2], [1, 2]], np.tile([[2, 0]], (40, 1))])
    with pytest.raises(ValueError, match=r"too sparse.*alpha > 0"):
        plackett_luce_intervals(3, orders, level=0.95)
    low, high = plackett_luce_intervals(3, orders, level=0.95, alpha=0.01, n_boot=100)
    assert np.isfinite(low).all() and (low < high).all()


def test_bootstrap_options_and_empty_regularised_data() -> None:
    with pytest.raises(ValueError, match="n_boot"):
        plackett_luce_intervals(2, [[0, 1], [1, 0]], n_boot=0)
    with pytest.raises(ValueError, match="level"):
        plackett_luce_intervals(2, [[0, 1], [1, 0]], level=1.0)
    low, high = plackett_luce_intervals(3, np.zeros((0, 2), dtype=int), alpha=1.0)
    np.testing.assert_array_equal(low, 0.0)
    np.testing.assert_array_equal(high, 0.0)


# -- malformed per-task input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tasks", "orders", "match"),
    [
        ([0, 0], [[0, 1, 1], [0, 1, 2]], "not a permutation"),
        ([0, 0], [[0, 1, 3], [0, 1, 2]], "not a permutation"),
        ([0], [0, 1, 2], "shape"),
        ([0, 0], [[0.0, 1.0], [1.0, 0.0]], "integer"),
        ([0, 5], [[0, 1], [1, 0]], "outside"),
        ([0, -1], [[0, 1], [1, 0]], "outside"),
        ([0], [[0, 1], [1, 0]], "one entry per ranking"),
        ([[0, 0]], [[0, 1], [1, 0]], "1-D"),
    ],
)
def test_per_task_statistics_reject_malformed_input(tasks: list, orders: list, match: str) -> None:
    for function in (kendalls_w, project_w, mean_ranks, consensus_orders):
        with pytest.raises(ValueError, match=match):
            function(tasks, orders, n_tasks=2)


def test_annotator_tau_rejects_malformed_input() -> None:
    orders = [[0, 1, 2], [2, 1, 0]]
    with pytest.raises(ValueError, match="annotators"):
        annotator_tau([0, 0], [0, 3], orders, n_annotators=2)
    with pytest.raises(ValueError, match="consensus"):
        annotator_tau([0, 0], [0, 1], orders, [[0, 1]], n_annotators=2)
    with pytest.raises(ValueError, match="not a permutation"):
        annotator_tau([0, 0], [0, 1], orders, [[0, 1, -1]], n_annotators=2)
    with pytest.raises(ValueError, match="tasks"):
        annotator_tau([0, 1], [0, 1], orders, [[0, 1, 2]], n_annotators=2)
    mean, count = annotator_tau(np.zeros(0, dtype=int), [], np.zeros((0, 3), dtype=int), n_annotators=2)
    assert np.isnan(mean).all() and count.tolist() == [0, 0]


# -- module hygiene -------------------------------------------------------------------------------------------------


def test_module_is_pure_numpy() -> None:
    source = inspect.getsource(ranking)
    tree = ast.parse(source)
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert {name.split(".")[0] for name in imported} <= {"__future__", "math", "typing", "numpy"}
    for name in ranking.__all__:
        assert getattr(ranking, name).__doc__, name


def _pl_log_likelihood(theta: np.ndarray, rows: list[list[int]]) -> float:
    total = 0.0
    for row in rows:
        for stage in range(len(row) - 1):
            rest = theta[row[stage:]]
            total += theta[row[stage]] - np.log(np.exp(rest).sum())
    return total


def test_the_plackett_luce_information_is_minus_the_hessian_of_the_log_likelihood() -> None:
    rng = np.random.default_rng(3)
    rows = [list(rng.permutation(5)[: rng.integers(2, 6)]) for _ in range(60)]
    orders = np.full((len(rows), 5), -1)
    for r, row in enumerate(rows):
        orders[r, : len(row)] = row
    theta = rng.normal(0, 0.5, 5)
    step = 1e-4
    hessian = np.zeros((5, 5))
    for i in range(5):
        for j in range(5):
            e_i, e_j = np.eye(5)[i] * step, np.eye(5)[j] * step
            hessian[i, j] = (
                _pl_log_likelihood(theta + e_i + e_j, rows)
                - _pl_log_likelihood(theta + e_i - e_j, rows)
                - _pl_log_likelihood(theta - e_i + e_j, rows)
                + _pl_log_likelihood(theta - e_i - e_j, rows)
            ) / (4 * step * step)
    information = ranking.plackett_luce_information(5, orders, theta)
    np.testing.assert_allclose(information, -hessian, atol=1e-4)


def test_information_intervals_agree_with_the_bootstrap_on_many_rankings() -> None:
    rng = np.random.default_rng(11)
    strength = np.array([1.0, 0.5, 0.0, -0.5, -1.0, 0.2])
    orders = np.array([np.argsort(-(strength + rng.gumbel(size=6)))[:4] for _ in range(3000)])
    theta = ranking.plackett_luce(6, orders)
    low, high = ranking.plackett_luce_information_intervals(6, orders, theta)
    boot_low, boot_high = ranking.plackett_luce_intervals(6, orders, n_boot=200, seed=0)
    assert np.all(low < theta) and np.all(theta < high)
    np.testing.assert_allclose(high - low, boot_high - boot_low, rtol=0.2)
    with pytest.raises(ValueError, match="theta"):
        ranking.plackett_luce_information_intervals(6, orders, theta[:5])

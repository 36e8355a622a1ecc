"""Bradley-Terry fits against a published table (Agresti 2002), Davidson's (1970) pudding example fitted by his own
algorithm, choix, and scipy-maximised Davidson likelihoods.

Oracles (dev-only): ``choix.ilsr_pairwise`` / ``choix.opt_pairwise`` for the plain model (``alpha`` means choix's
``opt_pairwise`` penalty ``alpha * sum(theta ** 2)``), and ``scipy.optimize.minimize`` on the Davidson (1970)
likelihood written directly from its probabilities. Bootstrap widths are checked against the asymptotic standard
errors from the Fisher information.
"""

from __future__ import annotations

import inspect
import re

import choix
import numpy as np
import pytest
from scipy.optimize import minimize

from numeric import bradley_terry as bt_module
from numeric.bradley_terry import (
    TIE_MODELS,
    BradleyTerryResult,
    bradley_terry,
    bradley_terry_intervals,
    win_matrix,
)

# Agresti, Categorical Data Analysis (2nd ed., 2002), Sec. 10.6, Table 10.10: 1987 American League East, row team's
# wins over the column team (13 games per pair). Identical to the R package BradleyTerry2's ``baseball`` data set
# (home and away wins summed).
TEAMS = ("Milwaukee", "Detroit", "Toronto", "New York", "Boston", "Cleveland", "Baltimore")
BASEBALL_WINS = np.array(
    [
        [0, 7, 9, 7, 7, 9, 11],
        [6, 0, 7, 5, 11, 9, 9],
        [4, 6, 0, 7, 7, 8, 12],
        [6, 8, 6, 0, 6, 7, 10],
        [6, 2, 6, 7, 0, 7, 12],
        [4, 4, 5, 6, 6, 0, 6],
        [2, 4, 1, 3, 1, 7, 0],
    ]
)
# Table 10.11 (2 decimals), as printed to 4 decimals by BradleyTerry2's ``BTm`` on the same data (its saved test
# output tests/baseball.Rout.save): log-strengths relative to Baltimore.
BASEBALL_THETA_VS_BALTIMORE = np.array([1.5814, 1.4364, 1.2945, 1.2476, 1.1077, 0.6839, 0.0])


def expand(wins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A win-count matrix as parallel (winners, losers) arrays."""
    i, j = np.nonzero(wins)
    counts = wins[i, j]
    return np.repeat(i, counts), np.repeat(j, counts)


def simulate(n: int, m: int, seed: int, n_ties: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``m`` decisive comparisons between random pairs from a Bradley-Terry model, plus ``n_ties`` random ties."""
    rng = np.random.default_rng(seed)
    skill = rng.normal(0.0, 1.0, n)
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    a_wins = rng.random(m) < 1.0 / (1.0 + np.exp(skill[b] - skill[a]))
    winners, losers = np.where(a_wins, a, b), np.where(a_wins, b, a)
    t = rng.integers(0, n, n_ties)
    ties = np.column_stack([t, (t + rng.integers(1, n, n_ties)) % n])
    return winners, losers, ties, skill


def choix_fit(n: int, winners: np.ndarray, losers: np.ndarray, alpha: float) -> np.ndarray:
    data = [(int(w), int(lo)) for w, lo in zip(winners, losers, strict=True)]
    params = choix.opt_pairwise(n, data, alpha=alpha, tol=1e-12)
    return params - params.mean()


def choix_ilsr(n: int, winners: np.ndarray, losers: np.ndarray) -> np.ndarray:
    data = [(int(w), int(lo)) for w, lo in zip(winners, losers, strict=True)]
    params = choix.ilsr_pairwise(n, data, alpha=0.0, max_iter=1000, tol=1e-13)
    return params - params.mean()


# -- published example --------------------------------------------------------------------------------------------


def test_agresti_baseball_published_estimates() -> None:
    """Agresti (2002) Table 10.11: Bradley-Terry fit to the 1987 AL East (Milwaukee 1.58 ... Cleveland 0.68)."""
    winners, losers = expand(BASEBALL_WINS)
    assert winners.size == 21 * 13
    result = bradley_terry(len(TEAMS), winners, losers)
    assert result.converged
    relative = result.theta - result.theta[TEAMS.index("Baltimore")]
    np.testing.assert_allclose(relative, BASEBALL_THETA_VS_BALTIMORE, atol=5e-5 + 1e-9)
    np.testing.assert_array_equal(np.round(relative[:-1], 2), [1.58, 1.44, 1.29, 1.25, 1.11, 0.68])
    # Cross-check with both choix algorithms.
    np.testing.assert_allclose(result.theta, choix_ilsr(7, winners, losers), atol=1e-8)
    np.testing.assert_allclose(result.theta, choix_fit(7, winners, losers, 0.0), atol=1e-6)


def test_baseball_win_matrix_round_trips() -> None:
    winners, losers = expand(BASEBALL_WINS)
    np.testing.assert_array_equal(win_matrix(7, winners, losers), BASEBALL_WINS)


# -- choix oracle ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_matches_choix_ilsr_unregularised(seed: int) -> None:
    winners, losers, _, _ = simulate(n=10, m=400, seed=seed)
    result = bradley_terry(10, winners, losers)
    assert result.converged and result.nu is None
    np.testing.assert_allclose(result.theta, choix_ilsr(10, winners, losers), atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("alpha", [0.01, 0.5, 5.0])
def test_matches_choix_opt_pairwise_regularised(seed: int, alpha: float) -> None:
    winners, losers, _, _ = simulate(n=8, m=150, seed=seed)
    result = bradley_terry(8, winners, losers, alpha=alpha)
    assert result.converged
    np.testing.assert_allclose(result.theta, choix_fit(8, winners, losers, alpha), atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_half_ties_match_choix_on_doubled_data(seed: int, alpha: float) -> None:
    """A tie is half a win each way. choix takes whole wins only, so double everything: every decisive comparison
    twice and every tie as one win each way gives exactly twice the win matrix, hence twice the log-likelihood;
    with the penalty doubled too (``2 alpha``) the penalised optimum is unchanged."""
    n = 7
    winners, losers, ties, _ = simulate(n=n, m=120, seed=seed, n_ties=40)
    doubled_winners = np.concatenate([winners, winners, ties[:, 0], ties[:, 1]])
    doubled_losers = np.concatenate([losers, losers, ties[:, 1], ties[:, 0]])
    # The algebra: the doubled data's win matrix is exactly twice the half-tie win matrix.
    np.testing.assert_array_equal(
        win_matrix(n, doubled_winners, doubled_losers), 2.0 * win_matrix(n, winners, losers, ties=ties)
    )
    result = bradley_terry(n, winners, losers, ties=ties, tie_model="half", alpha=alpha)
    assert result.converged
    expected = choix_fit(n, doubled_winners, doubled_losers, 2.0 * alpha)
    np.testing.assert_allclose(result.theta, expected, atol=1e-6)
    if alpha == 0.0:
        np.testing.assert_allclose(result.theta, choix_ilsr(n, doubled_winners, doubled_losers), atol=1e-6)


def test_ties_can_connect_the_graph() -> None:
    """0 > 1 and 1 > 2 alone leave 0 unbeaten; a tie between 2 and 0 closes the cycle (edges both ways)."""
    with pytest.raises(ValueError, match="item 0 never loses"):
        bradley_terry(3, [0, 1], [1, 2])
    result = bradley_terry(3, [0, 1], [1, 2], ties=[[2, 0]])
    expected = choix_ilsr(3, np.array([0, 0, 1, 1, 2, 0]), np.array([1, 1, 2, 2, 0, 2]))
    np.testing.assert_allclose(result.theta, expected, atol=1e-6)


# -- Davidson -------------------------------------------------------------------------------------------------------


def davidson_nll(theta: np.ndarray, nu: float, winners, losers, ties, alpha: float) -> float:
    """The Davidson (1970) negative log-likelihood written straight from its probabilities, plus the L2 penalty."""
    pi = np.exp(theta)
    w, lo = np.asarray(winners), np.asarray(losers)
    ti, tj = ties[:, 0], ties[:, 1]
    decisive = np.log(pi[w] / (pi[w] + pi[lo] + nu * np.sqrt(pi[w] * pi[lo])))
    tied = np.log(nu * np.sqrt(pi[ti] * pi[tj]) / (pi[ti] + pi[tj] + nu * np.sqrt(pi[ti] * pi[tj])))
    return float(-decisive.sum() - tied.sum() + alpha * (theta**2).sum())


def davidson_oracle(n: int, winners, losers, ties, alpha: float) -> tuple[np.ndarray, float]:
    """Maximise the Davidson likelihood with scipy: free ``theta`` (pinned to sum 0 when ``alpha = 0``), ``log nu``."""

    def unpack(x: np.ndarray) -> tuple[np.ndarray, float]:
        theta = x[:n] if alpha > 0 else np.append(x[: n - 1], -x[: n - 1].sum())
        return theta, float(np.exp(x[-1]))

    def objective(x: np.ndarray) -> float:
        theta, nu = unpack(x)
        return davidson_nll(theta, nu, winners, losers, ties, alpha)

    size = n if alpha > 0 else n - 1
    x = np.zeros(size + 1)
    for method in ("Nelder-Mead", "BFGS"):
        options = {"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000} if method == "Nelder-Mead" else {"gtol": 1e-9}
        x = minimize(objective, x, method=method, jac=None if method == "Nelder-Mead" else "3-point", options=options).x
    theta, nu = unpack(x)
    return theta - theta.mean(), nu


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("alpha", [0.0, 0.2])
def test_davidson_matches_scipy_maximisation(seed: int, alpha: float) -> None:
    n = 5
    winners, losers, ties, _ = simulate(n=n, m=60, seed=seed, n_ties=25)
    result = bradley_terry(n, winners, losers, ties=ties, tie_model="davidson", alpha=alpha)
    assert result.converged and result.nu is not None and result.nu > 0
    theta, nu = davidson_oracle(n, winners, losers, ties, alpha)
    np.testing.assert_allclose(result.theta, theta, atol=1e-5)
    assert result.nu == pytest.approx(nu, abs=1e-5)
    # Ours is the maximum: no better than the oracle's optimum by more than rounding, and never worse.
    ours = davidson_nll(result.theta, result.nu, winners, losers, ties, alpha)
    assert ours <= davidson_nll(theta, nu, winners, losers, ties, alpha) + 1e-9


# Davidson (1970), JASA 65, 317-328: paired comparisons of six brands of chocolate pudding with "no preference"
# allowed. Rows: brands i, j (1-based), comparisons r_ij, preferences for i, for j, ties. (The data set is also
# the R package PlackettLuce's ``pudding``.)
PUDDING = np.array(
    [
        [1, 2, 57, 19, 22, 16], [1, 3, 47, 16, 19, 12], [2, 3, 48, 19, 19, 10], [1, 4, 54, 18, 23, 13],
        [2, 4, 51, 23, 19, 9], [3, 4, 54, 19, 20, 15], [1, 5, 50, 13, 19, 18], [2, 5, 48, 16, 20, 12],
        [3, 5, 48, 16, 15, 17], [4, 5, 47, 17, 14, 16], [1, 6, 51, 18, 21, 12], [2, 6, 54, 22, 20, 12],
        [3, 6, 41, 13, 18, 10], [4, 6, 51, 14, 19, 18], [5, 6, 44, 11, 21, 12],
    ]
)  # fmt: skip


def davidson_1970_iteration(table: np.ndarray, max_iter: int = 10_000) -> tuple[np.ndarray, float]:
    """Davidson's (1970) own fixed-point iteration for his maximum-likelihood equations (Sec. 3 of the paper):
    ``pi_k = s_k / sum_pairs r (2 + nu sqrt(pi_other / pi_k)) / (pi_i + pi_j + nu sqrt(pi_i pi_j))`` with
    ``s_k`` twice the wins plus the ties of ``k``, then ``nu = T / sum_pairs r sqrt(pi_i pi_j) / (...)``; the
    strengths normalised to sum 1. An algorithm independent of ours (Newton on the log-strengths)."""
    i, j = table[:, 0] - 1, table[:, 1] - 1
    r, w_ij, w_ji, t_ij = (table[:, c].astype(float) for c in range(2, 6))
    n = int(max(i.max(), j.max())) + 1
    ties = t_ij.sum()
    nu = 2 * ties / ((w_ij + w_ji + t_ij).sum() - ties)
    score = np.bincount(i, 2 * w_ij + t_ij, n) + np.bincount(j, 2 * w_ji + t_ij, n)
    pi = np.full(n, 1 / n)
    for _ in range(max_iter):
        root = np.sqrt(pi[i] * pi[j])
        denominator = pi[i] + pi[j] + nu * root
        towards_i = r * (2 + nu * np.sqrt(pi[j] / pi[i])) / denominator
        towards_j = r * (2 + nu * np.sqrt(pi[i] / pi[j])) / denominator
        new = score / (np.bincount(i, towards_i, n) + np.bincount(j, towards_j, n))
        new /= new.sum()
        root = np.sqrt(new[i] * new[j])
        nu = ties / (r * root / (new[i] + new[j] + nu * root)).sum()
        if np.abs(np.log(new) - np.log(pi)).max() < 1e-14:
            break
        pi = new
    return np.log(new) - np.log(new).mean(), float(nu)


def test_davidson_pudding_example_matches_davidsons_own_algorithm() -> None:
    i, j, _, w_ij, w_ji, t_ij = PUDDING.T
    winners = np.concatenate([np.repeat(i, w_ij), np.repeat(j, w_ji)]) - 1
    losers = np.concatenate([np.repeat(j, w_ij), np.repeat(i, w_ji)]) - 1
    ties = np.column_stack([np.repeat(i, t_ij), np.repeat(j, t_ij)]) - 1
    assert winners.size + len(ties) == PUDDING[:, 2].sum() == 745
    result = bradley_terry(6, winners, losers, ties=ties, tie_model="davidson")
    theta, nu = davidson_1970_iteration(PUDDING)
    assert result.converged
    np.testing.assert_allclose(result.theta, theta, atol=1e-8)
    assert result.nu == pytest.approx(nu, rel=1e-8)
    # Brand 6 is preferred most and brand 1 least; ties are common (nu near 0.7: about a quarter of comparisons).
    assert np.argmax(result.theta) == 5 and np.argmin(result.theta) == 0
    assert 0.6 < result.nu < 0.8


def test_davidson_without_ties_is_plain_bradley_terry_with_nu_zero() -> None:
    winners, losers, _, _ = simulate(n=6, m=200, seed=11)
    davidson = bradley_terry(6, winners, losers, tie_model="davidson")
    assert davidson.nu == 0.0 and davidson.converged
    np.testing.assert_allclose(davidson.theta, choix_ilsr(6, winners, losers), atol=1e-6)


def test_davidson_nu_tracks_tie_rate() -> None:
    """Equal strengths: P(tie) = nu / (2 + nu), so 1 tie in 3 comparisons per pair gives nu = 1 exactly."""
    pairs = np.array([[0, 1], [0, 2], [1, 2]])
    winners = np.concatenate([pairs[:, 0], pairs[:, 1]])
    losers = np.concatenate([pairs[:, 1], pairs[:, 0]])
    result = bradley_terry(3, winners, losers, ties=pairs, tie_model="davidson")
    np.testing.assert_allclose(result.theta, 0.0, atol=1e-12)
    assert result.nu == pytest.approx(1.0, abs=1e-10)


def test_davidson_only_ties_has_no_estimate() -> None:
    for alpha in (0.0, 1.0):
        with pytest.raises(ValueError, match="every comparison is a tie"):
            bradley_terry(2, [], [], ties=[[0, 1], [1, 0]], tie_model="davidson", alpha=alpha)


# -- conventions and edge cases -------------------------------------------------------------------------------------


@pytest.mark.parametrize("tie_model", TIE_MODELS)
@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_centred_and_order_invariant(tie_model: str, alpha: float) -> None:
    winners, losers, ties, _ = simulate(n=9, m=300, seed=5, n_ties=60)
    result = bradley_terry(9, winners, losers, ties=ties, tie_model=tie_model, alpha=alpha)
    assert abs(result.theta.mean()) < 1e-12
    rng = np.random.default_rng(0)
    order, tie_order = rng.permutation(winners.size), rng.permutation(ties.shape[0])
    shuffled = bradley_terry(
        9, winners[order], losers[order], ties=ties[tie_order, ::-1], tie_model=tie_model, alpha=alpha
    )
    np.testing.assert_allclose(shuffled.theta, result.theta, atol=1e-10)
    if tie_model == "davidson":
        assert shuffled.nu == pytest.approx(result.nu, abs=1e-10)


def test_recovers_simulated_strengths() -> None:
    winners, losers, _, skill = simulate(n=6, m=60_000, seed=3)
    result = bradley_terry(6, winners, losers)
    np.testing.assert_allclose(result.theta, skill - skill.mean(), atol=0.05)


@pytest.mark.parametrize(
    ("n", "winners", "losers", "ties", "reason"),
    [
        (4, [0, 1, 2, 3, 3, 3], [1, 2, 0, 0, 1, 2], None, "item 3 never loses"),
        (3, [0, 1, 0, 1], [1, 0, 2, 2], None, "item 2 never wins"),
        (4, [0, 1, 2, 3], [1, 0, 3, 2], None, "items 0 and 2 are not linked"),
        (4, [0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2], None, "item 3 appears in no comparison"),
        (3, [], [], None, "there are no comparisons"),
        (4, [0], [1], [[0, 1], [2, 3]], "items 0 and 2 are not linked"),
    ],
    ids=["never-loses", "never-wins", "two-components", "unused-item", "empty", "tie-components"],
)
@pytest.mark.parametrize("tie_model", TIE_MODELS)
def test_disconnected_graph_raises_without_alpha(n, winners, losers, ties, reason, tie_model) -> None:
    message = rf"no finite maximum-likelihood estimate: .*not strongly connected \({reason}.*\); pass alpha > 0"
    with pytest.raises(ValueError, match=message):
        bradley_terry(n, winners, losers, ties=ties, tie_model=tie_model)
    with pytest.raises(ValueError, match="pass alpha > 0"):
        bradley_terry_intervals(n, winners, losers, ties=ties, tie_model=tie_model, n_boot=5)


def test_regularised_fit_on_disconnected_data_matches_choix() -> None:
    """Item 3 never loses, item 4 is never compared: alpha > 0 still gives a finite, centred estimate, equal to
    choix's, with the unused item at exactly 0 (the penalty's minimum; the MAP estimate already has mean 0)."""
    winners = np.array([0, 1, 2, 3, 3, 0, 1])
    losers = np.array([1, 2, 0, 0, 1, 2, 0])
    result = bradley_terry(5, winners, losers, alpha=0.1)
    assert result.converged and np.isfinite(result.theta).all()
    np.testing.assert_allclose(result.theta, choix_fit(5, winners, losers, 0.1), atol=1e-6)
    assert abs(result.theta[4]) < 1e-12
    assert result.theta[3] == result.theta.max()


def test_empty_input() -> None:
    with pytest.raises(ValueError, match="not strongly connected"):
        bradley_terry(3, [], [])
    result = bradley_terry(3, [], [], alpha=1.0)
    np.testing.assert_array_equal(result.theta, np.zeros(3))
    assert result.converged and result.n_iter == 0
    davidson = bradley_terry(3, [], [], tie_model="davidson", alpha=1.0)
    assert davidson.nu == 0.0
    low, high = bradley_terry_intervals(3, [], [], alpha=1.0)
    np.testing.assert_array_equal(low, np.zeros(3))
    np.testing.assert_array_equal(high, np.zeros(3))


def test_result_is_frozen_and_read_only() -> None:
    result = bradley_terry(2, [0, 1], [1, 0])
    assert isinstance(result, BradleyTerryResult)
    np.testing.assert_allclose(result.theta, [0.0, 0.0], atol=1e-15)
    with pytest.raises(AttributeError):
        result.nu = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        result.theta[0] = 1.0


def test_max_iter_reports_non_convergence() -> None:
    winners, losers = expand(BASEBALL_WINS)
    capped = bradley_terry(7, winners, losers, max_iter=1)
    assert capped.n_iter == 1 and not capped.converged
    full = bradley_terry(7, winners, losers)
    assert full.converged and 1 < full.n_iter < 50


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"winners": [0, 3], "losers": [1, 0]}, "outside"),
        ({"winners": [0, 1], "losers": [1, 1]}, "beating itself"),
        ({"winners": [0, 1], "losers": [1]}, "same length"),
        ({"winners": [0.0, 1.0], "losers": [1, 0]}, "integer"),
        ({"winners": [0, 1], "losers": [1, 0], "ties": [[1, 1]]}, "with itself"),
        ({"winners": [0, 1], "losers": [1, 0], "ties": [0, 1]}, r"\(m, 2\)"),
        ({"winners": [0, 1], "losers": [1, 0], "tie_model": "rao-kupper"}, "Unknown tie_model"),
        ({"winners": [0, 1], "losers": [1, 0], "alpha": -1.0}, "alpha"),
        ({"winners": [0, 1], "losers": [1, 0], "max_iter": 0}, "max_iter"),
        ({"winners": [0, 1], "losers": [1, 0], "tol": 0.0}, "tol"),
    ],
)
def test_invalid_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        bradley_terry(3, **kwargs)


def test_invalid_n_items() -> None:
    with pytest.raises(ValueError, match="n_items"):
        bradley_terry(0, [], [], alpha=1.0)


# -- win matrix -----------------------------------------------------------------------------------------------------


def test_win_matrix_counts_ties_half_each_way() -> None:
    w = win_matrix(3, [0, 0, 2, 1], [1, 1, 0, 2], ties=[[0, 1], [2, 1], [1, 2]])
    expected = np.array(
        [
            [0.0, 2.5, 0.0],
            [0.5, 0.0, 2.0],
            [1.0, 1.0, 0.0],
        ]
    )
    np.testing.assert_array_equal(w, expected)
    assert w.dtype == np.float64
    np.testing.assert_array_equal(win_matrix(2, [], []), np.zeros((2, 2)))


# -- bootstrap ------------------------------------------------------------------------------------------------------


def fisher_standard_errors(n: int, winners: np.ndarray, losers: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Asymptotic standard errors of the centred MLE: sqrt(diag(pinv(I))), I the Fisher information."""
    totals = win_matrix(n, winners, losers)
    totals = totals + totals.T
    p = 1.0 / (1.0 + np.exp(theta[np.newaxis, :] - theta[:, np.newaxis]))
    weights = totals * p * (1.0 - p)
    information = np.diag(weights.sum(axis=1)) - weights
    return np.sqrt(np.diag(np.linalg.pinv(information)))


def test_bootstrap_reproducible_and_seed_dependent() -> None:
    winners, losers, ties, _ = simulate(n=6, m=300, seed=1, n_ties=50)
    first = bradley_terry_intervals(6, winners, losers, ties=ties, n_boot=50, seed=7)
    again = bradley_terry_intervals(6, winners, losers, ties=ties, n_boot=50, seed=7)
    other = bradley_terry_intervals(6, winners, losers, ties=ties, n_boot=50, seed=8)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize("tie_model", TIE_MODELS)
def test_bootstrap_contains_estimate_and_narrows_with_more_data(tie_model: str) -> None:
    winners, losers, ties, _ = simulate(n=5, m=4000, seed=2, n_ties=800)
    widths = []
    for m in (1000, 4000):
        k = m // 5
        args = (5, winners[:m], losers[:m])
        estimate = bradley_terry(*args, ties=ties[:k], tie_model=tie_model).theta
        low, high = bradley_terry_intervals(*args, ties=ties[:k], tie_model=tie_model, n_boot=300, seed=0)
        assert (low < estimate).all() and (estimate < high).all()
        widths.append(high - low)
    # Four times the data halves the standard error: width ratio about 0.5.
    assert 0.4 < float(np.mean(widths[1] / widths[0])) < 0.6


def test_bootstrap_width_matches_fisher_information() -> None:
    """With plenty of data the percentile interval approaches theta +- z * se from the Fisher information."""
    n = 5
    winners, losers, _, _ = simulate(n=n, m=20_000, seed=4)
    theta = bradley_terry(n, winners, losers).theta
    se = fisher_standard_errors(n, winners, losers, theta)
    low, high = bradley_terry_intervals(n, winners, losers, n_boot=400, level=0.9, seed=1)
    ratio = (high - low) / (2 * 1.6448536269514722 * se)
    assert (ratio > 0.8).all() and (ratio < 1.2).all()
    np.testing.assert_allclose((low + high) / 2, theta, atol=0.5 * se.max())


def test_bootstrap_resamples_ties_with_wins_as_one_pool() -> None:
    """Two items: 300 wins of 0, 100 of 1, 4000 ties. Under "half" the centred estimate has the closed form
    theta_0 = log((A + T / 2) / (B + T / 2)) / 2, so the bootstrap distribution is simulated here directly from
    multinomial draws of (A, B, T) over one pool. Resampling the ties separately (T held at 4000) would give an
    interval about 13% narrower; ours must match the pooled one."""
    a, b, t = 300, 100, 4000
    rng = np.random.default_rng(123)

    def centred(wins_0: np.ndarray, wins_1: np.ndarray, ties: np.ndarray) -> np.ndarray:
        return 0.5 * np.log((wins_0 + ties / 2) / (wins_1 + ties / 2))

    pooled = rng.multinomial(a + b + t, np.array([a, b, t]) / (a + b + t), size=400_000)
    pooled_width = np.diff(np.quantile(centred(pooled[:, 0], pooled[:, 1], pooled[:, 2]), [0.025, 0.975]))[0]
    apart = rng.multinomial(a + b, np.array([a, b]) / (a + b), size=400_000)
    apart_width = np.diff(np.quantile(centred(apart[:, 0], apart[:, 1], np.full(400_000, t)), [0.025, 0.975]))[0]
    assert apart_width < 0.92 * pooled_width

    winners = np.repeat([0, 1], [a, b])
    ties = np.tile([[0, 1]], (t, 1))
    low, high = bradley_terry_intervals(2, winners, 1 - winners, ties=ties, n_boot=4000, seed=0)
    np.testing.assert_allclose(low, -high[::-1], atol=1e-12)
    assert 0.95 < (high[0] - low[0]) / pooled_width < 1.05
    assert low[0] < centred(np.array(a), np.array(b), np.array(t)) < high[0]


def sparse_loser_data() -> tuple[np.ndarray, np.ndarray]:
    """300 comparisons among 3 items; item 2 loses exactly twice, so a resample misses both losses with
    probability (1 - 2/300)^300 ~ e^-2 ~ 13.5%: about 31 redraws per 200 kept replicates."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 200)
    strong = np.full(96, 2)
    winners = np.concatenate([a, strong, [0, 1]])
    losers = np.concatenate([1 - a, rng.integers(0, 2, 96), [2, 2]])
    return winners, losers


def test_bootstrap_redraws_unidentified_replicates_within_one_tail() -> None:
    winners, losers = sparse_loser_data()
    assert bradley_terry(3, winners, losers).converged
    # 95%: at most floor(0.025 * 200 / 0.975) = 5 redraws are tolerated, ~31 are needed.
    with pytest.raises(ValueError, match=r"too sparse.*pass alpha > 0"):
        bradley_terry_intervals(3, winners, losers, level=0.95)
    # 50%: up to floor(0.25 * 200 / 0.75) = 66 redraws, so the conditional bootstrap goes through.
    low, high = bradley_terry_intervals(3, winners, losers, level=0.5)
    assert np.isfinite(low).all() and np.isfinite(high).all()
    # With regularisation no replicate lacks an estimate: no redraws, no error.
    low, high = bradley_terry_intervals(3, winners, losers, level=0.95, alpha=0.01)
    assert np.isfinite(high).all() and (low < high).all()


def test_bootstrap_regularised_on_disconnected_data() -> None:
    low, high = bradley_terry_intervals(4, [0, 1, 2, 0], [1, 0, 0, 2], alpha=0.5, n_boot=100)
    assert np.isfinite(low).all() and (low <= high).all()
    # Item 3 is never compared: 0 in every replicate (the MAP estimate already has mean 0).
    assert abs(low[3]) < 1e-12 and abs(high[3]) < 1e-12


@pytest.mark.parametrize(("kwargs", "match"), [({"n_boot": 0}, "n_boot"), ({"level": 1.0}, "level")])
def test_bootstrap_invalid_options(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        bradley_terry_intervals(2, [0, 1], [1, 0], **kwargs)


def test_bootstrap_on_a_large_arena_gives_proper_intervals() -> None:
    # Its speed is measured by bench/quality.py, not here.
    winners, losers, _, _ = simulate(n=20, m=100_000, seed=0)
    low, high = bradley_terry_intervals(20, winners, losers, n_boot=200)
    assert (low < high).all()


def test_module_is_pure_numpy() -> None:
    source = inspect.getsource(bt_module)
    imports = re.findall(r"^\s*(?:import|from)\s+(\S+)", source, flags=re.MULTILINE)
    assert "import django" not in source
    assert {name.split(".")[0] for name in imports} <= {
        "__future__",
        "math",
        "collections",
        "dataclasses",
        "typing",
        "numpy",
    }

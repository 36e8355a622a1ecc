"""Bradley-Terry strengths from pairwise comparisons, with ties (half wins or Davidson) and bootstrap intervals.

Conventions shared by every function here:

- Items are ``0 .. n_items - 1`` (e.g. the models that wrote the responses being compared).
- Decisive comparisons are two parallel int arrays: ``winners[c]`` beat ``losers[c]``.
- Ties are an optional ``(m, 2)`` int array; row ``(i, j)`` is one tie between ``i`` and ``j`` (order irrelevant).
- An item compared with itself (``winners[c] == losers[c]`` or a tie ``(i, i)``) is a ``ValueError``.
- Strengths are log-strengths ``theta`` (natural log), centred to mean 0:
  ``P(i beats j) = 1 / (1 + exp(theta_j - theta_i))`` under the plain Bradley-Terry model.

Tie models:

- ``"half"``: a tie counts as half a win for each side, i.e. 0.5 is added to both directed counts (the Chatbot Arena
  / choix treatment). The likelihood is ``sum_ij W_ij log sigma(theta_i - theta_j)`` with ``W`` from
  :func:`win_matrix`, so one tie weighs exactly as much as half a win plus half a loss.
- ``"davidson"``: Davidson (1970), ``P(i > j) = pi_i / (pi_i + pi_j + nu sqrt(pi_i pi_j))`` and
  ``P(tie) = nu sqrt(pi_i pi_j) / (pi_i + pi_j + nu sqrt(pi_i pi_j))`` with ``pi = exp(theta)``; the tie parameter
  ``nu >= 0`` is estimated jointly with ``theta``.

Regularisation ``alpha >= 0`` is defined exactly as ``alpha`` in ``choix.opt_pairwise``: the fit minimises the
negative log-likelihood plus ``alpha * sum(theta ** 2)`` (a MAP estimate under an isotropic Gaussian prior on
``theta``; ``nu`` is not penalised). Note that ``choix.ilsr_pairwise`` uses a *different* regularisation for the same
name (``alpha`` added to every rate of its Markov chain); the two agree only at ``alpha = 0``. The penalised
optimum already has mean 0 (the likelihood is shift-invariant), and an item without comparisons gets ``theta = 0``.

Fitting is damped Newton on the log-parameters (``theta``, and ``log nu`` for Davidson) with a dense ``n x n``
Hessian and an Armijo backtracking line search: the negative log-likelihood is convex in these coordinates for both
tie models, so the iteration converges globally, quadratically near the optimum. Each iteration costs ``O(n^3)``,
which is fine for the intended scale (up to a few thousand items). With ``alpha = 0`` the shift direction (all
``theta`` moved together) is fixed by a rank-one term added to the Hessian, which leaves every step centred.

Identifiability: with ``alpha = 0`` a finite maximum-likelihood estimate exists only if the directed comparison
graph (an edge loser -> winner for each decisive comparison, edges both ways for each tie) is strongly connected;
otherwise (an item that never loses or never wins, separate groups of items, an item in no comparison, no data at
all) :func:`bradley_terry` raises ``ValueError`` and suggests ``alpha > 0``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._keys import group_keys

__all__ = [
    "TIE_MODELS",
    "BradleyTerryResult",
    "bradley_terry",
    "bradley_terry_intervals",
    "win_matrix",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

TIE_MODELS: Final = ("half", "davidson")

# Armijo sufficient-decrease constant, and the most step halvings tried before a step is taken as it stands.
_ARMIJO: Final = 1e-4
_MAX_HALVINGS: Final = 60
# Stopping tolerance on the Newton step for bootstrap replicates (far below any interval's resolution).
_BOOT_TOL: Final = 1e-8

# An objective takes the stacked parameters (B, p) and the batch rows they belong to and returns the value (B,),
# or the value, gradient (B, p) and Hessian (B, p, p) when asked for derivatives.
_Objective = Callable[[FloatArray, IntArray, bool], tuple[FloatArray, FloatArray | None, FloatArray | None]]


@dataclass(frozen=True, eq=False)
class BradleyTerryResult:
    """What :func:`bradley_terry` estimated.

    Attributes:
        theta: ``(n_items,)`` float64 log-strengths, centred to mean 0 (read-only). ``theta_i - theta_j`` is the
            log-odds that ``i`` beats ``j`` under ``"half"``; under ``"davidson"`` it is the log of
            ``P(i > j) / P(j > i)``.
        nu: Davidson's tie parameter (``>= 0``; exactly 0.0 when there are no ties), or ``None`` under ``"half"``.
        n_iter: Newton iterations run (0 when there was nothing to fit: no comparisons and ``alpha > 0``).
        converged: whether the largest Newton step fell to ``tol`` within ``max_iter`` iterations. When it is
            false the last iterate is returned, not an error.
    """

    theta: FloatArray
    nu: float | None
    n_iter: int
    converged: bool


# -- input handling ---------------------------------------------------------------------------------------------------


def _index_array(values: ArrayLike, name: str, n_items: int) -> IntArray:
    """``values`` as a 1-d int64 array of items in ``[0, n_items)``; empty input of any dtype is accepted."""
    array = np.asarray(values)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array of item indices, got shape {array.shape}.")
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer item indices, got dtype {array.dtype}.")
    if array.min() < 0 or array.max() >= n_items:
        raise ValueError(f"{name} holds an item outside 0..{n_items - 1}.")
    return array.astype(np.int64, copy=False)


def _tie_array(ties: ArrayLike | None, n_items: int) -> IntArray:
    """``ties`` as an ``(m, 2)`` int64 array (``m = 0`` for ``None`` or empty input)."""
    if ties is None:
        return np.zeros((0, 2), dtype=np.int64)
    array = np.asarray(ties)
    if array.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"ties must be an (m, 2) array of item pairs, got shape {array.shape}.")
    flat = _index_array(array.reshape(-1), "ties", n_items)
    return flat.reshape(-1, 2)


def _comparisons(
    n_items: int, winners: ArrayLike, losers: ArrayLike, ties: ArrayLike | None
) -> tuple[IntArray, IntArray, IntArray]:
    """Validated ``(winners, losers, ties)``."""
    if isinstance(n_items, bool) or not isinstance(n_items, int | np.integer) or n_items < 1:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}.")
    n = int(n_items)
    won = _index_array(winners, "winners", n)
    lost = _index_array(losers, "losers", n)
    if won.shape != lost.shape:
        raise ValueError(f"winners and losers must have the same length, got {won.size} and {lost.size}.")
    tied = _tie_array(ties, n)
    if (won == lost).any():
        raise ValueError(f"Comparison {int(np.flatnonzero(won == lost)[0])} has an item beating itself.")
    if (tied[:, 0] == tied[:, 1]).any():
        raise ValueError(f"Tie {int(np.flatnonzero(tied[:, 0] == tied[:, 1])[0])} pairs an item with itself.")
    return won, lost, tied


def _check_options(tie_model: str, alpha: float) -> float:
    if tie_model not in TIE_MODELS:
        raise ValueError(f"Unknown tie_model {tie_model!r}; expected one of {TIE_MODELS}.")
    alpha = float(alpha)
    if not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}.")
    return alpha


def _decisive_matrix(n: int, won: IntArray, lost: IntArray) -> FloatArray:
    """``D[i, j]`` = decisive wins of ``i`` over ``j``."""
    return np.bincount(won * n + lost, minlength=n * n).reshape(n, n).astype(np.float64)


def _tie_matrix(n: int, tied: IntArray) -> FloatArray:
    """Symmetric ``T[i, j] = T[j, i]`` = ties between ``i`` and ``j`` (each tie counted once in each cell)."""
    counts = np.bincount(tied[:, 0] * n + tied[:, 1], minlength=n * n).reshape(n, n).astype(np.float64)
    return counts + counts.T


def win_matrix(n_items: int, winners: ArrayLike, losers: ArrayLike, *, ties: ArrayLike | None = None) -> FloatArray:
    """``(n_items, n_items)`` float64 matrix ``W[i, j]`` = wins of ``i`` over ``j``, a tie counting 0.5 each way.

    ``W + W.T`` is the number of comparisons (decisive or tied) of each pair; the diagonal is 0. Empty input gives
    the zero matrix. Raises ``ValueError`` for indices outside ``0..n_items-1``, unequal ``winners`` / ``losers``
    lengths, or an item compared with itself.
    """
    won, lost, tied = _comparisons(n_items, winners, losers, ties)
    n = int(n_items)
    return _decisive_matrix(n, won, lost) + 0.5 * _tie_matrix(n, tied)


# -- identifiability --------------------------------------------------------------------------------------------------


def _reach_from_first(adjacency: BoolArray) -> BoolArray:
    """``(B, n)``: which items each of the ``B`` graphs reaches from item 0 (frontier expansion, <= n rounds)."""
    batch, n, _ = adjacency.shape
    edges = adjacency.astype(np.float64)
    reached = np.zeros((batch, n), dtype=bool)
    reached[:, 0] = True
    for _ in range(n):
        grown = reached | (np.matmul(reached[:, np.newaxis, :].astype(np.float64), edges)[:, 0, :] > 0)
        if (grown == reached).all():
            break
        reached = grown
    return reached


def _strongly_connected(adjacency: BoolArray) -> BoolArray:
    """``(B,)``: whether each ``(n, n)`` adjacency matrix (``a[u, v]`` = edge ``u -> v``) is strongly connected."""
    forward = _reach_from_first(adjacency)
    backward = _reach_from_first(adjacency.transpose(0, 2, 1))
    return forward.all(axis=1) & backward.all(axis=1)


def _adjacency(decisive: FloatArray, ties: FloatArray) -> BoolArray:
    """Edge loser -> winner for every decisive win, both ways for every tie (works on ``(..., n, n)`` stacks)."""
    return (np.swapaxes(decisive, -1, -2) + ties) > 0


def _identification_problem(decisive: FloatArray, ties: FloatArray) -> str | None:
    """Why the ``alpha = 0`` MLE does not exist (a short reason naming an item), or ``None`` when it does."""
    adjacency = _adjacency(decisive, ties)
    if _strongly_connected(adjacency[np.newaxis])[0]:
        return None
    compared = (decisive + decisive.T + ties).sum(axis=1) > 0
    if not compared.any():
        return "there are no comparisons"
    if not compared.all():
        return f"item {int(np.flatnonzero(~compared)[0])} appears in no comparison"
    never_loses = ~adjacency.any(axis=1)
    if never_loses.any():
        return f"item {int(np.flatnonzero(never_loses)[0])} never loses"
    never_wins = ~adjacency.any(axis=0)
    if never_wins.any():
        return f"item {int(np.flatnonzero(never_wins)[0])} never wins"
    forward = _reach_from_first(adjacency[np.newaxis])[0]
    backward = _reach_from_first(adjacency.T[np.newaxis])[0]
    other = int(np.flatnonzero(~(forward & backward))[0])
    return f"items 0 and {other} are not linked by chains of wins in both directions"


def _not_identified_error(reason: str) -> ValueError:
    return ValueError(
        f"no finite maximum-likelihood estimate: the comparison graph is not strongly connected ({reason}); "
        "pass alpha > 0 to regularise"
    )


# -- objectives -------------------------------------------------------------------------------------------------------


def _laplacian(weights: FloatArray) -> FloatArray:
    """``(B, n, n)`` graph Laplacian of symmetric weights (diagonal ignored)."""
    n = weights.shape[-1]
    off = weights * (1.0 - np.eye(n))
    return np.eye(n) * off.sum(axis=-1)[..., np.newaxis] - off


def _half_objective(wins: FloatArray, alpha: float) -> _Objective:
    """Negative penalised log-likelihood of the plain Bradley-Terry model over win matrices ``wins`` (B, n, n)."""
    totals = wins + wins.transpose(0, 2, 1)

    def objective(
        theta: FloatArray, rows: IntArray, derivs: bool
    ) -> tuple[FloatArray, FloatArray | None, FloatArray | None]:
        w, t = wins[rows], totals[rows]
        diff = theta[:, :, np.newaxis] - theta[:, np.newaxis, :]
        # -log sigma(d) = log(1 + exp(-d)), computed without overflow.
        neg_log_p = np.logaddexp(0.0, -diff)
        value = (w * neg_log_p).sum(axis=(1, 2)) + alpha * (theta**2).sum(axis=1)
        if not derivs:
            return value, None, None
        p = np.exp(-neg_log_p)
        grad = -(w - t * p).sum(axis=2) + 2.0 * alpha * theta
        pq = np.exp(-neg_log_p - np.logaddexp(0.0, diff))  # p (1 - p)
        hess = _laplacian(t * pq) + 2.0 * alpha * np.eye(theta.shape[1])
        return value, grad, hess

    return objective


def _davidson_objective(decisive: FloatArray, ties: FloatArray, alpha: float) -> _Objective:
    """Negative penalised Davidson log-likelihood; parameters are ``(theta_0 .. theta_{n-1}, log nu)``.

    With ``d = theta_i - theta_j`` and ``D = 2 cosh(d / 2) + nu``: ``log P(i > j) = d / 2 - log D`` and
    ``log P(tie) = log nu - log D``; ``log D`` is a log-sum-exp of linear functions, hence convex.
    """
    net = (decisive - decisive.transpose(0, 2, 1)).sum(axis=2)  # wins minus losses per item
    totals = decisive + decisive.transpose(0, 2, 1) + ties
    tie_total = 0.5 * ties.sum(axis=(1, 2))

    def objective(
        x: FloatArray, rows: IntArray, derivs: bool
    ) -> tuple[FloatArray, FloatArray | None, FloatArray | None]:
        theta, log_nu = x[:, :-1], x[:, -1]
        dec, tot = decisive[rows], totals[rows]
        half = 0.5 * (theta[:, :, np.newaxis] - theta[:, np.newaxis, :])
        log_nu_b = log_nu[:, np.newaxis, np.newaxis]
        log_d = np.logaddexp(np.logaddexp(half, -half), log_nu_b)
        # sum over decisive (i beat j) of -(d / 2 - log D), over ties of -(log nu - log D), plus the penalty.
        value = (
            -(dec * (half - log_d)).sum(axis=(1, 2))
            - tie_total[rows] * log_nu
            + 0.5 * (ties[rows] * log_d).sum(axis=(1, 2))
            + alpha * (theta**2).sum(axis=1)
        )
        if not derivs:
            return value, None, None
        e_plus, e_minus, tie_p = np.exp(half - log_d), np.exp(-half - log_d), np.exp(log_nu_b - log_d)
        sinh_d = 0.5 * (e_plus - e_minus)  # sinh(d / 2) / D
        cosh_d = 0.5 * (e_plus + e_minus)  # cosh(d / 2) / D
        n = theta.shape[1]
        grad = np.empty_like(x)
        grad[:, :-1] = -0.5 * net[rows] + (tot * sinh_d).sum(axis=2) + 2.0 * alpha * theta
        grad[:, -1] = -tie_total[rows] + 0.5 * (tot * tie_p).sum(axis=(1, 2))
        hess = np.empty((x.shape[0], n + 1, n + 1))
        curvature = np.exp(-2.0 * log_d) + 0.5 * tie_p * cosh_d  # (1 + nu cosh(d/2) / 2) / D^2
        hess[:, :-1, :-1] = _laplacian(tot * curvature) + 2.0 * alpha * np.eye(n)
        cross = -(tot * sinh_d * tie_p).sum(axis=2)
        hess[:, :-1, -1] = cross
        hess[:, -1, :-1] = cross
        hess[:, -1, -1] = (tot * tie_p * cosh_d).sum(axis=(1, 2))
        return value, grad, hess

    return objective


# -- optimiser --------------------------------------------------------------------------------------------------------


def _newton(
    objective: _Objective, x0: FloatArray, n_theta: int, shift_free: bool, max_iter: int, tol: float
) -> tuple[FloatArray, IntArray, BoolArray]:
    """Damped Newton on every row of ``x0`` (B, p) at once; returns ``(x, n_iter, converged)`` per row.

    A row stops when its full Newton step is at most ``tol`` in every coordinate (the step is then taken).
    ``shift_free``: the objective is invariant to shifting the first ``n_theta`` coordinates together, so
    ``11^T / n`` is added to that block of the Hessian (the step stays orthogonal to the shift).
    """
    x = x0.copy()
    batch = x.shape[0]
    n_iter = np.zeros(batch, dtype=np.int64)
    converged = np.zeros(batch, dtype=bool)
    active = np.arange(batch)
    for _ in range(max_iter):
        if active.size == 0:
            break
        xa = x[active]
        value, grad, hess = objective(xa, active, True)
        if grad is None or hess is None:  # pragma: no cover - every objective returns derivatives when asked
            raise RuntimeError("objective returned no derivatives")
        if shift_free:
            hess[:, :n_theta, :n_theta] += 1.0 / n_theta
        try:
            step = -np.linalg.solve(hess, grad[:, :, np.newaxis])[:, :, 0]
        except np.linalg.LinAlgError:
            step = -np.matmul(np.linalg.pinv(hess), grad[:, :, np.newaxis])[:, :, 0]
        n_iter[active] += 1
        done = np.abs(step).max(axis=1) <= tol
        # Backtracking line search: halve each row's step until the Armijo condition holds (allowing for rounding
        # in the objective itself, which is what stops it near the optimum).
        slope = (grad * step).sum(axis=1)
        slack = 64 * np.finfo(np.float64).eps * (np.abs(value) + 1.0)
        scale = np.ones(active.size)
        pending = ~done
        for _ in range(_MAX_HALVINGS):
            if not pending.any():
                break
            rows = np.flatnonzero(pending)
            trial, _, _ = objective(xa[rows] + scale[rows, np.newaxis] * step[rows], active[rows], False)
            ok = np.isfinite(trial) & (trial <= value[rows] + _ARMIJO * scale[rows] * slope[rows] + slack[rows])
            pending[rows[ok]] = False
            scale[rows[~ok]] *= 0.5
        x[active] = xa + scale[:, np.newaxis] * step
        converged[active[done]] = True
        active = active[~done]
    return x, n_iter, converged


def _fit_stack(
    decisive: FloatArray, ties: FloatArray, tie_model: str, alpha: float, max_iter: int, tol: float
) -> tuple[FloatArray, FloatArray | None, IntArray, BoolArray]:
    """Fit every ``(decisive, ties)`` pair of the ``(B, n, n)`` stacks; the data must already be identified.

    Returns centred ``theta`` (B, n), ``nu`` (B,) or ``None`` under ``"half"``, ``n_iter`` and ``converged`` (B,).
    Under Davidson, rows without ties are the plain Bradley-Terry fit with ``nu = 0``.
    """
    batch, n, _ = decisive.shape
    shift_free = alpha == 0.0
    theta = np.zeros((batch, n))
    n_iter = np.zeros(batch, dtype=np.int64)
    converged = np.ones(batch, dtype=bool)
    has_ties = ties.sum(axis=(1, 2)) > 0
    plain = ~has_ties if tie_model == "davidson" else np.ones(batch, dtype=bool)
    # Rows with no comparisons at all (only possible with alpha > 0) are already at their optimum, theta = 0.
    fit_plain = np.flatnonzero(plain & ((decisive + ties).sum(axis=(1, 2)) > 0))
    if fit_plain.size:
        wins = decisive[fit_plain] + 0.5 * ties[fit_plain]
        objective = _half_objective(wins, alpha)
        x, its, conv = _newton(objective, np.zeros((fit_plain.size, n)), n, shift_free, max_iter, tol)
        theta[fit_plain], n_iter[fit_plain], converged[fit_plain] = x, its, conv
    nu: FloatArray | None = None
    if tie_model == "davidson":
        nu = np.zeros(batch)
        fit_dav = np.flatnonzero(~plain)
        if fit_dav.size:
            dec, tie = decisive[fit_dav], ties[fit_dav]
            # Start at theta = 0 with nu at its optimum there: P(tie) = nu / (2 + nu) = observed tie share.
            tie_share = 0.5 * tie.sum(axis=(1, 2)) / (dec.sum(axis=(1, 2)) + 0.5 * tie.sum(axis=(1, 2)))
            x0 = np.zeros((fit_dav.size, n + 1))
            x0[:, -1] = np.log(2.0 * tie_share / (1.0 - tie_share))
            objective = _davidson_objective(dec, tie, alpha)
            x, its, conv = _newton(objective, x0, n, shift_free, max_iter, tol)
            theta[fit_dav], nu[fit_dav] = x[:, :-1], np.exp(x[:, -1])
            n_iter[fit_dav], converged[fit_dav] = its, conv
    theta -= theta.mean(axis=1, keepdims=True)
    return theta, nu, n_iter, converged


# -- public API -------------------------------------------------------------------------------------------------------


def bradley_terry(
    n_items: int,
    winners: ArrayLike,
    losers: ArrayLike,
    *,
    ties: ArrayLike | None = None,
    tie_model: str = "half",
    alpha: float = 0.0,
    max_iter: int = 10_000,
    tol: float = 1e-10,
) -> BradleyTerryResult:
    """Fit Bradley-Terry log-strengths (maximum likelihood, or MAP with ``alpha > 0``) to pairwise comparisons.

    ``winners[c]`` beat ``losers[c]``; ``ties`` is an optional ``(m, 2)`` array of tied pairs, handled by
    ``tie_model`` (``"half"`` or ``"davidson"``, see the module docstring). ``alpha`` is choix's
    ``opt_pairwise`` penalty ``alpha * sum(theta ** 2)``; ``tol`` bounds the final Newton step (in ``theta`` and
    ``log nu``), ``max_iter`` the Newton iterations. The order of the comparisons does not matter.

    With ``alpha = 0`` and ``tie_model="half"`` the result equals ``choix.ilsr_pairwise`` / ``choix.opt_pairwise``
    (centred) on the same data, a tie entered as one win each way on doubled data.

    Edge cases:
        - ``alpha = 0`` and a comparison graph that is not strongly connected (an item that never loses or never
          wins, separate groups, an item in no comparison, no comparisons at all): ``ValueError`` naming the item
          and suggesting ``alpha > 0``. With ``alpha > 0`` every input has a finite estimate; an item in no
          comparison gets ``theta = 0`` before centring.
        - ``"davidson"`` without ties: ``nu = 0.0`` and ``theta`` is the plain Bradley-Terry fit (the likelihood
          increases as ``nu -> 0``, so the boundary is the estimate). Ties but no decisive comparison:
          ``ValueError`` (``nu -> infinity``), whatever ``alpha``.
        - Non-convergence within ``max_iter`` is reported by ``converged=False``, not raised.

    Raises ``ValueError`` for invalid input: indices outside ``0..n_items-1``, an item compared with itself,
    unequal ``winners`` / ``losers`` lengths, an unknown ``tie_model``, ``alpha < 0``, ``max_iter < 1``, ``tol <= 0``.
    """
    won, lost, tied = _comparisons(n_items, winners, losers, ties)
    alpha = _check_options(tie_model, alpha)
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter}.")
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}.")
    n = int(n_items)
    decisive, tie_counts = _decisive_matrix(n, won, lost), _tie_matrix(n, tied)
    if tie_model == "davidson" and tied.shape[0] > 0 and won.size == 0:
        raise ValueError("Davidson's tie parameter has no finite estimate: every comparison is a tie.")
    if alpha == 0.0:
        reason = _identification_problem(decisive, tie_counts)
        if reason is not None:
            raise _not_identified_error(reason)
    theta, nu, n_iter, converged = _fit_stack(
        decisive[np.newaxis], tie_counts[np.newaxis], tie_model, alpha, max_iter, tol
    )
    estimate = theta[0]
    estimate.setflags(write=False)
    return BradleyTerryResult(
        theta=estimate,
        nu=None if nu is None else float(nu[0]),
        n_iter=int(n_iter[0]),
        converged=bool(converged[0]),
    )


def bradley_terry_intervals(
    n_items: int,
    winners: ArrayLike,
    losers: ArrayLike,
    *,
    ties: ArrayLike | None = None,
    tie_model: str = "half",
    alpha: float = 0.0,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[FloatArray, FloatArray]:
    """Percentile bootstrap intervals ``(low, high)``, each ``(n_items,)``, for the centred ``theta``.

    Each replicate draws as many comparisons as the data hold, with replacement, from one pool holding the decisive
    comparisons and the ties together (as multinomial counts over the distinct ``(winner, loser)`` and tied pairs,
    which is the same distribution as redrawing every comparison, at a cost independent of their number), refits
    with the same ``tie_model`` and ``alpha``, and centres. ``low`` / ``high`` are the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles over replicates (``np.quantile``, linear interpolation). Randomness comes only from
    ``np.random.default_rng(seed)``: the same arguments give identical output.

    Replicates without a finite estimate (``alpha = 0`` and a resampled graph that is not strongly connected, or
    under Davidson a replicate drawing only ties): such a replicate's estimate is infinite or undefined, so it is
    redrawn, i.e. the bootstrap is conditional on the estimate existing. Replicates are never refit with a
    different ``alpha``: that would mix two estimators in one distribution. Redrawing is tolerated only while the
    redrawn share of all draws stays at most ``(1 - level) / 2``, one tail of the interval: beyond that the missing
    (infinite) replicates could decide an endpoint and ``ValueError`` is raised, suggesting ``alpha > 0``. With
    ``alpha > 0`` every replicate has an estimate and none is redrawn.

    Raises ``ValueError`` as :func:`bradley_terry` does for the original data, and for ``n_boot < 1`` or ``level``
    outside ``(0, 1)``. No data with ``alpha > 0`` gives zero-width intervals at 0.
    """
    won, lost, tied = _comparisons(n_items, winners, losers, ties)
    alpha = _check_options(tie_model, alpha)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}.")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}.")
    n = int(n_items)
    # The original data must have an estimate for its intervals to mean anything (same errors as bradley_terry).
    bradley_terry(n, won, lost, ties=tied, tie_model=tie_model, alpha=alpha, tol=_BOOT_TOL)

    # Distinct comparison kinds: directed decisive pairs (flat index w * n + l) and unordered tied pairs.
    decisive_keys, decisive_counts, _ = group_keys(won * n + lost, n * n)
    tie_keys, tie_counts, _ = group_keys(tied.min(axis=1) * n + tied.max(axis=1), n * n)
    n_kinds = decisive_keys.size
    pool = np.concatenate([decisive_counts, tie_counts]).astype(np.float64)
    total = int(pool.sum())
    if total == 0:
        return np.zeros(n), np.zeros(n)
    probs = pool / total
    tie_low, tie_high = tie_keys // n, tie_keys % n

    tail = (1.0 - level) / 2.0
    max_redrawn = math.floor(tail * n_boot / (1.0 - tail) + 1e-9)
    rng = np.random.default_rng(seed)
    fits: list[FloatArray] = []
    needed, redrawn = n_boot, 0
    while needed > 0:
        counts = rng.multinomial(total, probs, size=needed).astype(np.float64)
        decisive = np.zeros((needed, n * n))
        decisive[:, decisive_keys] = counts[:, :n_kinds]  # keys are distinct, so plain assignment suffices
        tie_mat = np.zeros((needed, n * n))
        tie_mat[:, tie_low * n + tie_high] = counts[:, n_kinds:]
        decisive = decisive.reshape(needed, n, n)
        tie_mat = tie_mat.reshape(needed, n, n)
        tie_mat = tie_mat + tie_mat.transpose(0, 2, 1)
        usable = np.ones(needed, dtype=bool)
        if alpha == 0.0:
            usable &= _strongly_connected(_adjacency(decisive, tie_mat))
        if tie_model == "davidson":
            usable &= ~((decisive.sum(axis=(1, 2)) == 0) & (tie_mat.sum(axis=(1, 2)) > 0))
        redrawn += int((~usable).sum())
        if redrawn > max_redrawn:
            raise ValueError(
                f"{redrawn} bootstrap replicates had no finite maximum-likelihood estimate (comparison graph not "
                f"strongly connected, or under Davidson only ties), more than the {max_redrawn} that a {level:g} "
                f"interval from {n_boot} replicates tolerates; the data are too sparse for unregularised intervals: "
                "pass alpha > 0"
            )
        keep = np.flatnonzero(usable)
        if keep.size:
            theta, _, _, _ = _fit_stack(decisive[keep], tie_mat[keep], tie_model, alpha, 10_000, _BOOT_TOL)
            fits.append(theta)
        needed -= keep.size
    replicates = np.concatenate(fits, axis=0)
    low, high = np.quantile(replicates, [tail, 1.0 - tail], axis=0)
    return low, high

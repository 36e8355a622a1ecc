"""Model leaderboards: the strengths of the models behind the responses, with bootstrap intervals.

``Battles`` is what ``quality.services.recompute`` stores as ``ModelRanking`` rows: Bradley-Terry over pairwise
judgments (``quality.services.compute``) or Plackett-Luce over rankings (here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from numeric import ranking

PL_PRIOR: Final = 0.01
BOOTSTRAP_REPLICATES: Final = 200
#: Above this many rankings, Plackett-Luce intervals come from the observed information (Wald), which the bootstrap
#: matches at that size (``tests/quality/test_metrics_ranking.py``), instead of 200 refits.
BOOTSTRAP_MAX_RANKINGS: Final = 20_000


@dataclass
class Battles:
    models: list[str]
    theta: np.ndarray
    low: np.ndarray
    high: np.ndarray
    wins: np.ndarray
    losses: np.ndarray
    ties: np.ndarray
    regularised: bool


def plackett_luce_board(names: list[str], orders: np.ndarray) -> Battles | None:
    """Plackett-Luce strengths of the models ``names`` from rankings of their responses: ``orders`` is ``(n, L)``,
    model codes best first, ``-1`` padding. ``wins`` = ranked first, ``losses`` = ranked last, ``ties`` = the places
    between, so that ``battles`` (their sum) is how many rankings the model appeared in. Intervals: a bootstrap of
    200 refits up to ``BOOTSTRAP_MAX_RANKINGS`` rankings, Wald intervals from the observed information above.
    ``None`` without rankings or with fewer than two models."""
    n = len(names)
    if orders.shape[0] == 0 or n < 2:
        return None

    def fit(alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        theta = ranking.plackett_luce(n, orders, alpha=alpha)
        if orders.shape[0] > BOOTSTRAP_MAX_RANKINGS:
            low, high = ranking.plackett_luce_information_intervals(n, orders, theta, alpha=alpha)
        else:
            low, high = ranking.plackett_luce_intervals(n, orders, n_boot=BOOTSTRAP_REPLICATES, seed=0, alpha=alpha)
        return theta, low, high

    regularised = False
    try:
        theta, low, high = fit(0.0)
    except ValueError:
        regularised = True
        theta, low, high = fit(PL_PRIOR)
    lengths = (orders >= 0).sum(axis=1)
    firsts = np.bincount(orders[:, 0], minlength=n)
    lasts = np.bincount(orders[np.arange(orders.shape[0]), lengths - 1], minlength=n)
    appearances = np.bincount(orders[orders >= 0], minlength=n)
    return Battles(
        models=names,
        theta=theta,
        low=low,
        high=high,
        wins=firsts,
        losses=lasts,
        ties=appearances - firsts - lasts,
        regularised=regularised,
    )

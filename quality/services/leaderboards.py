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


def plackett_luce_board(rankings: list[list[str] | None]) -> Battles | None:
    """Plackett-Luce strengths of the models from rankings of their responses (model names best first; ``None``
    rows are skipped). ``wins`` = ranked first, ``losses`` = ranked last, ``ties`` = the places between, so that
    ``battles`` (their sum) is how many rankings the model appeared in. ``None`` with fewer than two models."""
    rows = [row for row in rankings if row is not None]
    if not rows:
        return None
    names = sorted({name for row in rows for name in row})
    if len(names) < 2:
        return None
    code = {name: i for i, name in enumerate(names)}
    width = max(len(row) for row in rows)
    orders = np.full((len(rows), width), -1, dtype=np.int64)
    for r, row in enumerate(rows):
        orders[r, : len(row)] = [code[name] for name in row]
    n = len(names)
    regularised = False
    try:
        theta = ranking.plackett_luce(n, orders)
        low, high = ranking.plackett_luce_intervals(n, orders, n_boot=BOOTSTRAP_REPLICATES, seed=0)
    except ValueError:
        regularised = True
        theta = ranking.plackett_luce(n, orders, alpha=PL_PRIOR)
        low, high = ranking.plackett_luce_intervals(n, orders, n_boot=BOOTSTRAP_REPLICATES, seed=0, alpha=PL_PRIOR)
    lengths = (orders >= 0).sum(axis=1)
    firsts = np.bincount(orders[:, 0], minlength=n)
    lasts = np.bincount(orders[np.arange(len(rows)), lengths - 1], minlength=n)
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

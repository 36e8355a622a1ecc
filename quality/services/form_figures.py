"""Quality figures of a project's questions, beyond its primary label: ratings and rankings.

Pure numpy over the answers read by ``quality.selectors.form_answers`` (no database access); the recompute stores
what this returns (``quality.services.recompute``). What is computed, per question kind:

- **rating** (one per task, or one per response): Krippendorff's alpha at the interval and the ordinal level over
  its units (a task, or a task's response), each annotator's leniency (own rating minus the mean of the others on
  the same unit, with a 95% t interval), and the share of units rated by two or more;
- **ranking**: Kendall's W over the tasks ranked twice or more (the mean of each task's W weighted by its number of
  rankings minus one), each annotator's mean Kendall tau-b against the leave-one-out consensus, and a model
  leaderboard by Plackett-Luce over the rankings of tasks whose responses name distinct models (bootstrap 95%
  intervals; with ``wins`` = ranked first, ``losses`` = ranked last and ``ties`` = the places between, so that
  ``battles`` is how many rankings the model appeared in). A ranking with tied places is read with the tied
  responses in index order;
- **straight-lining** (over every per-response rating question together): a judgment whose three or more ratings
  are all equal; an annotator is flagged when at least half of their ten or more such judgments are.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from labeling.questions import MAX_RESPONSES as MAX_K
from numeric import ranking, ratings
from quality.selectors import FormAnswers, ProjectData
from quality.services.leaderboards import Battles, plackett_luce_board

STRAIGHT_LINING_SHARE: Final = 0.5
STRAIGHT_LINING_MIN: Final = 10


@dataclass
class FormFigures:
    """What the recompute stores: ``questions`` into the snapshot, ``annotators[i]`` into annotator ``i``'s score
    (by ``ProjectData`` annotator index), straight-lining per annotator, and a Plackett-Luce leaderboard."""

    questions: dict[str, dict[str, Any]] = field(default_factory=dict)
    annotators: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    straight_share: np.ndarray | None = None
    straight_flag: np.ndarray | None = None
    leaderboard: Battles | None = None  # ranking projects whose responses name models


def _finite(value: Any, digits: int = 6) -> float | None:
    value = float(value)
    return round(value, digits) if np.isfinite(value) else None


def _flat_order(value: Any) -> list[int]:
    """A ranking answer as a strict order: tied places in index order."""
    order: list[int] = []
    for place in value:
        order.extend(sorted(place) if isinstance(place, list) else [place])
    return order


def _answered(key: str, form: FormAnswers) -> tuple[np.ndarray, list[Any]]:
    """The judgments that answer ``key`` (indexes) and their answers."""
    values = [answers.get(key) for answers in form.answers]
    index = np.fromiter((value is not None for value in values), dtype=bool, count=len(values))
    return np.flatnonzero(index), [value for value in values if value is not None]


def _rating_arrays(
    key: str, per_response: bool, data: ProjectData, form: FormAnswers
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(judgment, unit, annotator, value) of every rating of question ``key``; unit = task * 9 + response."""
    judgments, answered = _answered(key, form)
    if per_response:
        lengths = np.fromiter(map(len, answered), dtype=np.int64, count=len(answered))
        values = np.fromiter(itertools.chain.from_iterable(answered), dtype=np.float64, count=int(lengths.sum()))
        judgment = np.repeat(judgments, lengths)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        response = np.arange(values.size) - starts
    else:
        values = np.asarray(answered, dtype=np.float64)
        judgment, response = judgments, np.zeros(judgments.size, dtype=np.int64)
    unit = data.j_task[judgment] * MAX_K + response
    return judgment, unit, data.j_annotator[judgment], values


def _rating_figures(key: str, per_response: bool, data: ProjectData, form: FormAnswers, out: FormFigures) -> Any:
    judgment, unit, annotator, values = _rating_arrays(key, per_response, data, form)
    n_units = max(data.n_tasks, 1) * MAX_K
    m = int(data.annotator_ids.size)
    figures: dict[str, Any] = {"kind": "rating", "per_response": per_response, "n": int(values.size)}
    if values.size == 0:
        out.questions[key] = figures | {"alpha_interval": None, "alpha_ordinal": None, "units_2plus": 0}
        return judgment, values
    options = {"n_items": n_units, "n_annotators": m}
    for level in ("interval", "ordinal"):
        try:
            figures[f"alpha_{level}"] = _finite(ratings.rating_alpha(unit, annotator, values, level=level, **options))
        except ValueError:  # too many distinct ratings on too many units to count in memory: no figure, no failure
            figures[f"alpha_{level}"] = None
    _, _, count = ratings.rating_consensus(unit, values, n_items=n_units)
    figures["units_2plus"] = int((count >= 2).sum())
    figures["mean"] = _finite(values.mean(), 4)
    out.questions[key] = figures
    lenient = ratings.leniency(unit, annotator, values, **options)
    for i in np.flatnonzero(lenient.count > 0).tolist():
        out.annotators.setdefault(i, {})[key] = {
            "leniency": _finite(lenient.offset[i], 4),
            "low": _finite(lenient.low[i], 4),
            "high": _finite(lenient.high[i], 4),
            "n": int(lenient.count[i]),
        }
    return judgment, values


def _ranking_figures(
    key: str, ties: bool, data: ProjectData, form: FormAnswers, out: FormFigures, models: bool
) -> None:
    judgments, answered = _answered(key, form)
    if ties:
        answered = [_flat_order(value) for value in answered]
    lengths = np.fromiter(map(len, answered), dtype=np.int64, count=len(answered))
    m = int(data.annotator_ids.size)
    n_tasks = max(data.n_tasks, 1)
    tau_sum, tau_n = np.zeros(m), np.zeros(m, dtype=np.int64)
    w_weighted, w_weight, ranked_twice = 0.0, 0, 0
    codes = _task_model_codes(form) if models else None
    model_orders: list[np.ndarray] = []
    for k in np.unique(lengths).tolist():
        chosen = np.flatnonzero(lengths == k)
        j_index = judgments[chosen]
        array = np.array([answered[i] for i in chosen.tolist()], dtype=np.int64).reshape(-1, k)
        tasks, annotators = data.j_task[j_index], data.j_annotator[j_index]
        per_task = np.bincount(tasks, minlength=n_tasks)
        weight = int(np.clip(per_task - 1, 0, None).sum())
        ranked_twice += int((per_task >= 2).sum())
        if weight:
            w = ranking.project_w(tasks, array, n_tasks=n_tasks)
            if np.isfinite(w):
                w_weighted += w * weight
                w_weight += weight
        mean_tau, count = ranking.annotator_tau(tasks, annotators, array, n_annotators=m)
        seen = count > 0
        tau_sum[seen] += np.nan_to_num(mean_tau[seen]) * count[seen]
        tau_n += count
        if codes is not None:
            named = codes[0][tasks[:, np.newaxis], array]  # model codes, best first
            distinct = np.sort(named, axis=1)
            usable = (named >= 0).all(axis=1) & (distinct[:, 1:] != distinct[:, :-1]).all(axis=1)
            padded = np.full((int(usable.sum()), MAX_K), -1, dtype=np.int64)
            padded[:, :k] = named[usable]
            model_orders.append(padded)
    out.questions[key] = {
        "kind": "ranking",
        "n": int(judgments.size),
        "kendall_w": round(w_weighted / w_weight, 6) if w_weight else None,
        "tasks_2plus": ranked_twice,
    }
    for i in np.flatnonzero(tau_n > 0).tolist():
        out.annotators.setdefault(i, {})[key] = {"tau": _finite(tau_sum[i] / tau_n[i], 4), "n": int(tau_n[i])}
    if codes is not None and model_orders:
        orders = np.concatenate(model_orders)
        used = np.unique(orders[orders >= 0])
        remap = np.full(len(codes[1]) + 1, -1, dtype=np.int64)
        remap[used] = np.arange(used.size)
        out.leaderboard = plackett_luce_board([codes[1][i] for i in used.tolist()], remap[orders])


def _task_model_codes(form: FormAnswers) -> tuple[np.ndarray, list[str]]:
    """``(n_tasks, 9)`` model codes of every task's responses (``-1``: no response or no model) and the names."""
    names = sorted({name for models in form.task_models for name in models if name})
    code = {name: i for i, name in enumerate(names)}
    table = np.full((len(form.task_models), MAX_K), -1, dtype=np.int64)
    for t, models in enumerate(form.task_models):
        table[t, : len(models)] = [code.get(name, -1) for name in models[:MAX_K]]
    return table, names


def form_figures(data: ProjectData, form: FormAnswers, *, leaderboard: bool) -> FormFigures:
    """Every question's figures (see the module docstring); ``leaderboard``: fit Plackett-Luce over models."""
    out = FormFigures()
    straight_j: list[np.ndarray] = []
    straight_v: list[np.ndarray] = []
    for spec in form.questions:
        if spec.kind == "rating":
            judgment, values = _rating_figures(spec.key, spec.per_response, data, form, out)
            if spec.per_response:
                straight_j.append(judgment)
                straight_v.append(values)
        elif spec.kind == "ranking":
            _ranking_figures(spec.key, spec.allow_ties, data, form, out, leaderboard)
        else:
            _, answered = _answered(spec.key, form)
            out.questions[spec.key] = {"kind": spec.kind, "n": sum(1 for value in answered if value not in ("", []))}
    if straight_j:
        m = int(data.annotator_ids.size)
        groups = np.concatenate(straight_j)
        values = np.concatenate(straight_v)
        n_groups = data.n_judgments
        flags = ratings.straight_lining(groups, data.j_annotator[groups], values, n_groups=n_groups)
        eligible = np.bincount(groups, minlength=n_groups) >= 3
        share = ratings.straight_lining_share(data.j_annotator, flags, n_annotators=m, eligible=eligible)
        counted = np.bincount(data.j_annotator[eligible], minlength=m)
        out.straight_share = share
        out.straight_flag = (counted >= STRAIGHT_LINING_MIN) & (np.nan_to_num(share) >= STRAIGHT_LINING_SHARE)
    return out


__all__ = ["FormFigures", "form_figures"]

"""The figures a quality recompute stores, computed from a project's arrays (``quality.selectors.ProjectData``) with
``numeric`` (numpy only): consensus per task, scores and flags per annotator, project agreement and the model
leaderboard. Pure: no database access; ``quality.services.recompute`` reads the arrays and stores the results.

How the flags (``quality.models.Flag``) are decided (each needs enough data first, and is documented on the
dashboard):

- Reference label for an annotator's judgment: the Dawid-Skene posterior of the task **without that judgment**
  (its likelihood factor divided out — leave-one-out), or the gold answer on gold tasks. So an annotator never
  agrees with themself, and careless annotators, whom Dawid-Skene down-weights, hardly move the reference.
- ``random_clicker``: agreement with the reference is significantly *below* chance + ``RANDOM_MARGIN`` (exact
  one-sided binomial test, Benjamini-Hochberg across the project's annotators, q < ``RANDOM_ALPHA``). Flagging needs
  evidence of carelessness, not merely a lack of evidence of skill.
- ``position_biased``: share of decisive judgments choosing the left response differs from 1/2 (exact binomial,
  BH, q < ``ALPHA``) by at least ``EFFECT``.
- ``verbosity_biased``: the annotator gives the longer response the win more often than the reference does on the
  same tasks (exact McNemar test, BH, q < ``ALPHA``), by at least ``EFFECT``.
- ``too_fast``: median server-side seconds per judgment below the project's ``too_fast_seconds``.
- ``low_gold_accuracy``: at least ``pause_min_gold`` gold judgments and even the upper Wilson 95% bound of gold
  accuracy is below the project's ``pause_gold_threshold``.
- Auto-pause (when the project enables it): ``low_gold_accuracy`` or ``random_clicker``, judged only on judgments
  made after the last un-pause, so a manager's decision stands until new evidence accumulates. The figures here
  say who qualifies (``pause_gold``, ``pause_random``); ``quality.services.recompute`` sets the pause.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

import numeric
from labeling.models import Project, ProjectKind
from quality.models import Flag
from quality.selectors import FormAnswers, ProjectData
from quality.services.form_figures import FormFigures, form_figures
from quality.services.leaderboards import Battles

ALPHA = 0.01  # BH-adjusted significance for the bias flags
RANDOM_ALPHA = 0.05  # and for random clicking, whose test already demands a clear shortfall (RANDOM_MARGIN)
EFFECT = 0.10  # smallest bias worth flagging (share of decisive judgments)
RANDOM_MARGIN = 0.15  # "useful" means agreeing at least this much more often than chance
MIN_FLAG_JUDGMENTS = 30  # judgments with a reference before any agreement or bias flag
MIN_FAST_JUDGMENTS = 20
MIN_PEER_SHARED = 20
BOOTSTRAP_REPLICATES = 200
# Dawid-Skene runs accelerated (SQUAREM) to 1e-7 per judgment on the log-likelihood. On the 1M-judgment benchmark:
# 17 EM steps instead of the plain loop's 48 at the function's default tol (1e-6; crowd-kit's own is 1e-5), about
# as close to a fully converged fit: 5 labels of 333,334 differ from it (plain: 4), the largest posterior difference
# is 0.061 (plain: 0.067). bench/quality.py prints the comparison.
DS_TOL = 1e-7
BT_PRIOR = 0.01  # ridge on Bradley-Terry log-strengths when the battles alone have no finite estimate

Progress = Callable[[str, float], None]


def _no_progress(step: str, fraction: float) -> None:
    return None


@dataclass
class Consensus:
    posteriors: np.ndarray  # tasks x classes
    labels: np.ndarray  # tasks; -1 without judgments or gold
    agreement: np.ndarray  # tasks; NaN with < 2 judgments
    counts: np.ndarray  # tasks x classes
    confusions: np.ndarray  # annotators x classes x classes
    priors: np.ndarray
    skills: np.ndarray
    reference: np.ndarray  # judgments; leave-one-out reference class, -1 where there is none


def _counts(data: ProjectData) -> np.ndarray:
    """Tasks x labels vote counts."""
    return numeric.label_counts(data.j_task, data.j_label, n_items=data.n_tasks, n_classes=len(data.labels))


def _consensus(data: ProjectData, counts: np.ndarray | None = None) -> Consensus:
    k = len(data.labels)
    counts = _counts(data) if counts is None else counts
    ds = numeric.dawid_skene(
        data.j_task,
        data.j_annotator,
        data.j_label,
        n_classes=k,
        gold=data.task_gold,
        n_items=data.n_tasks,
        n_workers=data.annotator_ids.size,
        tol=DS_TOL,
        accelerate=True,
    )
    judged = counts.sum(axis=1)
    gold = data.task_gold >= 0
    labels = np.where((judged > 0) | gold, ds.labels, -1)
    # Leave-one-out: divide each judgment's own likelihood factor out of its task's posterior.
    reference = np.full(data.n_judgments, -1, dtype=np.int64)
    if data.n_judgments:
        # Logs of the per-task and per-(annotator, label) tables first, then one gather per judgment.
        with np.errstate(divide="ignore"):
            log_post = np.log(ds.posteriors)
            log_own = np.log(np.clip(ds.confusions, 1e-300, None))
        loo = log_post[data.j_task] - log_own[data.j_annotator, :, data.j_label]
        reference = np.argmax(loo, axis=1).astype(np.int64)
        has_other = judged[data.j_task] >= 2
        task_gold = data.task_gold[data.j_task]
        reference = np.where(task_gold >= 0, task_gold, np.where(has_other, reference, -1))
    return Consensus(
        posteriors=ds.posteriors,
        labels=labels,
        agreement=numeric.item_agreement(counts),
        counts=counts,
        confusions=ds.confusions,
        priors=ds.priors,
        skills=ds.skills,
        reference=reference,
    )


def _judgment_figures(data: ProjectData, project: Project, window: np.ndarray) -> dict[str, Any]:
    """The per-annotator arrays that need no consensus (index = position in ``data.annotator_ids``): counts, median
    seconds, gold accuracy, peer kappas, self-consistency, position bias, and the flags they decide. ``window``
    marks the judgments that may count towards a pause (made after the annotator's last un-pause)."""
    n = data.annotator_ids.size
    k = len(data.labels)
    who = data.j_annotator
    judged = np.bincount(who, minlength=n)
    figures: dict[str, Any] = {"n": judged, "median_seconds": numeric.group_medians(who, data.j_seconds, n)}

    # Gold accuracy, over everything and over the pause window.
    on_gold = data.task_gold[data.j_task] >= 0
    correct = data.j_label == data.task_gold[data.j_task]
    gold = numeric.gold_accuracy(who[on_gold], correct[on_gold], n_annotators=n)
    gold_window = numeric.gold_accuracy(who[on_gold & window], correct[on_gold & window], n_annotators=n)
    pause_gold = (gold_window.n >= project.pause_min_gold) & (
        np.nan_to_num(gold_window.high, nan=1.0) < project.pause_gold_threshold
    )
    figures |= {"gold": gold, "gold_window": gold_window, "pause_gold": pause_gold}

    # Peers: Cohen's kappa against every annotator sharing enough tasks.
    peers = numeric.peer_kappas(data.j_task, who, data.j_label, n_workers=n, n_classes=k, min_shared=MIN_PEER_SHARED)
    figures |= {"peers": peers, "kappa_mean": numeric.annotator_mean_kappa(peers, n_workers=n)}

    # Self-consistency on repeated tasks (identical payloads judged more than once by the same annotator).
    consistency = numeric.self_consistency(who, data.task_content[data.j_task], data.j_label, n_annotators=n)
    figures |= {"consistency": consistency}

    flags = {
        Flag.TOO_FAST: (judged >= MIN_FAST_JUDGMENTS) & (figures["median_seconds"] < project.too_fast_seconds),
        Flag.LOW_GOLD_ACCURACY: (gold.n >= project.pause_min_gold)
        & (np.nan_to_num(gold.high, nan=1.0) < project.pause_gold_threshold),
        Flag.POSITION_BIASED: np.zeros(n, dtype=bool),
        Flag.STRAIGHT_LINING: np.zeros(n, dtype=bool),  # set from the form figures (``_compute``)
    }
    if project.kind == ProjectKind.PAIRWISE and data.n_judgments:
        a, b = data.labels.index("a"), data.labels.index("b")
        decisive = np.isin(data.j_label, [a, b]) & (data.j_a_left >= 0)
        chose_left = (data.j_label == a) == (data.j_a_left == 1)
        position = numeric.position_bias(who, chose_left, decisive, n_annotators=n)
        flags[Flag.POSITION_BIASED] = (
            (position.n >= MIN_FLAG_JUDGMENTS)
            & (np.nan_to_num(position.q_value, nan=1.0) < ALPHA)
            & (np.abs(np.nan_to_num(position.rate, nan=0.5) - 0.5) >= EFFECT)
        )
        figures |= {"position": position, "decisive": decisive}
    figures["flags"] = flags
    return figures


def _annotator_figures(
    data: ProjectData, consensus: Consensus, project: Project, window: np.ndarray, base: dict[str, Any]
) -> dict[str, Any]:
    """:func:`_judgment_figures` (``base``) completed with what needs the consensus: agreement with the
    leave-one-out reference, the random-clicking test and verbosity bias, and the flags they decide."""
    n = data.annotator_ids.size
    k = len(data.labels)
    who = data.j_annotator
    figures = dict(base)
    flags = dict(base["flags"])

    # Agreement with the leave-one-out reference, chance agreement and the random-clicking test.
    has_ref = consensus.reference >= 0

    def random_test(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n_ref, agreeing, rate = numeric.agreement_with_reference(
            who[mask], data.j_label[mask] == consensus.reference[mask], n_annotators=n
        )
        chance = numeric.chance_agreement(
            who[mask], data.j_label[mask], consensus.reference[mask], n_annotators=n, n_classes=k
        )
        useful = np.clip(np.nan_to_num(chance, nan=0.0) + RANDOM_MARGIN, 0.0, 0.999)
        p = numeric.binomial_test(agreeing, n_ref, useful, alternative="less")
        tested = n_ref >= MIN_FLAG_JUDGMENTS
        q = np.full(n, np.nan)
        q[tested] = numeric.benjamini_hochberg(p[tested])
        return n_ref, rate, chance, q

    agreement_n, agreement, chance, random_q = random_test(has_ref)
    # Over the pause window too, unless it holds every judgment (no annotator was ever un-paused).
    random_q_window = random_q if window.all() else random_test(has_ref & window)[3]
    figures |= {"agreement_n": agreement_n, "agreement": agreement, "chance": chance, "random_q": random_q}
    flags[Flag.RANDOM_CLICKER] = (agreement_n >= MIN_FLAG_JUDGMENTS) & (np.nan_to_num(random_q, nan=1.0) < RANDOM_ALPHA)
    flags[Flag.VERBOSITY_BIASED] = np.zeros(n, dtype=bool)
    figures["pause_random"] = (np.nan_to_num(random_q_window, nan=1.0) < RANDOM_ALPHA) & flags[Flag.RANDOM_CLICKER]

    if "decisive" in base:
        a, b = data.labels.index("a"), data.labels.index("b")
        chose_a = data.j_label == a
        len_a, len_b = data.task_len_a[data.j_task], data.task_len_b[data.j_task]
        ref = consensus.reference
        usable = base["decisive"] & np.isin(ref, [a, b]) & (len_a != len_b)
        a_longer = len_a > len_b
        verbosity = numeric.verbosity_bias(
            who[usable],
            (chose_a == a_longer)[usable],
            ((ref == a) == a_longer)[usable],
            n_annotators=n,
        )
        flags[Flag.VERBOSITY_BIASED] = (
            (verbosity.n >= MIN_FLAG_JUDGMENTS)
            & (np.nan_to_num(verbosity.q_value, nan=1.0) < ALPHA)
            & (np.nan_to_num(verbosity.excess, nan=0.0) >= EFFECT)
        )
        figures["verbosity"] = verbosity
    figures["flags"] = flags
    return figures


@dataclass
class Computed:
    consensus: Consensus
    figures: dict[str, Any]
    overall: dict[str, Any]
    battles: Battles | None
    form: FormFigures | None = None


def _compute(
    data: ProjectData,
    project: Project,
    window: np.ndarray,
    report: Progress = _no_progress,
    form: FormAnswers | None = None,
) -> Computed:
    """Everything the job stores, from the arrays. The work that needs no consensus (per-judgment annotator
    figures, the model ranking) runs on a helper thread while Dawid-Skene runs on this one: numpy releases the GIL
    inside its sorts and array loops, so on two cores the two overlap (about 0.2 s of 1 s on a million
    judgments). Pure numpy: no database access on either thread."""
    counts = _counts(data)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="quality") as pool:
        base = pool.submit(_judgment_figures, data, project, window)
        agreement = pool.submit(_project_figures, data, counts)
        ranking = pool.submit(_battles, data) if project.kind == ProjectKind.PAIRWISE else None
        ranked = project.kind == ProjectKind.RANKING
        questions = pool.submit(form_figures, data, form, leaderboard=ranked) if form is not None else None
        report("consensus (Dawid-Skene)", 0.35)
        consensus = _consensus(data, counts)
        report("annotator scores and bias tests", 0.55)
        figures = _annotator_figures(data, consensus, project, window, base.result())
        report("agreement", 0.7)
        overall = agreement.result() | {"confusion": _confusion(data, consensus)}
        report("model ranking (Bradley-Terry)", 0.8)
        battles = ranking.result() if ranking is not None else None
        report("question figures", 0.85)
        questions_figures = questions.result() if questions is not None else None
    if questions_figures is not None:
        if questions_figures.straight_flag is not None:
            figures["flags"][Flag.STRAIGHT_LINING] = questions_figures.straight_flag
        if ranked:
            battles = questions_figures.leaderboard
    return Computed(consensus, figures, overall, battles, questions_figures)


def _project_figures(data: ProjectData, counts: np.ndarray) -> dict[str, Any]:
    """Agreement over the project from the tasks x labels vote ``counts`` (no consensus needed)."""
    totals = counts.sum(axis=1)
    normal = data.task_gold < 0
    judged = totals >= 2
    fleiss, fleiss_items = None, 0
    if judged.any():
        # Fleiss' kappa needs the same number of ratings per task: the tasks with the most common number.
        modal = int(np.argmax(np.bincount(totals[judged])))  # the most common total (the smallest on a tie)
        subset = counts[totals == modal]
        fleiss_items = int(subset.shape[0])
        fleiss = _finite(numeric.fleiss_kappa(subset))
    return {
        "fleiss": fleiss,
        "fleiss_items": fleiss_items,
        "alpha": _finite(numeric.krippendorff_alpha_counts(counts)) if judged.any() else None,
        "percent": _finite(numeric.percent_agreement(counts)) if judged.any() else None,
        "n_complete": int((data.task_complete & normal).sum()),
        "n_normal": int(normal.sum()),
        "label_counts": {
            label: int(count) for label, count in zip(data.labels, counts.sum(axis=0).tolist(), strict=True)
        },
    }


def _confusion(data: ProjectData, consensus: Consensus) -> list[list[int]]:
    """Judgments by consensus label (rows) and given label (columns)."""
    k = len(data.labels)
    reference = consensus.labels[data.j_task] if data.n_judgments else np.zeros(0, dtype=np.int64)
    known = reference >= 0
    return np.bincount(reference[known] * k + data.j_label[known], minlength=k * k).reshape(k, k).tolist()


def _battles(data: ProjectData) -> Battles | None:
    """Bradley-Terry strengths of the models behind the responses: each judgment of a task naming two different
    models is one battle (A or B wins; a tie or "both bad" is a tie)."""
    if not data.models or not data.n_judgments:
        return None
    a, b = data.labels.index("a"), data.labels.index("b")
    model_a, model_b = data.task_model_a[data.j_task], data.task_model_b[data.j_task]
    battle = (model_a >= 0) & (model_b >= 0) & (model_a != model_b)
    if not battle.any():
        return None
    used, _, codes = numeric.group_keys(np.concatenate([model_a[battle], model_b[battle]]), len(data.models))
    first, second = codes[: battle.sum()], codes[battle.sum() :]
    label = data.j_label[battle]
    won_a, won_b = label == a, label == b
    tied = ~(won_a | won_b)
    winners = np.concatenate([first[won_a], second[won_b]])
    losers = np.concatenate([second[won_a], first[won_b]])
    ties = np.column_stack([first[tied], second[tied]])
    m = used.size
    options: dict[str, Any] = {"ties": ties, "tie_model": "half"}
    regularised = False
    try:
        fit = numeric.bradley_terry(m, winners, losers, **options)
        low, high = numeric.bradley_terry_intervals(m, winners, losers, n_boot=BOOTSTRAP_REPLICATES, seed=0, **options)
    except ValueError:
        # No finite estimate, for the data or for too many of its bootstrap resamples (few battles): the point
        # estimate and its interval both get the same small prior (a ridge on the log-strengths).
        regularised = True
        options["alpha"] = BT_PRIOR
        fit = numeric.bradley_terry(m, winners, losers, **options)
        low, high = numeric.bradley_terry_intervals(m, winners, losers, n_boot=BOOTSTRAP_REPLICATES, seed=0, **options)
    return Battles(
        models=[data.models[i] for i in used],
        theta=fit.theta,
        low=low,
        high=high,
        wins=np.bincount(winners, minlength=m),
        losses=np.bincount(losers, minlength=m),
        ties=np.bincount(ties.ravel(), minlength=m),
        regularised=regularised,
    )


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None

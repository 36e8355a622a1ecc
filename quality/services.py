"""Writes for quality: recompute a project's quality from its judgments, pause and un-pause annotators.

``project_quality_recompute`` is the whole job. It takes a per-project lock, reads every task and judgment into
arrays (``quality.selectors.project_data``), computes with ``numeric`` (numpy only) and upserts the results
in the same transaction. The lock serialises a duplicate or concurrent run, which then reads the same rows and
stores the same values: consensus per task, scores and flags per annotator, a snapshot per data version and the
model leaderboard. Nothing is incremented.

How the flags are decided (each needs enough data first, and is documented on the dashboard):

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
  made after the last un-pause, so a manager's decision stands until new evidence accumulates.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

import numeric
from labeling.models import Annotation, Project, ProjectKind
from labeling.queueing import coalesced_mark, schedule_coalesced
from quality import pgarrays
from quality.models import (
    AnnotatorScore,
    ConsensusMethod,
    ModelRanking,
    ProjectQuality,
    QualityJob,
    RecomputeStatus,
    TaskConsensus,
)
from quality.selectors import ProjectData, project_data, stale_project_ids

logger = logging.getLogger("concord.jobs")

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
WRITE_BATCH = 5_000

Progress = Callable[[str, float], None]


def _no_progress(step: str, fraction: float) -> None:
    return None


def progress_key(project_id: int) -> str:
    return f"concord:quality-progress:{project_id}"


# --- Computation (arrays in, arrays out) ------------------------------------------------------------------------
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
        "too_fast": (judged >= MIN_FAST_JUDGMENTS) & (figures["median_seconds"] < project.too_fast_seconds),
        "low_gold_accuracy": (gold.n >= project.pause_min_gold)
        & (np.nan_to_num(gold.high, nan=1.0) < project.pause_gold_threshold),
        "position_biased": np.zeros(n, dtype=bool),
    }
    if project.kind == ProjectKind.PAIRWISE and data.n_judgments:
        a, b = data.labels.index("a"), data.labels.index("b")
        decisive = np.isin(data.j_label, [a, b]) & (data.j_a_left >= 0)
        chose_left = (data.j_label == a) == (data.j_a_left == 1)
        position = numeric.position_bias(who, chose_left, decisive, n_annotators=n)
        flags["position_biased"] = (
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
    flags["random_clicker"] = (agreement_n >= MIN_FLAG_JUDGMENTS) & (np.nan_to_num(random_q, nan=1.0) < RANDOM_ALPHA)
    flags["verbosity_biased"] = np.zeros(n, dtype=bool)
    figures["pause_random"] = (np.nan_to_num(random_q_window, nan=1.0) < RANDOM_ALPHA) & flags["random_clicker"]

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
        flags["verbosity_biased"] = (
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


def _compute(data: ProjectData, project: Project, window: np.ndarray, report: Progress = _no_progress) -> Computed:
    """Everything the job stores, from the arrays. The work that needs no consensus (per-judgment annotator
    figures, the model ranking) runs on a helper thread while Dawid-Skene runs on this one: numpy releases the GIL
    inside its sorts and array loops, so on two cores the two overlap (about 0.2 s of 1 s on a million
    judgments). Pure numpy: no database access on either thread."""
    counts = _counts(data)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="quality") as pool:
        base = pool.submit(_judgment_figures, data, project, window)
        agreement = pool.submit(_project_figures, data, counts)
        ranking = pool.submit(_battles, data) if project.kind == ProjectKind.PAIRWISE else None
        report("consensus (Dawid-Skene)", 0.35)
        consensus = _consensus(data, counts)
        report("annotator scores and bias tests", 0.55)
        figures = _annotator_figures(data, consensus, project, window, base.result())
        report("agreement", 0.7)
        overall = agreement.result() | {"confusion": _confusion(data, consensus)}
        report("model ranking (Bradley-Terry)", 0.8)
        battles = ranking.result() if ranking is not None else None
    return Computed(consensus, figures, overall, battles)


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


def _num(array: np.ndarray, i: int) -> float | None:
    return _finite(array[i])


# --- The job ----------------------------------------------------------------------------------------------------
def _lock(project_id: int) -> None:
    """Serialise recomputes of one project until the transaction ends (PostgreSQL; SQLite serialises writers)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [0x51A7, project_id])


def _pause_window(project: Project, data: ProjectData) -> tuple[dict[int, AnnotatorScore], np.ndarray]:
    """The stored scores by annotator id, and which judgments count towards a pause: those made after the
    annotator's last un-pause (``evidence_after_id``)."""
    previous = {
        row.annotator_id: row for row in AnnotatorScore.objects.for_org(project.organization_id).filter(project=project)
    }
    if not data.n_judgments:
        return previous, np.zeros(0, dtype=bool)
    after = np.array(
        [previous[a].evidence_after_id if a in previous else 0 for a in data.annotator_ids.tolist()], dtype=np.int64
    )
    return previous, data.j_ids > after[data.j_annotator]


def project_quality_recompute(*, project_id: int, progress: Progress = _no_progress) -> ProjectQuality | None:
    """Recompute and store everything about ``project_id``'s quality; ``None`` when the project is gone."""
    started = time.monotonic()

    def report(step: str, fraction: float) -> None:
        cache.set(progress_key(project_id), {"step": step, "progress": fraction}, timeout=3600)
        progress(step, fraction)

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return None
    _job_update(project, status=RecomputeStatus.RUNNING, started_at=timezone.now(), step="reading", progress=0.0)
    try:
        with transaction.atomic():
            _lock(project.pk)
            report("reading judgments", 0.05)
            data = project_data(project=project)
            previous, window = _pause_window(project, data)
            computed = _compute(data, project, window, report)
            report("saving", 0.9)
            now = timezone.now()
            _write_consensus(project, data, computed.consensus, now)
            _write_scores(project, data, computed.consensus, computed.figures, previous, now)
            _write_rankings(project, computed.battles, now)
            snapshot = _write_snapshot(
                project, data, computed.consensus, computed.overall, now, time.monotonic() - started
            )
    except Exception as error:
        _job_update(project, status=RecomputeStatus.FAILED, finished_at=timezone.now(), error=repr(error)[:2000])
        raise
    report("done", 1.0)
    _job_update(project, status=RecomputeStatus.DONE, finished_at=timezone.now(), step="done", progress=1.0, error="")
    return snapshot


def quality_job_give_up(*, project_id: int, reason: str) -> None:
    """Record that the recompute of ``project_id`` was abandoned (its runs kept killing their worker)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is not None:
        logger.error("quality recompute of project %s abandoned: %s", project_id, reason)
        _job_update(project, status=RecomputeStatus.FAILED, finished_at=timezone.now(), error=reason)


def _job_update(project: Project, **fields: Any) -> None:
    job, _ = QualityJob.objects.get_or_create(project=project, defaults={"organization_id": project.organization_id})
    if fields.get("status") == RecomputeStatus.RUNNING:
        # Counted in the database: two runs starting at once (before the lock) must not both write runs + 1.
        QualityJob.objects.filter(pk=job.pk).update(runs=F("runs") + 1)
    for name, value in fields.items():
        setattr(job, name, value)
    job.save(update_fields=list(fields))


def _batches(rows: list[Any]) -> Any:
    for start in range(0, len(rows), WRITE_BATCH):
        yield rows[start : start + WRITE_BATCH]


def _write_consensus(project: Project, data: ProjectData, consensus: Consensus, now: Any) -> None:
    totals = consensus.counts.sum(axis=1)
    present = np.flatnonzero((totals > 0) | (data.task_gold >= 0))
    if connection.vendor == "postgresql":
        _upsert_consensus_postgres(project, data, consensus, present, totals, now)
    else:
        _upsert_consensus_portable(project, data, consensus, present, totals, now)
    TaskConsensus.objects.for_org(project.organization_id).filter(project=project, computed_at__lt=now).delete()


def _upsert_consensus_portable(
    project: Project, data: ProjectData, consensus: Consensus, present: np.ndarray, totals: np.ndarray, now: Any
) -> None:
    labels = data.labels
    confidence = consensus.posteriors[present, consensus.labels[present]] if present.size else np.empty(0)
    posteriors = np.round(consensus.posteriors[present], 6).tolist()
    rows = [
        TaskConsensus(
            organization_id=project.organization_id,
            project=project,
            task_id=int(data.task_ids[t]),
            label=labels[int(consensus.labels[t])],
            confidence=float(min(max(confidence[i], 0.0), 1.0)),
            posterior=dict(zip(labels, posteriors[i], strict=True)),
            agreement=_num(consensus.agreement, t),
            n_judgments=int(totals[t]),
            method=ConsensusMethod.GOLD if data.task_gold[t] >= 0 else ConsensusMethod.DAWID_SKENE,
            computed_at=now,
        )
        for i, t in enumerate(present.tolist())
    ]
    fields = ["label", "confidence", "posterior", "agreement", "n_judgments", "method", "computed_at"]
    for batch in _batches(rows):
        TaskConsensus.objects.bulk_create(batch, update_conflicts=True, unique_fields=["task"], update_fields=fields)


def _upsert_consensus_postgres(
    project: Project, data: ProjectData, consensus: Consensus, present: np.ndarray, totals: np.ndarray, now: Any
) -> None:
    """The same upsert as the portable path, as one statement whose columns travel as binary arrays.

    It stores what the portable path stores. The posterior object is JSON text parsed by PostgreSQL, as Django's is;
    its numbers are the float8 values rounded to 6 decimals in PostgreSQL's shortest exact form, which is Python's
    ``repr`` with ``extra_float_digits`` above 0, the default (0 and 1 are written ``0.0`` and ``1.0``, as Python
    writes floats). A non-finite agreement is NULL.
    """
    k = len(data.labels)
    label = consensus.labels[present]
    confidence = np.clip(consensus.posteriors[present, label], 0.0, 1.0) if present.size else np.empty(0)
    agreement = consensus.agreement[present]
    posteriors = np.round(consensus.posteriors[present], 6)
    columns = [
        pgarrays.Column(data.task_ids[present], "int8"),
        pgarrays.Column(label, "int4"),
        pgarrays.Column(confidence, "float8"),
        pgarrays.Column(np.where(np.isfinite(agreement), agreement, np.nan), "float8"),
        pgarrays.Column(totals[present], "int4"),
        pgarrays.Column(data.task_gold[present] >= 0, "bool"),
        *(pgarrays.Column(posteriors[:, c], "float8") for c in range(k)),
    ]
    # '{"a": ' || p0 || ', "b": ' || p1 || ... || '}', the text pieces passed as parameters.
    number = "CASE WHEN u.p{0} = 0 THEN '0.0' WHEN u.p{0} = 1 THEN '1.0' ELSE u.p{0}::text END"
    posterior = "".join(f"%s || {number.format(c)} || " for c in range(k)) + "%s"
    pieces = [("{" if c == 0 else ", ") + json.dumps(value) + ": " for c, value in enumerate(data.labels)] + ["}"]
    if k == 0:
        pieces = ["{}"]
    table = TaskConsensus._meta.db_table
    sql = f"""
        INSERT INTO {table} (organization_id, project_id, task_id, label, confidence, posterior, agreement,
                             n_judgments, method, computed_at)
        SELECT %s, %s, u.task_id, (%s::text[])[u.label + 1], u.confidence, ({posterior})::jsonb,
               NULLIF(u.agreement, 'NaN'::float8), u.n, CASE WHEN u.gold THEN %s ELSE %s END, %s
        FROM (
            SELECT unnest(%s::int8[]) AS task_id, unnest(%s::int4[]) AS label, unnest(%s::float8[]) AS confidence,
                   unnest(%s::float8[]) AS agreement, unnest(%s::int4[]) AS n, unnest(%s::bool[]) AS gold
                   {"".join(f", unnest(%s::float8[]) AS p{c}" for c in range(k))}
        ) AS u
        ON CONFLICT (task_id) DO UPDATE SET label = EXCLUDED.label, confidence = EXCLUDED.confidence,
            posterior = EXCLUDED.posterior, agreement = EXCLUDED.agreement, n_judgments = EXCLUDED.n_judgments,
            method = EXCLUDED.method, computed_at = EXCLUDED.computed_at
    """  # noqa: S608 (fragments are constants here; every value is a bound parameter)
    params: list[Any] = [project.organization_id, project.pk, data.labels, *pieces]
    params += [ConsensusMethod.GOLD.value, ConsensusMethod.DAWID_SKENE.value, now, *columns]
    pgarrays.execute(sql, params)


def _write_scores(
    project: Project,
    data: ProjectData,
    consensus: Consensus,
    figures: dict[str, Any],
    previous: dict[int, AnnotatorScore],
    now: Any,
) -> None:
    flags = figures["flags"]
    gold, consistency, peers = figures["gold"], figures["consistency"], figures["peers"]
    position, verbosity = figures.get("position"), figures.get("verbosity")
    ids = data.annotator_ids.tolist()
    peer_map: dict[int, dict[str, float]] = {}
    for first, second, kappa in zip(peers.first.tolist(), peers.second.tolist(), peers.kappa.tolist(), strict=True):
        if np.isfinite(kappa):
            peer_map.setdefault(first, {})[str(ids[second])] = round(kappa, 6)
            peer_map.setdefault(second, {})[str(ids[first])] = round(kappa, 6)
    rows = []
    for i, annotator_id in enumerate(ids):
        old = previous.get(annotator_id)
        reasons = []
        if project.auto_pause and figures["pause_gold"][i]:
            # The annotator reads this reason: no live rate or count of gold tasks, which, set against the day-old
            # figure on their home page, would tell them how many of today's tasks were gold (managers see both on
            # the dashboard).
            reasons.append(f"gold accuracy is below the project's {project.pause_gold_threshold:.0%}")
        if project.auto_pause and figures["pause_random"][i]:
            reasons.append("judgments agree with other annotators about as often as random clicking would")
        paused_at = old.paused_at if old else None
        reason = old.pause_reason if old else ""
        if paused_at is None and reasons:
            paused_at, reason = now, ("Paused automatically: " + "; ".join(reasons) + ".")[:300]
        rows.append(
            AnnotatorScore(
                organization_id=project.organization_id,
                project=project,
                annotator_id=annotator_id,
                n_judgments=int(figures["n"][i]),
                median_seconds=_num(figures["median_seconds"], i),
                gold_n=int(gold.n[i]),
                gold_correct=int(gold.correct[i]),
                gold_accuracy=_num(gold.rate, i),
                gold_low=_num(gold.low, i),
                gold_high=_num(gold.high, i),
                agreement_n=int(figures["agreement_n"][i]),
                agreement=_num(figures["agreement"], i),
                chance_agreement=_num(figures["chance"], i),
                random_p=_num(figures["random_q"], i),
                kappa_mean=_num(figures["kappa_mean"], i),
                peer_kappas=peer_map.get(i, {}),
                skill=_num(consensus.skills, i),
                confusion=np.round(consensus.confusions[i], 6).tolist(),
                position_n=int(position.n[i]) if position else 0,
                position_left_rate=_num(position.rate, i) if position else None,
                position_q=_num(position.q_value, i) if position else None,
                verbosity_n=int(verbosity.n[i]) if verbosity else 0,
                verbosity_rate=_num(verbosity.rate, i) if verbosity else None,
                verbosity_baseline=_num(verbosity.baseline_rate, i) if verbosity else None,
                verbosity_q=_num(verbosity.q_value, i) if verbosity else None,
                self_consistency=_num(consistency.rate, i),
                self_consistency_pairs=int(consistency.pairs[i]),
                random_clicker=bool(flags["random_clicker"][i]),
                position_biased=bool(flags["position_biased"][i]),
                verbosity_biased=bool(flags["verbosity_biased"][i]),
                too_fast=bool(flags["too_fast"][i]),
                low_gold_accuracy=bool(flags["low_gold_accuracy"][i]),
                paused_at=paused_at,
                pause_reason=reason,
                computed_at=now,
            )
        )
    fields = [
        field.name
        for field in AnnotatorScore._meta.concrete_fields
        if field.name
        not in ("id", "organization", "project", "annotator", "unpaused_at", "unpaused_by", "evidence_after_id")
    ]
    for batch in _batches(rows):
        AnnotatorScore.objects.bulk_create(
            batch, update_conflicts=True, unique_fields=["project", "annotator"], update_fields=fields
        )
    # Annotators without judgments any more keep their row only while paused (the pause must stay visible).
    AnnotatorScore.objects.for_org(project.organization_id).filter(
        project=project, computed_at__lt=now, paused_at__isnull=True
    ).delete()


def _write_rankings(project: Project, battles: Battles | None, now: Any) -> None:
    if battles is not None:
        order = np.argsort(-battles.theta, kind="stable")
        rows = [
            ModelRanking(
                organization_id=project.organization_id,
                project=project,
                model_name=battles.models[i][:200],
                rank=rank,
                theta=float(battles.theta[i]),
                low=float(battles.low[i]),
                high=float(battles.high[i]),
                battles=int(battles.wins[i] + battles.losses[i] + battles.ties[i]),
                wins=int(battles.wins[i]),
                losses=int(battles.losses[i]),
                ties=int(battles.ties[i]),
                regularised=battles.regularised,
                computed_at=now,
            )
            for rank, i in enumerate(order.tolist(), start=1)
        ]
        fields = ["rank", "theta", "low", "high", "battles", "wins", "losses", "ties", "regularised", "computed_at"]
        ModelRanking.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["project", "model_name"], update_fields=fields
        )
    ModelRanking.objects.for_org(project.organization_id).filter(project=project, computed_at__lt=now).delete()


def _write_snapshot(
    project: Project, data: ProjectData, consensus: Consensus, overall: dict[str, Any], now: Any, seconds: float
) -> ProjectQuality:
    normal = overall["n_normal"]
    snapshot, _ = ProjectQuality.objects.update_or_create(
        project=project,
        n_judgments=data.n_judgments,
        last_annotation_id=int(data.j_ids.max()) if data.n_judgments else 0,
        defaults={
            "organization_id": project.organization_id,
            "n_tasks": data.n_tasks,
            "n_complete": overall["n_complete"],
            "n_annotators": int(data.annotator_ids.size),
            "completion": overall["n_complete"] / normal if normal else None,
            "fleiss_kappa": overall["fleiss"],
            "fleiss_items": overall["fleiss_items"],
            "krippendorff_alpha": overall["alpha"],
            "percent_agreement": overall["percent"],
            "label_counts": overall["label_counts"],
            "confusion": overall["confusion"],
            "priors": dict(zip(data.labels, np.round(consensus.priors, 6).tolist(), strict=True)),
            "seconds": round(seconds, 3),
            "computed_at": now,
        },
    )
    return snapshot


# --- Scheduling -------------------------------------------------------------------------------------------------
QUALITY_DELAY_SECONDS = 5.0
QUALITY_JOB = "quality-recompute"
# Stats refreshes are coalesced per project too (``labeling.queueing``): a burst of judgments queues a handful.
STATS_REFRESH_DELAY_SECONDS = 2.0
STATS_JOB = "stats-refresh"


def stats_refresh_mark(project_id: int) -> str:
    return coalesced_mark(STATS_JOB, project_id)


def project_stats_request_refresh(*, project_ids: list[int]) -> None:
    """A project's judgments changed: queue its stats refresh once the current transaction commits (coalesced per
    project). The stats job (``quality.jobs.refresh_project_stats_job``) then asks for a quality recompute
    (coalesced too, with a longer delay): the job does both, so ``labeling`` never calls up into ``quality``."""
    for project_id in project_ids:
        schedule_coalesced(
            "quality.jobs.refresh_project_stats_job", project_id, name=STATS_JOB, delay=STATS_REFRESH_DELAY_SECONDS
        )


def quality_request_recompute(*, project_ids: list[int]) -> None:
    """Queue a quality recompute of each project once the current transaction commits, coalesced: while one is
    queued, further requests add nothing (a burst of submissions causes a handful of runs)."""
    if not settings.QUALITY_RECOMPUTE_ON_COMMIT:
        return
    for project_id in project_ids:
        schedule_coalesced(
            "quality.jobs.recompute_project_quality_job", project_id, name=QUALITY_JOB, delay=QUALITY_DELAY_SECONDS
        )


def quality_sweep() -> list[int]:
    """Queue a recompute of every project with judgments newer than its latest snapshot: the catch-up of jobs that
    were lost (a broker restarted empty) or never queued (the broker was down when the judgments committed, see
    ``labeling.queueing``). Those judgments' stats refreshes were lost with them: they are queued again too."""
    stale = stale_project_ids()
    project_stats_request_refresh(project_ids=stale)
    quality_request_recompute(project_ids=stale)
    return stale


# --- Pauses -----------------------------------------------------------------------------------------------------
@transaction.atomic
def annotator_unpause(*, score: AnnotatorScore, actor: Any) -> AnnotatorScore:
    """Lift a quality pause. Judgments made so far no longer count towards a new automatic pause."""
    score = AnnotatorScore.objects.select_for_update().get(pk=score.pk)
    if score.paused_at is None:
        raise ValidationError({"paused": "This annotator is not paused in this project."})
    last = (
        Annotation.objects.for_org(score.organization_id)
        .filter(project_id=score.project_id, annotator_id=score.annotator_id)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    score.paused_at = None
    score.pause_reason = ""
    score.unpaused_at = timezone.now()
    score.unpaused_by = actor
    score.evidence_after_id = max(score.evidence_after_id, last or 0)
    score.save(update_fields=["paused_at", "pause_reason", "unpaused_at", "unpaused_by", "evidence_after_id"])
    return score

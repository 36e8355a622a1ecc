"""The quality recompute job: ``project_quality_recompute`` and the writes that store its results.

It takes a per-project lock, reads every task and judgment into arrays (``quality.selectors.project_data``),
computes with ``quality.services.compute`` (numpy only) and upserts the results in the same transaction. The lock
serialises a duplicate or concurrent run, which then reads the same rows and stores the same values: consensus per
task, scores and flags per annotator (pausing the annotators the figures say should be), a snapshot per data
version and the model leaderboard. Nothing is incremented. ``QualityJob`` records each run's status and progress.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from labeling.models import Project
from quality import pgarrays
from quality.models import (
    AnnotatorScore,
    ConsensusMethod,
    Flag,
    ModelRanking,
    ProjectQuality,
    QualityJob,
    RecomputeStatus,
    TaskConsensus,
)
from quality.selectors import ProjectData, form_answers, project_data
from quality.services import compute
from quality.services.compute import Computed, Consensus, Progress, _finite, _no_progress
from quality.services.leaderboards import Battles

logger = logging.getLogger("concord.jobs")

WRITE_BATCH = 5_000


def progress_key(project_id: int) -> str:
    """The cache key where a running recompute reports its step (read by the dashboard)."""
    return f"concord:quality-progress:{project_id}"


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
            form = form_answers(project=project, data=data)
            previous, window = _pause_window(project, data)
            computed = compute._compute(data, project, window, report, form)
            report("saving", 0.9)
            now = timezone.now()
            _write_consensus(project, data, computed.consensus, now)
            _write_scores(project, data, computed, previous, now)
            _write_rankings(project, computed.battles, now)
            snapshot = _write_snapshot(project, data, computed, now, time.monotonic() - started)
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
    project: Project, data: ProjectData, computed: Computed, previous: dict[int, AnnotatorScore], now: Any
) -> None:
    consensus, figures, form = computed.consensus, computed.figures, computed.form
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
                **{flag.value: bool(flags[flag][i]) for flag in Flag},
                straight_lining_share=_num(form.straight_share, i)
                if form is not None and form.straight_share is not None
                else None,
                form_scores=form.annotators.get(i, {}) if form is not None else {},
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
    project: Project, data: ProjectData, computed: Computed, now: Any, seconds: float
) -> ProjectQuality:
    consensus, overall = computed.consensus, computed.overall
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
            "questions": computed.form.questions if computed.form is not None else {},
            "seconds": round(seconds, 3),
            "computed_at": now,
        },
    )
    return snapshot


def _num(array: np.ndarray, i: int) -> float | None:
    return _finite(array[i])

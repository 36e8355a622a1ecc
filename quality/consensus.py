"""Settling a task: its status, resolution and consensus label from its judgments, as one submit or a bulk import
leaves them.

The vote share decides until the quality engine has scored every judging annotator; from then their fitted
Dawid-Skene confusion matrices and the project's priors (``quality.sql``) give the posterior that decides.

By the primary question's kind (``labeling.questions``): a pairwise or choice label as above; a ranking settles on
its best response (the label is the response ranked first: the share of rankings that agree on the best, or its
posterior); a rating settles on its median (the lower median), once the share of ratings within one point of it
reaches the threshold (the posterior is not used: it would treat neighbouring ratings as disagreeing).
Callers hold the task's row lock (``task_settle``) or let ``tasks_settle`` take the locks in id order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from datetime import datetime

from django.db import transaction
from django.utils import timezone

import numeric
from labeling.db import execute, timestamp
from labeling.models import Project, ProjectKind, Task, TaskResolution, TaskStatus
from quality import sql

RATING = ProjectKind.RATING.value


def task_settle(
    task_id: int,
    project_id: int,
    is_gold: bool,
    now: datetime,
    min_j: int,
    max_j: int,
    threshold: float,
    kind: str,
) -> None:
    """Recount the task's judgments from rows and settle its status (the caller holds the task's lock)."""
    evidence = sql.judgment_evidence(task=task_id)
    counts = dict(Counter(label for label, _ in evidence))
    if is_gold:
        execute(
            "UPDATE labeling_task SET judgment_count = %s, updated_at = %s WHERE id = %s",
            [sum(counts.values()), timestamp(now), task_id],
        )
        return
    status, resolution, consensus_label, extra = consensus_outcome(
        counts,
        min_judgments=min_j,
        max_judgments=max_j,
        threshold=threshold,
        posterior=_posterior(evidence, project_id) if len(evidence) >= min_j and kind != RATING else None,
        ordinal=kind == RATING,
    )
    # completed_at: kept while the task stays complete, set when it becomes complete, cleared if it reopens.
    execute(
        "UPDATE labeling_task SET judgment_count = %s, status = %s, resolution = %s, consensus_label = %s, "
        "extra_judgments = %s, updated_at = %s, "
        "completed_at = CASE WHEN %s THEN COALESCE(completed_at, %s) ELSE NULL END WHERE id = %s",
        [
            sum(counts.values()),
            status,
            resolution,
            consensus_label,
            extra,
            timestamp(now),
            status == TaskStatus.COMPLETE,
            timestamp(now),
            task_id,
        ],
    )


def _posterior(evidence: list[sql.Evidence], project_id: int) -> dict[str, float] | None:
    """The task's Dawid-Skene posterior from the quality recompute's fitted parameters, once every judging
    annotator has been scored there (else ``None``: the vote share decides)."""
    if any(confusion is None for _, confusion in evidence):
        return None
    return _posterior_with(evidence, sql.project_priors(project=project_id))


def _posterior_with(evidence: list[sql.Evidence], priors: Mapping[str, float] | None) -> dict[str, float] | None:
    """``_posterior`` given the project's priors (read once for a whole batch of tasks by ``tasks_settle``)."""
    if any(confusion is None for _, confusion in evidence):
        return None
    labels = list(priors or {})
    if not labels or any(label not in labels for label, _ in evidence):
        return None
    confusions = [confusion for _, confusion in evidence]
    if any(len(confusion) != len(labels) for confusion in confusions):
        return None  # the project's labels changed since the recompute
    given = [labels.index(label) for label, _ in evidence]
    probabilities = numeric.task_posterior(given, confusions, [priors[label] for label in labels])  # type: ignore[index]
    return dict(zip(labels, probabilities.tolist(), strict=True))


def consensus_outcome(
    counts: Mapping[str, int],
    *,
    min_judgments: int,
    max_judgments: int,
    threshold: float,
    posterior: Mapping[str, float] | None = None,
    ordinal: bool = False,
) -> tuple[str, str, str | None, int]:
    """(status, resolution, consensus label, extra judgments) of a normal task with these label counts.

    Below ``min_judgments`` the task stays open. From there, a unique leading label whose share reaches
    ``threshold`` completes it; a tie for the lead never does. When the quality engine has scored every judging
    annotator, ``posterior`` (Dawid-Skene) replaces the vote share: its most probable label completes the task once
    its probability reaches ``threshold``, so two skilled annotators can settle what three careless ones cannot.
    Otherwise it asks for one more judgment, until ``max_judgments``, where it completes with "no consensus".
    ``ordinal`` (ratings, labels are whole numbers): the lower median leads, and its share counts every rating
    within one point of it.
    """
    n = sum(counts.values())
    if n < min_judgments:
        return TaskStatus.OPEN, TaskResolution.NONE, None, 0
    if ordinal:
        values = sorted(int(label) for label, count in counts.items() for _ in range(count))
        median = values[(n - 1) // 2]
        near = sum(1 for value in values if abs(value - median) <= 1)
        if near / n >= threshold:
            return TaskStatus.COMPLETE, TaskResolution.CONSENSUS, str(median), max(0, n - min_judgments)
        if n >= max_judgments:
            return TaskStatus.COMPLETE, TaskResolution.NO_CONSENSUS, None, max(0, n - min_judgments)
        return TaskStatus.OPEN, TaskResolution.NONE, None, n + 1 - min_judgments
    if posterior:
        ranked_posterior = sorted(posterior.items(), key=lambda item: -item[1])
        leader, probability = ranked_posterior[0]
        unique = len(ranked_posterior) == 1 or probability > ranked_posterior[1][1]
        if unique and probability >= threshold:
            return TaskStatus.COMPLETE, TaskResolution.CONSENSUS, leader, max(0, n - min_judgments)
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    leader, top = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0
    if posterior is None and top > runner_up and top / n >= threshold:
        return TaskStatus.COMPLETE, TaskResolution.CONSENSUS, leader, max(0, n - min_judgments)
    if n >= max_judgments:
        return TaskStatus.COMPLETE, TaskResolution.NO_CONSENSUS, None, max(0, n - min_judgments)
    return TaskStatus.OPEN, TaskResolution.NONE, None, n + 1 - min_judgments


def task_progress_refresh(*, task: Task, project: Project) -> Task:
    """Recount ``task``'s judgments from rows and settle its status (after a judgment is deleted, say).

    Takes the task's row lock, like every change to a task's judgments.
    """
    with transaction.atomic():
        locked = Task.objects.for_org(task.organization_id).select_for_update(no_key=True).get(pk=task.pk)
        task_settle(
            locked.pk,
            locked.project_id,
            locked.is_gold,
            timezone.now(),
            project.min_judgments,
            project.max_judgments,
            project.consensus_threshold,
            project.kind,
        )
    task.refresh_from_db()
    return task


def tasks_settle(
    *,
    project: Project,
    task_ids: Collection[int],
    now: datetime | None = None,
    evidence: Mapping[int, list[sql.Evidence]] | None = None,
) -> None:
    """Recount and settle many of ``project``'s tasks at once, exactly as a submit settles one (``task_settle``): for a
    bulk import of judgments, where a query or two per task was the import's whole cost.

    Takes the tasks' row locks in id order (a caller that changed their judgments holds them already), reads every
    task's judgments with their annotators' fitted confusion matrices in one query, decides each task with
    ``consensus_outcome`` (the Dawid-Skene posterior once every judging annotator is scored; the project's priors
    read once) and writes them all with one ``UPDATE … FROM`` the list of outcomes; gold tasks get their count only,
    and ``completed_at`` follows ``task_settle``'s rule. Runs inside the caller's transaction, if any.

    ``evidence``: every judgment of each task, from a caller that holds the tasks' locks and knows them already (an
    import that read the tasks' judgments before writing its own): then they are not read again.
    """
    ids = sorted(set(task_ids))
    if not ids:
        return
    now = now or timezone.now()
    with transaction.atomic():
        gold = sql.tasks_lock(project.pk, ids)
        if evidence is None:
            evidence = sql.batch_evidence(list(gold))
        priors: list[Mapping[str, float] | None] = []  # read on first need, once
        settled: list[sql.Settled] = []
        for task_id, is_gold in gold.items():
            judged = evidence.get(task_id, [])
            if is_gold:
                settled.append(sql.Settled(task_id, len(judged), None, None, None, None, True))
                continue
            posterior = None
            ordinal = project.kind == RATING
            if (
                not ordinal
                and len(judged) >= project.min_judgments
                and all(confusion is not None for _, confusion in judged)
            ):
                if not priors:
                    priors.append(sql.project_priors(project=project.pk))
                posterior = _posterior_with(judged, priors[0])
            status, resolution, consensus_label, extra = consensus_outcome(
                dict(Counter(label for label, _ in judged)),
                min_judgments=project.min_judgments,
                max_judgments=project.max_judgments,
                threshold=project.consensus_threshold,
                posterior=posterior,
                ordinal=ordinal,
            )
            settled.append(sql.Settled(task_id, len(judged), status, resolution, consensus_label, extra, False))
        sql.tasks_settled_write(settled, now)

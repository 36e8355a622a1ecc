"""Dynamic consensus uses the quality engine's Dawid-Skene parameters once the judging annotators are scored."""

from __future__ import annotations

import numpy as np
import pytest
from django.utils import timezone

from labeling.models import Project, Task, TaskStatus
from numeric import dawid_skene, task_posterior
from quality.models import AnnotatorScore, ProjectQuality
from routing.services import next_task
from tests import factories
from tests.conftest import Tenancy
from tests.routing.helpers import annotators, judge

LABELS = ["a", "b", "tie", "both_bad"]


def _confusion(accuracy: float) -> list[list[float]]:
    off = (1 - accuracy) / 3
    return [[accuracy if i == j else off for j in range(4)] for i in range(4)]


def _score(project: Project, annotator: object, accuracy: float) -> None:
    AnnotatorScore.objects.create(
        organization_id=project.organization_id,
        project=project,
        annotator=annotator,
        confusion=_confusion(accuracy),
        computed_at=timezone.now(),
    )


def _snapshot(project: Project) -> None:
    ProjectQuality.objects.create(
        organization_id=project.organization_id,
        project=project,
        n_judgments=0,
        last_annotation_id=0,
        n_tasks=0,
        n_complete=0,
        n_annotators=0,
        priors=dict(zip(LABELS, [0.45, 0.45, 0.05, 0.05], strict=True)),
        computed_at=timezone.now(),
    )


@pytest.mark.parametrize("scored", [False, True])
def test_a_skilled_judgment_outweighs_a_careless_one_once_scored(tenancy: Tenancy, scored: bool) -> None:
    project = factories.make_project(
        tenancy.org_a, name="Dynamic", min_judgments=2, max_judgments=3, consensus_threshold=0.9, gold_rate=0
    )
    task = factories.make_task(project)
    skilled, careless = annotators(tenancy.org_a, 2)
    if scored:
        _snapshot(project)
        _score(project, skilled, 0.97)
        _score(project, careless, 0.26)  # barely better than clicking at random among four
    judge(skilled, project, "a")
    judge(careless, project, "b")
    task.refresh_from_db()
    if scored:
        # P(a) ~ .45 * .97 * .2467 versus P(b) ~ .45 * .01 * .26: far above the 0.9 threshold.
        assert (task.status, task.consensus_label, task.extra_judgments) == (TaskStatus.COMPLETE, "a", 0)
    else:
        # One vote each: the vote share (1/2) cannot settle it; one more judgment is asked for.
        assert (task.status, task.extra_judgments) == (TaskStatus.OPEN, 1)


def test_an_unscored_annotator_falls_back_to_the_vote_share(tenancy: Tenancy) -> None:
    project = factories.make_project(
        tenancy.org_a, name="Fallback", min_judgments=2, max_judgments=3, consensus_threshold=0.9, gold_rate=0
    )
    task: Task = factories.make_task(project)
    skilled, newcomer = annotators(tenancy.org_a, 2)
    _snapshot(project)
    _score(project, skilled, 0.97)
    judge(skilled, project, "a")
    judge(newcomer, project, "b")
    task.refresh_from_db()
    assert (task.status, task.extra_judgments) == (TaskStatus.OPEN, 1)
    assert next_task(annotator=tenancy.annotator_a, project=project) is not None


def test_task_posterior_is_the_dawid_skene_e_step() -> None:
    rng = np.random.default_rng(4)
    items = np.repeat(np.arange(300), 3)
    workers = rng.integers(0, 6, items.size)
    labels = rng.integers(0, 3, items.size)
    fit = dawid_skene(items, workers, labels, n_classes=3)
    for item in (0, 17, 299):
        mine = items == item
        posterior = task_posterior(labels[mine], fit.confusions[workers[mine]], fit.priors)
        # The fit stops when an iteration changes little (tol), so its stored posteriors and parameters are one
        # update apart: equal to well within that.
        assert posterior == pytest.approx(fit.posteriors[item], abs=1e-3)
    assert task_posterior([], np.empty((0, 3, 3)), [0.2, 0.3, 0.5]) == pytest.approx([0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="shape"):
        task_posterior([0], np.ones((2, 3, 3)), [0.5, 0.25, 0.25])
    with pytest.raises(ValueError, match="Labels"):
        task_posterior([3], np.ones((1, 3, 3)), [0.5, 0.25, 0.25])

"""The quality recompute: stored consensus, scores, flags, snapshots and rankings; idempotence; auto-pause."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.forms.models import model_to_dict

from labeling.models import Judgment, Project, Role
from quality.models import AnnotatorScore, ModelRanking, ProjectQuality, QualityJob, RecomputeStatus, TaskConsensus
from quality.services import annotator_unpause, project_quality_recompute
from routing.services import judgment_record, next_task
from tests import factories
from tests.conftest import Tenancy
from tests.quality.population import plant
from tests.services import needs_postgres


@pytest.fixture
def project(tenancy: Tenancy) -> Project:
    return factories.make_project(tenancy.org_a, name="Quality prefs", min_judgments=3, max_judgments=5)


def _stored(project: Project) -> dict[str, Any]:
    drop = {"id", "computed_at", "seconds"}

    def rows(queryset: Any) -> list[dict[str, Any]]:
        return sorted(({k: v for k, v in model_to_dict(row).items() if k not in drop} for row in queryset), key=repr)

    return {
        "consensus": rows(TaskConsensus.objects.filter(project=project)),
        "scores": rows(AnnotatorScore.objects.filter(project=project)),
        "snapshots": rows(ProjectQuality.objects.filter(project=project)),
        "rankings": rows(ModelRanking.objects.filter(project=project)),
    }


def test_recompute_stores_everything_and_a_second_run_stores_the_same(project: Project) -> None:
    planted = plant(project, {f"good{n}": "good" for n in range(5)}, n_tasks=60, per_task=3)
    snapshot = project_quality_recompute(project_id=project.pk)
    assert snapshot is not None
    assert (snapshot.n_judgments, snapshot.n_tasks, snapshot.n_annotators) == (180, 60, 5)
    assert snapshot.fleiss_kappa is not None and 0.3 < snapshot.fleiss_kappa <= 1
    assert snapshot.krippendorff_alpha is not None and snapshot.percent_agreement is not None
    assert sum(snapshot.label_counts.values()) == 180
    consensus = TaskConsensus.objects.filter(project=project)
    assert consensus.count() == 60
    gold = consensus.filter(task__gold_label__isnull=False)
    assert gold.count() == 6 and all(c.method == "gold" and c.label == c.task.gold_label for c in gold)
    truth = {task.pk: "ab"[t] for task, t in zip(planted.tasks, planted.truth, strict=True)}
    correct = sum(c.label == truth[c.task_id] for c in consensus)
    assert correct >= 54  # 3 judges at 85% each: the consensus is right on nearly every task
    for c in consensus:
        assert 0 <= c.confidence <= 1 and abs(sum(c.posterior.values()) - 1) < 1e-4
        assert c.n_judgments == 3
    scores = AnnotatorScore.objects.filter(project=project)
    assert scores.count() == 5
    for score in scores:
        assert score.n_judgments == Judgment.objects.filter(project=project, annotator=score.annotator).count()
        assert score.gold_n > 0 and score.gold_low <= score.gold_accuracy <= score.gold_high
        assert score.skill is not None and score.agreement is not None
        assert score.flags == [] and score.paused_at is None
    rankings = list(ModelRanking.objects.filter(project=project).order_by("rank"))
    assert [r.rank for r in rankings] == [1, 2, 3]
    assert all(r.low <= r.theta <= r.high for r in rankings)
    assert abs(sum(r.theta for r in rankings)) < 1e-9
    before = _stored(project)
    project_quality_recompute(project_id=project.pk)
    assert _stored(project) == before
    assert ProjectQuality.objects.filter(project=project).count() == 1  # same data version: updated, not added
    job = QualityJob.objects.get(project=project)
    assert (job.status, job.runs, job.progress) == (RecomputeStatus.DONE, 2, 1.0)


def test_a_new_judgment_adds_a_snapshot_and_removed_judgments_remove_their_rows(project: Project) -> None:
    planted = plant(project, {f"good{n}": "good" for n in range(4)}, n_tasks=20, per_task=2)
    project_quality_recompute(project_id=project.pk)
    extra = factories.make_member(project.organization, Role.ANNOTATOR)
    judgment_record(task=planted.tasks[1], annotator=extra, label="a", client_id="new", a_left=True)
    project_quality_recompute(project_id=project.pk)
    assert ProjectQuality.objects.filter(project=project).count() == 2
    assert AnnotatorScore.objects.filter(project=project, annotator=extra).exists()
    Judgment.objects.filter(annotator=extra).delete()
    Judgment.objects.filter(task=planted.tasks[2]).delete()
    project_quality_recompute(project_id=project.pk)
    assert not AnnotatorScore.objects.filter(project=project, annotator=extra).exists()
    assert not TaskConsensus.objects.filter(task=planted.tasks[2]).exists()


def test_flags_find_the_planted_annotators(project: Project) -> None:
    behaviours = {f"good{n}": "good" for n in range(8)} | {
        "random": "random",
        "left": "left",
        "position": "position",
        "verbose": "verbose",
        "fast": "fast",
    }
    planted = plant(project, behaviours, n_tasks=1000, per_task=3, seed=3)
    project_quality_recompute(project_id=project.pk)
    flags = {
        name: set(AnnotatorScore.objects.get(project=project, annotator=user).flags)
        for name, user in planted.annotators.items()
    }
    assert "random_clicker" in flags["random"]
    assert {"position_biased", "random_clicker"} <= flags["left"]
    assert "position_biased" in flags["position"]
    assert "verbosity_biased" in flags["verbose"]
    assert flags["fast"] == {"too_fast"}
    assert all(flags[f"good{n}"] == set() for n in range(8))


def test_low_gold_accuracy_pauses_in_that_project_and_a_manager_can_lift_it(tenancy: Tenancy, project: Project) -> None:
    behaviours = {f"good{n}": "good" for n in range(4)} | {"random": "random"}
    planted = plant(project, behaviours, n_tasks=300, per_task=3, gold_every=4, seed=5)
    other = factories.make_project(tenancy.org_a, name="Other prefs")
    factories.make_task(other)
    random_user = planted.annotators["random"]
    factories.make_task(project, "fresh")
    project_quality_recompute(project_id=project.pk)
    score = AnnotatorScore.objects.get(project=project, annotator=random_user)
    assert score.low_gold_accuracy and score.paused_at is not None
    assert "gold accuracy" in score.pause_reason
    # The annotator reads the reason: it names the threshold only, never their live rate or how many gold tasks
    # they had (set against the day-old figure on /work/, that would count today's gold tasks).
    assert score.pause_reason.startswith("Paused automatically: gold accuracy is below the project's 60%")
    assert not any(character.isdigit() for character in score.pause_reason.replace("60%", ""))
    assert next_task(annotator=random_user, project=project) is None  # routing stops here...
    assert next_task(annotator=random_user, project=other) is not None  # ...and only here
    good = AnnotatorScore.objects.get(project=project, annotator=planted.annotators["good0"])
    assert good.paused_at is None

    annotator_unpause(score=score, actor=tenancy.manager_a)
    project_quality_recompute(project_id=project.pk)
    score.refresh_from_db()
    assert score.paused_at is None and score.unpaused_by == tenancy.manager_a  # the old evidence no longer counts
    assert score.low_gold_accuracy  # but the flag still shows what the data says
    assert next_task(annotator=random_user, project=project) is not None


def test_the_command_recomputes_with_a_progress_bar(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    plant(project, {f"good{n}": "good" for n in range(3)}, n_tasks=15, per_task=3)
    call_command("recompute_quality", str(project.pk))
    out, err = capsys.readouterr()
    assert "judgments=45" in out and "fleiss_kappa=" in out
    assert "100%" in err and "#" in err
    with pytest.raises(CommandError, match="does not exist"):
        call_command("recompute_quality", "999999")


def test_a_project_without_judgments_gets_an_empty_snapshot(project: Project) -> None:
    factories.make_task(project)
    snapshot = project_quality_recompute(project_id=project.pk)
    assert snapshot is not None
    assert (snapshot.n_judgments, snapshot.fleiss_kappa, snapshot.krippendorff_alpha) == (0, None, None)
    assert not TaskConsensus.objects.filter(project=project).exists()
    assert project_quality_recompute(project_id=999_999) is None


def test_categorical_projects_get_consensus_and_scores(tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, kind="categorical", name="Sentiment")
    people = [factories.make_member(tenancy.org_a) for _ in range(3)]
    for n in range(12):
        task = factories.make_task(project, gold_label="positive" if n == 0 else None)
        for m, person in enumerate(people):
            label = "negative" if (m == 2 and n % 3 == 0) else "positive" if n % 2 else "neutral"
            judgment_record(task=task, annotator=person, label=label, client_id=f"c{n}-{m}")
    snapshot = project_quality_recompute(project_id=project.pk)
    assert snapshot is not None and snapshot.n_judgments == 36
    assert set(snapshot.label_counts) == {"positive", "negative", "neutral"}
    assert TaskConsensus.objects.filter(project=project).count() == 12
    assert not ModelRanking.objects.filter(project=project).exists()
    assert AnnotatorScore.objects.filter(project=project, position_n=0).count() == 3


def test_repeated_tasks_measure_self_consistency(tenancy: Tenancy, project: Project) -> None:
    """The same pair imported twice (identical payloads) and judged twice by one annotator."""
    person = factories.make_member(tenancy.org_a)
    payload = factories.pairwise_payload(7)
    for n, label in enumerate(["a", "a", "b"]):
        task = factories.make_task(project, f"repeat-{n}", payload=payload)
        judgment_record(task=task, annotator=person, label=label, client_id=f"r{n}", a_left=True)
    project_quality_recompute(project_id=project.pk)
    score = AnnotatorScore.objects.get(project=project, annotator=person)
    # Ordered pairs among three judgments of one item: 6, of which 2 agree (a, a both ways).
    assert (score.self_consistency_pairs, score.self_consistency) == (6, pytest.approx(1 / 3))
    # Three battles between two models have no finite interval without a prior: a small one is added, and said.
    assert list(ModelRanking.objects.filter(project=project).values_list("regularised", flat=True)) == [True, True]


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_store_what_one_run_stores(tenancy: Tenancy) -> None:
    """Two workers recomputing the same project at the same moment: the lock serialises them, and the stored
    result equals a single run's."""
    project = factories.make_project(tenancy.org_a, name="Concurrent prefs")
    plant(project, {f"good{n}": "good" for n in range(6)} | {"random": "random"}, n_tasks=300, per_task=3)
    project_quality_recompute(project_id=project.pk)
    alone = _stored(project)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            project_quality_recompute(project_id=project.pk)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _stored(project) == alone
    assert QualityJob.objects.get(project=project).runs == 3

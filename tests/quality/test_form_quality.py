"""The recompute on a project with a form: each rating question's Krippendorff alpha (against the krippendorff
package), each ranking's Kendall W and annotators' tau (against scipy), leniency, straight-lining, and the
Plackett-Luce model leaderboard (against choix), stored in the snapshot, the scores and the model rankings."""

from __future__ import annotations

import random
from typing import Any

import choix
import krippendorff
import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from scipy import stats

from labeling.apikeys import api_key_create
from labeling.models import ProjectKind
from labeling.services import project_create, task_create
from pages.dashboard import headers
from quality.consensus import consensus_outcome
from quality.models import AnnotatorScore, ModelRanking, ProjectQuality
from quality.services import project_quality_recompute
from routing.services import judgment_record
from tests import factories
from tests.conftest import Tenancy
from tests.forms.rich import RICH_QUESTIONS, rich_task

N_TASKS = 12
MODELS = ["m0", "m1", "m2", "m3"]  # rich_task names response r's model "m<r>"


def _answers(rng: random.Random, who: int, task: int) -> dict[str, Any]:
    order = sorted(range(4), key=lambda r: r + rng.random() * 4)  # m0 tends to win
    if who == 2:  # the straight-liner: the same rating everywhere
        ratings = [4, 4, 4, 4]
    else:
        ratings = [min(7, max(1, 7 - order.index(r) + who - 1 + rng.choice([-1, 0, 0, 1]))) for r in range(4)]
    return {
        "rank": order,
        "helpfulness": ratings,
        "honesty": ratings,
        "harmlessness": ratings,
        "why": "Because the first one is right.",
    }


@pytest.fixture
def rich(tenancy: Tenancy) -> tuple[Any, list[Any], list[tuple[int, int, dict[str, Any]]]]:
    project = project_create(
        organization=tenancy.org_a, name="Rich quality", questions=RICH_QUESTIONS, min_judgments=3, max_judgments=3
    )
    assert project.kind == ProjectKind.RANKING
    annotators = [factories.make_member(tenancy.org_a) for _ in range(3)]
    rng = random.Random(7)
    given = []
    for t in range(N_TASKS):
        row = rich_task(t)
        task = task_create(
            project=project,
            external_id=row["external_id"],
            payload={"messages": row["messages"], "responses": row["responses"]},
        )
        for who, annotator in enumerate(annotators):
            answers = _answers(rng, who, t)
            judgment_record(task=task, annotator=annotator, label="", client_id=f"{t}-{who}", answers=answers)
            given.append((t, who, answers))
    return project, annotators, given


def test_the_recompute_stores_every_questions_figures(rich: Any, django_capture_on_commit_callbacks: Any) -> None:
    project, annotators, given = rich
    snapshot = project_quality_recompute(project_id=project.pk)
    assert isinstance(snapshot, ProjectQuality)
    questions = snapshot.questions
    assert set(questions) == {"rank", "helpfulness", "honesty", "harmlessness", "why", "better"}
    assert questions["why"] == {"kind": "text", "n": N_TASKS * 3} and questions["better"]["n"] == 0

    # Rating alpha: the krippendorff package on the (annotators x task-responses) matrix.
    matrix = np.full((3, N_TASKS * 4), np.nan)
    for t, who, answers in given:
        matrix[who, t * 4 : t * 4 + 4] = answers["helpfulness"]
    for level in ("interval", "ordinal"):
        expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
        assert questions["helpfulness"][f"alpha_{level}"] == pytest.approx(expected, abs=1e-6)

    # Kendall's W per task (all tasks ranked 3 times: equal weights) from scipy's Friedman statistic.
    ws = []
    for t in range(N_TASKS):
        ranks = [[order.index(r) + 1 for r in range(4)] for tt, _, a in given if tt == t for order in [a["rank"]]]
        chi2 = stats.friedmanchisquare(*np.array(ranks).T).statistic
        ws.append(chi2 / (3 * (4 - 1)))
    assert questions["rank"]["kendall_w"] == pytest.approx(np.mean(ws), abs=1e-6)

    scores = {s.annotator_id: s for s in AnnotatorScore.objects.filter(project=project)}
    # Tau of annotator 0 against the leave-one-out consensus (the other two's rank sums), with scipy.
    taus = []
    for t in range(N_TASKS):
        mine = next(a["rank"] for tt, w, a in given if tt == t and w == 0)
        others = [a["rank"] for tt, w, a in given if tt == t and w != 0]
        reference = [sum(o.index(r) for o in others) for r in range(4)]
        taus.append(stats.kendalltau([mine.index(r) for r in range(4)], reference).statistic)
    assert scores[annotators[0].pk].form_scores["rank"]["tau"] == pytest.approx(np.nanmean(taus), abs=1e-4)

    # Leniency: annotator 2 always says 4; the others rate around the order; straight-lining flags annotator 2.
    assert scores[annotators[2].pk].straight_lining and scores[annotators[2].pk].straight_lining_share == 1.0
    assert not scores[annotators[0].pk].straight_lining and scores[annotators[0].pk].straight_lining_share == 0.0
    high, low = scores[annotators[1].pk].form_scores["honesty"], scores[annotators[0].pk].form_scores["honesty"]
    assert high["leniency"] > low["leniency"] and high["low"] <= high["leniency"] <= high["high"]

    # The leaderboard by Plackett-Luce over models, against choix with the same data.
    rankings = [[int(r) for r in a["rank"]] for _, _, a in given]
    board = {row.model_name: row for row in ModelRanking.objects.filter(project=project)}
    assert set(board) == set(MODELS) and not board["m0"].regularised
    theta = choix.opt_rankings(len(MODELS), rankings, alpha=0.0)
    theta = theta - theta.mean()
    for i, name in enumerate(MODELS):
        assert board[name].theta == pytest.approx(theta[i], abs=1e-4)
        assert board[name].low <= board[name].theta <= board[name].high
        assert board[name].battles == N_TASKS * 3
    assert board["m0"].rank == 1


def test_a_plain_project_keeps_empty_question_figures(tenancy: Tenancy) -> None:
    snapshot = project_quality_recompute(project_id=tenancy.project_a.pk)
    assert snapshot is not None and snapshot.questions == {}


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({"5": 2, "6": 1}, ("complete", "consensus", "5")),  # all within one point of the median 5
        ({"1": 1, "4": 1, "7": 1}, ("open", "", None)),  # spread: ask for another
        ({"2": 1, "6": 2}, ("complete", "consensus", "6")),  # 2 of 3 within one point of 6: 0.67 >= 0.6
    ],
)
def test_a_rating_primary_settles_on_its_median_within_one_point(counts: dict[str, int], expected: Any) -> None:
    outcome = consensus_outcome(counts, min_judgments=3, max_judgments=5, threshold=0.6, ordinal=True)
    assert outcome[:3] == expected


def test_a_rating_primary_without_agreement_ends_without_consensus() -> None:
    counts = {"1": 2, "4": 1, "7": 2}
    assert consensus_outcome(counts, min_judgments=3, max_judgments=5, threshold=0.7, ordinal=True)[:3] == (
        "complete",
        "no_consensus",
        None,
    )


def test_a_ranking_primary_settles_on_the_best_response(tenancy: Tenancy) -> None:
    questions = [{"key": "rank", "kind": "ranking", "title": "Rank", "primary": True}]
    project = project_create(organization=tenancy.org_a, name="Ranks", questions=questions, min_judgments=2)
    row = rich_task(0)
    task = task_create(project=project, external_id="t", payload={"prompt": "p", "responses": row["responses"]})
    people = [factories.make_member(tenancy.org_a) for _ in range(3)]
    judgment_record(task=task, annotator=people[0], label="", client_id="1", answers={"rank": [2, 0, 1, 3]})
    judgment_record(task=task, annotator=people[1], label="", client_id="2", answers={"rank": [2, 1, 0, 3]})
    task.refresh_from_db()
    assert (task.status, task.consensus_label) == ("complete", "2")


def test_the_dashboard_shows_each_questions_agreement_and_no_pairwise_columns(
    rich: Any, tenancy: Tenancy, client: Any
) -> None:
    project, _, _ = rich
    project_quality_recompute(project_id=project.pk)
    client.force_login(tenancy.manager_a)
    page = client.get(reverse("quality", args=[project.pk])).content.decode()
    assert 'id="questions-heading"' in page and "Kendall&#x27;s W" in page and "interval" in page
    assert "Left-choice rate" not in page and "Longer-wins rate" not in page
    assert "Straight-lining" in page and "straight-lined 100%" in page
    assert "helpfulness: leniency" in page and "rank: τ" in page
    # A plain pairwise project keeps its columns and shows no questions section.
    project_quality_recompute(project_id=tenancy.project_a.pk)
    page = client.get(reverse("quality", args=[tenancy.project_a.pk])).content.decode()
    assert 'id="questions-heading"' not in page
    titles = {header.title for header in headers("annotator", "asc", pairwise=True)}
    assert {"Left-choice rate", "Longer-wins rate"} <= titles and "Questions" not in titles
    titles = {header.title for header in headers("annotator", "asc", pairwise=False)}
    assert not {"Left-choice rate", "Longer-wins rate"} & titles


def test_the_api_reads_the_question_figures(rich: Any, tenancy: Tenancy) -> None:
    project, _, _ = rich
    project_quality_recompute(project_id=project.pk)
    key = api_key_create(organization=tenancy.org_a, name="reader", read_only=True)[1]
    headers_ = {"Authorization": f"Bearer {key}"}
    body = Client().get(f"/api/v1/projects/{project.pk}/quality", headers=headers_).json()
    assert body["snapshot"]["questions"]["rank"]["kendall_w"] is not None
    rows = Client().get(f"/api/v1/projects/{project.pk}/annotators/", headers=headers_).json()["results"]
    assert sum(row["straight_lining"] for row in rows) == 1 and all("form_scores" in row for row in rows)
    other = api_key_create(organization=tenancy.org_b, name="other")[1]
    response = Client().get(f"/api/v1/projects/{project.pk}/quality", headers={"Authorization": f"Bearer {other}"})
    assert response.status_code == 404

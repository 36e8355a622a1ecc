"""/api/v1/projects/: list, create, retrieve, update; another organization's project answers 404."""

from __future__ import annotations

from typing import Any

import pytest

from labeling.models import Label, Project, ProjectKind
from tests.api.conftest import KeyClient
from tests.conftest import Tenancy

PROJECTS = "/api/v1/projects/"


def post(client: KeyClient, url: str, body: Any) -> Any:
    return client.post(url, body, content_type="application/json")


def test_list_shows_only_the_callers_projects(api_a: KeyClient, api_b: KeyClient, tenancy: Tenancy) -> None:
    names = [row["name"] for row in api_a.get(PROJECTS).json()["results"]]
    assert names == ["Alpha prefs"]
    assert [row["name"] for row in api_b.get(PROJECTS).json()["results"]] == ["Beta prefs"]
    row = api_a.get(PROJECTS).json()["results"][0]
    assert row["kind"] == "pairwise" and [label["value"] for label in row["labels"]] == ["a", "b", "tie", "both_bad"]


def test_create_pairwise_and_categorical(api_a: KeyClient, tenancy: Tenancy) -> None:
    response = post(
        api_a, PROJECTS, {"name": "Helpfulness", "kind": "pairwise", "min_judgments": 2, "max_judgments": 4}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    project = Project.objects.get(pk=body["id"])
    assert project.organization == tenancy.org_a and project.min_judgments == 2 and body["tasks"] == 0
    response = post(
        api_a,
        PROJECTS,
        {
            "name": "Topics",
            "kind": "categorical",
            "labels": [{"value": "news", "title": "News"}, {"value": "ads", "title": "Ads"}],
        },
    )
    assert response.status_code == 201, response.content
    assert list(Label.objects.filter(project_id=response.json()["id"]).values_list("value", flat=True)) == [
        "news",
        "ads",
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "pairwise"}, "name"),
        ({"name": "X", "kind": "ranking"}, "questions"),
        ({"name": "X", "kind": "sorting"}, "kind"),
        ({"name": "X", "kind": "categorical"}, "labels"),
        (
            {
                "name": "X",
                "kind": "categorical",
                "labels": [{"value": "Bad Value!", "title": "t"}, {"value": "b", "title": "B"}],
            },
            "labels",
        ),
        ({"name": "X", "kind": "pairwise", "labels": [{"value": "a", "title": "A"}]}, "labels"),
        ({"name": "X", "kind": "pairwise", "min_judgments": 5, "max_judgments": 2}, "__all__"),
        ({"name": "X", "kind": "pairwise", "consensus_threshold": 0.2}, "consensus_threshold"),
        ({"name": "X", "kind": "pairwise", "colour": "red"}, "colour"),
        (
            {
                "name": "X",
                "kind": "categorical",
                "strength_scale": True,
                "labels": [{"value": "a", "title": "A"}, {"value": "b", "title": "B"}],
            },
            "__all__",
        ),
        ({"name": "Alpha prefs", "kind": "pairwise"}, "__all__"),
    ],
)
def test_create_reports_the_bad_field_and_writes_nothing(api_a: KeyClient, body: dict[str, Any], field: str) -> None:
    before = Project.objects.count()
    response = post(api_a, PROJECTS, body)
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert Project.objects.count() == before


def test_retrieve_and_update(
    api_a: KeyClient, tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    url = f"{PROJECTS}{tenancy.project_a.pk}/"
    assert api_a.get(url).json()["name"] == "Alpha prefs"
    queued: list[int] = []
    from labeling.jobs import refresh_project_ranks_job

    monkeypatch.setattr(refresh_project_ranks_job, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_a.patch(
            url, {"name": "Renamed", "sampling_strategy": "random", "gold_rate": 0.1}, content_type="application/json"
        )
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Renamed" and response.json()["gold_rate"] == 0.1
    tenancy.project_a.refresh_from_db()
    assert tenancy.project_a.sampling_strategy == "random"
    assert queued == [tenancy.project_a.pk]  # a new strategy re-ranks the tasks, after commit
    with django_capture_on_commit_callbacks(execute=True):
        api_a.patch(url, {"name": "Renamed again"}, content_type="application/json")
    assert queued == [tenancy.project_a.pk]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "categorical"}, "kind"),
        ({"gold_rate": 2}, "gold_rate"),
        ({"labels": []}, "labels"),
        ({"name": ""}, "name"),
    ],
)
def test_update_refuses_what_cannot_change(
    api_a: KeyClient, tenancy: Tenancy, body: dict[str, Any], field: str
) -> None:
    response = api_a.patch(f"{PROJECTS}{tenancy.project_a.pk}/", body, content_type="application/json")
    assert response.status_code == 400 and field in response.json(), response.content
    tenancy.project_a.refresh_from_db()
    assert tenancy.project_a.kind == ProjectKind.PAIRWISE and tenancy.project_a.name == "Alpha prefs"


def test_another_organizations_project_is_404_like_a_missing_one(api_b: KeyClient, tenancy: Tenancy) -> None:
    foreign = f"{PROJECTS}{tenancy.project_a.pk}/"
    missing = f"{PROJECTS}{Project.objects.order_by('-pk').first().pk + 100}/"
    for url in (foreign, missing):
        assert api_b.get(url).status_code == 404
        assert api_b.patch(url, {"name": "Hijacked"}, content_type="application/json").status_code == 404
    assert api_b.get(foreign).content == api_b.get(missing).content
    tenancy.project_a.refresh_from_db()
    assert tenancy.project_a.name == "Alpha prefs"

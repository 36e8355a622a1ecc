"""Read endpoints: tasks (filters, pages), judgments, the quality snapshot, annotator scores, the model ranking."""

from __future__ import annotations

from typing import Any

import pytest

from labeling.models import Project
from tests import factories
from tests.api.conftest import KeyClient
from tests.api.test_export import build
from tests.conftest import Tenancy

ENDPOINTS = ("tasks/", "annotations/", "quality", "annotators/", "models")


@pytest.fixture
def project(tenancy: Tenancy) -> Project:
    project = factories.make_project(tenancy.org_a, name="Read prefs", consensus_threshold=0.6)
    build(tenancy.org_a, project)
    factories.make_task(project, "open-1")
    factories.make_task(project, "gold-1", gold_label="a")
    return project


def get(client: KeyClient, project: Project, endpoint: str, **params: Any) -> Any:
    return client.get(f"/api/v1/projects/{project.pk}/{endpoint}", params)


def test_tasks_filters_and_pages(api_a: KeyClient, project: Project) -> None:
    everything = get(api_a, project, "tasks/").json()
    assert len(everything["results"]) == 7 and everything["next"] is None
    complete = get(api_a, project, "tasks/", status="complete").json()["results"]
    assert {row["external_id"] for row in complete} == {"t-a", "t-b", "t-tie", "t-bad", "t-same-model"}
    assert all(row["consensus"] and 0 < row["consensus_confidence"] <= 1 for row in complete)
    assert [row["external_id"] for row in get(api_a, project, "tasks/", gold="true").json()["results"]] == ["gold-1"]
    assert len(get(api_a, project, "tasks/", has_consensus="false").json()["results"]) == 2
    page = get(api_a, project, "tasks/", limit=3).json()
    assert len(page["results"]) == 3 and "after=" in page["next"]
    after = page["results"][-1]["id"]
    rest = get(api_a, project, "tasks/", limit=3, after=after).json()
    assert rest["results"][0]["id"] > after
    assert page["results"][0]["payload"]["prompt"].startswith("Prompt")


@pytest.mark.parametrize(
    "params",
    [
        {"annotator__password": "x"},
        {"status": "done"},
        {"gold": "perhaps"},
        {"limit": "0"},
        {"limit": "x"},
        {"ordering": "-id"},
    ],
)
def test_task_parameters_come_from_an_allow_list(api_a: KeyClient, project: Project, params: dict[str, str]) -> None:
    response = get(api_a, project, "tasks/", **params)
    assert response.status_code == 400 and set(params) & set(response.json()), response.content


def test_judgments_are_listed_with_pseudonyms(api_a: KeyClient, project: Project) -> None:
    rows = get(api_a, project, "annotations/").json()["results"]
    assert len(rows) == 15 and all(row["annotator"].startswith("ann_") and "annotator_id" not in row for row in rows)
    assert get(api_a, project, "annotations/", annotator="x").status_code == 400


def test_quality_annotators_and_models(api_a: KeyClient, project: Project, tenancy: Tenancy) -> None:
    quality = get(api_a, project, "quality").json()
    assert quality["snapshot"]["n_judgments"] == 15 and quality["job"]["status"] == "done"
    annotators = get(api_a, project, "annotators/").json()["results"]
    assert len(annotators) == 3 and all(row["email"].endswith("@example.com") for row in annotators)
    assert {"flags", "paused", "gold_accuracy", "kappa_mean", "position_left_rate"} <= set(annotators[0])
    models = get(api_a, project, "models").json()["results"]
    assert [row["model_name"] for row in models] == sorted(
        (row["model_name"] for row in models), key=lambda m: [r["model_name"] for r in models].index(m)
    )
    assert {row["model_name"] for row in models} == {"alpha", "beta"} and models[0]["rank"] == 1
    assert get(api_a, project, "models", x="1").status_code == 400
    empty = factories.make_project(tenancy.org_a, name="Nothing yet")
    assert get(api_a, empty, "quality").json() == {"snapshot": None, "job": None}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_reads_cross_no_organization(
    api_b: KeyClient, api_read_only: KeyClient, project: Project, endpoint: str
) -> None:
    assert get(api_read_only, project, endpoint).status_code == 200
    foreign = get(api_b, project, endpoint)
    missing = api_b.get(f"/api/v1/projects/{project.pk + 1000}/{endpoint}")
    assert foreign.status_code == missing.status_code == 404 and foreign.content == missing.content
    assert KeyClient(None).get(f"/api/v1/projects/{project.pk}/{endpoint}").status_code == 401

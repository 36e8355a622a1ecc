"""Judgments import (history from another tool) and predictions import."""

from __future__ import annotations

import json
from typing import Any

import pytest

from labeling.models import Annotation, Membership, Project, Role, Task
from tests import factories
from tests.api.conftest import KeyClient
from tests.conftest import Tenancy


def jsonl(rows: list[Any]) -> str:
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def post(
    client: KeyClient, project: Project, what: str, body: str, content_type: str = "application/x-ndjson", **params: str
) -> Any:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.post(
        f"/api/v1/projects/{project.pk}/{what}/import" + (f"?{query}" if query else ""), body, content_type=content_type
    )


@pytest.fixture
def project(tenancy: Tenancy) -> Project:
    project = factories.make_project(tenancy.org_a, name="History", sampling_strategy="margin")
    for n in range(3):
        factories.make_task(project, f"h{n}")
    return project


def judgment(external_id: str, annotator: str, label: str = "a", **extra: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "annotator": annotator,
        "label": label,
        "a_left": True,
        "seconds": 12.5,
        **extra,
    }


def test_judgments_import_creates_annotators_and_settles_tasks(
    api_a: KeyClient, project: Project, tenancy: Tenancy
) -> None:
    rows = [judgment("h0", f"rater{n}@old.example", created_at="2025-01-02T03:04:05Z") for n in range(3)]
    rows.append(judgment("h1", "ls-user-42", "tie"))
    response = post(api_a, project, "annotations", jsonl(rows), create_annotators="1")
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 4
    task = Task.objects.get(project=project, external_id="h0")
    assert task.status == "complete" and task.judgment_count == 3 and task.consensus_label == "a"
    annotation = Annotation.objects.filter(task=task).first()
    assert annotation.created_at.isoformat().startswith("2025-01-02T03:04:05") and annotation.seconds_on_task == 12.5
    member = Membership.objects.get(organization=tenancy.org_a, user__email="rater0@old.example")
    assert member.role == Role.ANNOTATOR and not member.user.has_usable_password()
    assert Membership.objects.filter(user__email="ls-user-42@external.invalid").exists()
    again = post(api_a, project, "annotations", jsonl(rows), create_annotators="1").json()
    assert (again["created"], again["unchanged"]) == (0, 4)
    assert Annotation.objects.filter(project=project).count() == 4


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        (judgment("nope", "x@a.example"), "external_id", "no such task"),
        (judgment("h0", "x@a.example", "maybe"), "label", "not one of this project's labels"),
        ({**judgment("h0", "x@a.example"), "a_left": None}, "a_left", "is required"),
        (judgment("h0", "x@a.example", created_at="yesterday"), "created_at", "ISO 8601"),
        (judgment("h0", "x@a.example", created_at="2999-01-01T00:00:00Z"), "created_at", "in the future"),
        (judgment("h0", "x@a.example", seconds=-1), "seconds", "from 0"),
        (judgment("h0", "not an email!"), "annotator", "e-mail address"),
        (judgment("h0", "x@a.example", strength=2), "strength", "strength scale"),
        (judgment("h0", "x@a.example", mood="good"), "mood", "not a field"),
        (judgment("h0", "annie@a.example", "b"), "annotator", "second time in this file"),
    ],
)
def test_bad_judgment_rows_write_nothing(
    api_a: KeyClient, project: Project, bad: dict[str, Any], field: str, message: str
) -> None:
    rows = [judgment("h0", "annie@a.example"), bad]
    response = post(api_a, project, "annotations", jsonl(rows))
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert any(e["row"] == 2 and e["field"] == field and message in e["message"] for e in errors), errors
    assert not Annotation.objects.filter(project=project).exists()


def test_unknown_annotators_need_the_flag(api_a: KeyClient, project: Project) -> None:
    response = post(api_a, project, "annotations", jsonl([judgment("h0", "stranger@else.example")]))
    assert response.status_code == 400 and "create_annotators" in response.json()["errors"][0]["message"]
    assert not Membership.objects.filter(user__email="stranger@else.example").exists()


def test_judgments_csv(api_a: KeyClient, project: Project) -> None:
    body = "external_id,annotator,label,a_left,seconds\r\nh2,annie@a.example,b,false,3\r\n"
    response = post(api_a, project, "annotations", body, "text/csv")
    assert response.status_code == 200, response.content
    annotation = Annotation.objects.get(project=project)
    assert annotation.a_left is False and annotation.label == "b" and annotation.seconds_on_task == 3


def test_predictions_import_reranks(api_a: KeyClient, project: Project) -> None:
    rows = [{"external_id": "h0", "predictions": 0.95}, {"external_id": "h1", "predictions": {"a": 0.5}}]
    response = post(api_a, project, "predictions", jsonl(rows))
    assert response.status_code == 200 and response.json()["updated"] == 2, response.content
    tasks = {t.external_id: t for t in Task.objects.filter(project=project)}
    assert tasks["h0"].predictions["a"] == 0.95 and tasks["h1"].rank < tasks["h0"].rank  # 0.5 is the least sure
    again = post(api_a, project, "predictions", jsonl(rows)).json()
    assert (again["updated"], again["unchanged"]) == (0, 2)
    csv_body = "external_id,predictions\r\nh2,0.3\r\n"
    assert post(api_a, project, "predictions", csv_body, "text/csv").json()["updated"] == 1


def test_bad_predictions_write_nothing(api_a: KeyClient, project: Project) -> None:
    rows = [
        {"external_id": "h0", "predictions": 0.9},
        {"external_id": "h9", "predictions": 0.1},
        {"external_id": "h1", "predictions": 7},
    ]
    response = post(api_a, project, "predictions", jsonl(rows))
    assert response.status_code == 400
    assert {(e["row"], e["field"]) for e in response.json()["errors"]} == {(2, "external_id"), (3, "predictions")}
    assert Task.objects.get(project=project, external_id="h0").predictions is None


@pytest.mark.parametrize("what", ["annotations", "predictions"])
def test_history_imports_cross_no_organization(
    api_b: KeyClient, api_read_only: KeyClient, project: Project, what: str
) -> None:
    body = jsonl(
        [judgment("h0", "annie@a.example")] if what == "annotations" else [{"external_id": "h0", "predictions": 0.2}]
    )
    foreign = post(api_b, project, what, body)
    missing = api_b.post(
        f"/api/v1/projects/{project.pk + 1000}/{what}/import", body, content_type="application/x-ndjson"
    )
    assert foreign.status_code == missing.status_code == 404 and foreign.content == missing.content
    assert post(api_read_only, project, what, body).status_code == 403
    assert post(api_b.__class__(None), project, what, body).status_code == 401
    assert post(KeyClient(api_read_only.key), project, what, body, mode="upsert").status_code in (400, 403)
    assert not Annotation.objects.filter(project=project).exists()
    assert Task.objects.get(project=project, external_id="h0").predictions is None

"""The judgments import of a project with questions: ``answers`` per row, checked against the row's task like a
submit's (400 naming the row and ``answers.<key>``, nothing written), the label derived from the primary answer."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from labeling.models import Judgment, Project, Task
from tests import factories
from tests.api.conftest import KeyClient
from tests.conftest import Tenancy
from tests.forms.rich import RICH_QUESTIONS, rich_answers, rich_task


def post(client: KeyClient, project: Project, body: str, content_type: str = "application/x-ndjson") -> Any:
    return client.post(
        f"/api/v1/projects/{project.pk}/annotations/import?create_annotators=1", body, content_type=content_type
    )


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(row) for row in rows) + "\n"


@pytest.fixture
def ranked(tenancy: Tenancy) -> Project:
    project = factories.make_project(tenancy.org_a, "ranking", name="Imported ranks", questions=RICH_QUESTIONS)
    for n in (1, 2):
        row = rich_task(n, k=3 + n)  # 4 and 5 responses
        factories.make_task(
            project, row["external_id"], payload={"messages": row["messages"], "responses": row["responses"]}
        )
    return project


def judgment(external_id: str, annotator: str, answers: Any, **extra: Any) -> dict[str, Any]:
    return {"external_id": external_id, "annotator": annotator, "seconds": 30, "answers": answers, **extra}


def test_answers_are_imported_and_give_the_label(api_a: KeyClient, ranked: Project) -> None:
    rows = [
        judgment("rich-1", "r1@old.example", rich_answers([2, 0, 1, 3])),
        judgment("rich-1", "r2@old.example", rich_answers([0, 1, 2, 3]), label="0"),  # the label agrees
        judgment("rich-2", "r1@old.example", rich_answers([4, 3, 2, 1, 0])),
    ]
    response = post(api_a, ranked, jsonl(rows))
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 3
    stored = {
        (task, label): answers
        for task, label, answers in Judgment.objects.filter(project=ranked).values_list(
            "task__external_id", "label", "answers"
        )
    }
    assert set(stored) == {("rich-1", "2"), ("rich-1", "0"), ("rich-2", "4")}
    assert stored[("rich-2", "4")] == rich_answers([4, 3, 2, 1, 0])
    assert Task.objects.get(project=ranked, external_id="rich-1").judgment_count == 2
    again = post(api_a, ranked, jsonl(rows))  # the same file again changes nothing
    assert again.status_code == 200 and again.json()["unchanged"] == 3


def test_bad_answers_are_400_naming_the_row_and_question_and_nothing_is_written(
    api_a: KeyClient, ranked: Project
) -> None:
    short = rich_answers([0, 1, 2, 3])
    short["helpfulness"] = [7, 6, 5]  # 3 ratings for 4 responses
    rows = [
        judgment("rich-1", "ok@old.example", rich_answers([0, 1, 2, 3])),
        judgment("rich-1", "r2@old.example", rich_answers([0, 1, 2, 3]) | {"rank": [0, 1, 2, 2]}),
        judgment("rich-1", "r3@old.example", short),
        judgment("rich-1", "r4@old.example", rich_answers([1, 0, 2, 3]), label="0"),
        {"external_id": "rich-1", "annotator": "r5@old.example", "label": "0"},
        judgment("rich-2", "r6@old.example", rich_answers([0, 1, 2, 3])),  # rich-2 has 5 responses
        judgment("rich-1", "r7@old.example", rich_answers([0, 1, 2, 3]) | {"mood": "fine"}),
        judgment("rich-1", "r8@old.example", rich_answers([0, 1, 2, 3]), a_left=True),
    ]
    response = post(api_a, ranked, jsonl(rows))
    assert response.status_code == 400, response.content
    errors = {(error["row"], error["field"]) for error in response.json()["errors"]}
    assert errors == {
        (2, "answers.rank"),
        (3, "answers.helpfulness"),
        (4, "label"),
        (5, "answers"),
        (6, "answers.rank"),
        (6, "answers.helpfulness"),
        (6, "answers.honesty"),
        (6, "answers.harmlessness"),
        (7, "answers.mood"),
        (8, "a_left"),
    }
    messages = {(error["row"], error["field"]): error["message"] for error in response.json()["errors"]}
    assert "'1'" in messages[(4, "label")] and "rank" in messages[(4, "label")]
    assert not Judgment.objects.filter(project=ranked).exists()


def test_answers_in_csv_are_json_cells(api_a: KeyClient, ranked: Project) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["external_id", "annotator", "answers"])
    writer.writerow(["rich-1", "c1@old.example", json.dumps(rich_answers([3, 2, 1, 0]))])
    response = post(api_a, ranked, buffer.getvalue(), content_type="text/csv")
    assert response.status_code == 200, response.content
    assert Judgment.objects.get(project=ranked).label == "3"
    bad = io.StringIO()
    csv.writer(bad).writerows([["external_id", "annotator", "answers"], ["rich-1", "c2@old.example", "{not json"]])
    refused = post(api_a, ranked, bad.getvalue(), content_type="text/csv")
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "answers"


def test_a_plain_project_refuses_answers(api_a: KeyClient, tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, name="Plain import")
    factories.make_task(project, "p1")
    row = {"external_id": "p1", "annotator": "x@old.example", "label": "a", "a_left": True, "answers": {"a": 1}}
    response = post(api_a, project, jsonl([row]))
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "answers"
    assert not Judgment.objects.filter(project=project).exists()


def test_openapi_describes_the_answers_column(api_a: KeyClient) -> None:
    import yaml

    schema = yaml.safe_load(api_a.get("/api/schema/").content)
    body = schema["paths"]["/api/v1/projects/{project_id}/annotations/import"]["post"]["requestBody"]["content"]
    row = body["application/json"]["schema"]["items"]
    assert "answers.<key>" in row["properties"]["answers"]["description"] and "label" not in row["required"]

"""What the schemathesis fuzzing (``test_fuzz.py``) found, pinned as plain tests: each was a 500 or an answer the
schema did not document."""

from __future__ import annotations

import json

import pytest
import yaml

from labeling.models import Judgment, Project
from tests.api.conftest import KeyClient
from tests.conftest import Tenancy


def test_a_judgment_at_a_time_that_does_not_exist_is_a_row_error(api_a: KeyClient, tenancy: Tenancy) -> None:
    # parse_datetime raises ValueError for a well-formed time with minute 61: was a 500.
    row = {"external_id": "a-1", "annotator": "annie@a.example", "label": "a", "a_left": True}
    body = json.dumps([{**row, "created_at": "2025-03-01T12:61:00Z"}])
    response = api_a.post(
        f"/api/v1/projects/{tenancy.project_a.pk}/annotations/import", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert [(error["row"], error["field"]) for error in response.json()["errors"]] == [(1, "created_at")]
    assert not Judgment.objects.exists()


@pytest.mark.parametrize("gold", [{"a": 1}, ["a"]])
def test_a_gold_answer_that_is_not_text_is_a_row_error(api_a: KeyClient, tenancy: Tenancy, gold: object) -> None:
    # An object or a list was looked up in the set of labels (unhashable: TypeError): was a 500.
    row = {"external_id": "g-1", "prompt": "Q", "response_a": "A", "response_b": "B", "gold": gold}
    response = api_a.post(
        f"/api/v1/projects/{tenancy.project_a.pk}/tasks/import", json.dumps([row]), content_type="application/json"
    )
    assert response.status_code == 400
    assert [(error["row"], error["field"]) for error in response.json()["errors"]] == [(1, "gold")]


def test_two_labels_with_one_value_are_a_400(api_a: KeyClient) -> None:
    # The unique constraint on (project, value) raised IntegrityError: was a 500.
    labels = [{"value": "spam", "title": "Spam"}, {"value": "spam", "title": "Also spam"}]
    response = api_a.post(
        "/api/v1/projects/", {"name": "Twice", "kind": "categorical", "labels": labels}, content_type="application/json"
    )
    assert response.status_code == 400 and "labels" in response.json()
    assert not Project.objects.filter(name="Twice").exists()


@pytest.mark.parametrize("path", ["/api/v1/projects/abc/", "/api/v1/projects/-1/tasks/", "/api/v1/nothing-here"])
def test_an_api_url_that_matches_no_route_answers_json(api_a: KeyClient, path: str) -> None:
    response = api_a.get(path)
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_a_page_that_does_not_exist_is_still_the_html_page(api_a: KeyClient) -> None:
    response = api_a.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_every_operation_documents_its_error_answers(api_a: KeyClient) -> None:
    schema = yaml.safe_load(api_a.get("/api/schema/").content)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            expected = {"400", "401", "403", "429"} | ({"404"} if "{" in path else set())
            assert expected <= codes, (method, path, codes)
    tasks_import = schema["paths"]["/api/v1/projects/{project_id}/tasks/import"]["post"]["responses"]
    assert {"200", "202", "413"} <= set(tasks_import)
    assert tasks_import["400"]["content"]["application/json"]["schema"] == {
        "anyOf": [{"$ref": "#/components/schemas/ImportReport"}, {"$ref": "#/components/schemas/ValidationError"}]
    }
    assert schema["components"]["schemas"]["ProjectCreateRequest"]["additionalProperties"] is False

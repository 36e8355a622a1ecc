"""Query parameters across the API: one allow-list and one flag parser, so every endpoint answers an unknown
parameter, or a flag that is not a boolean, with the same words and the same body."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from api.base import flag_parameter
from labeling.models import Judgment, Project, Task
from tests import factories
from tests.api.conftest import KeyClient
from tests.conftest import Tenancy


@pytest.fixture
def project(tenancy: Tenancy) -> Project:
    project = factories.make_project(tenancy.org_a, name="Parameters")
    factories.make_task(project, "p0")
    return project


def call(client: KeyClient, project: Project, method: str, endpoint: str, params: dict[str, str]) -> Any:
    query = "&".join(f"{name}={value}" for name, value in params.items())
    url = f"/api/v1/projects/{project.pk}/{endpoint}?{query}"
    if method == "get":
        return client.get(url)
    row = {"external_id": "p0", "annotator": "stranger@else.example", "label": "a", "a_left": True, "seconds": 3}
    if endpoint == "tasks/import":
        row = {"external_id": "p1", "prompt": "Q", "response_a": "A", "response_b": "B"}
    return client.post(url, json.dumps(row) + "\n", content_type="application/x-ndjson")


def flag(word: str | None) -> bool | None:
    return flag_parameter(Request(APIRequestFactory().get("/", {} if word is None else {"flag": word})), "flag")


@pytest.mark.parametrize("word", ["true", "TRUE", "True", "1", "yes", "Yes"])
def test_a_flag_is_true_in_any_case(word: str) -> None:
    assert flag(word) is True


@pytest.mark.parametrize("word", ["false", "FALSE", "0", "no", "NO"])
def test_a_flag_is_false_in_any_case(word: str) -> None:
    assert flag(word) is False


def test_an_absent_flag_is_none() -> None:
    assert flag(None) is None


@pytest.mark.parametrize("word", ["", "maybe", "2", "on", " true"])
def test_any_other_word_is_refused_naming_the_flag(word: str) -> None:
    with pytest.raises(ValidationError) as refused:
        flag(word)
    assert refused.value.detail == {"flag": ["must be true or false"]}


@pytest.mark.parametrize(
    ("method", "endpoint", "name", "extra"),
    [
        ("get", "tasks/", "gold", {}),
        ("get", "tasks/", "has_consensus", {}),
        ("get", "export", "include_gold", {"format": "consensus"}),
        ("get", "export/summary", "include_gold", {"format": "consensus"}),
        ("post", "tasks/import", "async", {}),
        ("post", "annotations/import", "async", {}),
        ("post", "annotations/import", "create_annotators", {}),
        ("post", "predictions/import", "async", {}),
    ],
)
def test_every_flag_refuses_other_words_with_one_message(
    api_a: KeyClient, project: Project, method: str, endpoint: str, name: str, extra: dict[str, str]
) -> None:
    response = call(api_a, project, method, endpoint, {**extra, name: "maybe"})
    assert response.status_code == 400 and response.json() == {name: ["must be true or false"]}, response.content
    assert not Task.objects.filter(external_id="p1").exists() and not Judgment.objects.exists()


def test_the_import_flags_take_the_words_the_read_flags_take(api_a: KeyClient, project: Project) -> None:
    tasks = call(api_a, project, "post", "tasks/import", {"async": "No"})
    assert tasks.status_code == 200 and tasks.json()["created"] == 1, tasks.content
    judgments = call(api_a, project, "post", "annotations/import", {"async": "false", "create_annotators": "YES"})
    assert judgments.status_code == 200 and judgments.json()["created"] == 1, judgments.content


@pytest.mark.parametrize(
    ("method", "endpoint", "extra"),
    [
        ("get", "", {}),
        ("get", "tasks/", {}),
        ("get", "annotations/", {}),
        ("get", "quality", {}),
        ("get", "annotators/", {}),
        ("get", "models", {}),
        ("get", "export", {"format": "consensus"}),
        ("get", "export/summary", {"format": "consensus"}),
        ("post", "tasks/import", {}),
        ("post", "annotations/import", {}),
        ("post", "predictions/import", {}),
    ],
)
def test_every_endpoint_names_each_unknown_parameter_alike(
    api_a: KeyClient, project: Project, method: str, endpoint: str, extra: dict[str, str]
) -> None:
    response = call(api_a, project, method, endpoint, {**extra, "ordering": "-id", "annotator__password": "x"})
    refused = ["is not a parameter of this endpoint"]
    assert response.status_code == 400, response.content
    assert response.json() == {"annotator__password": refused, "ordering": refused}

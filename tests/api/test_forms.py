"""A project with a form, end to end through the API and the submit: questions created and read back, tasks with
conversations and K responses imported, answers validated on the server (400 naming the question, nothing
written), the primary answer filling the label, and another organization answered 404."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.core.exceptions import ValidationError

from labeling.models import Judgment, Label, Project, Question, Task
from routing.services import judgment_submit, next_task
from tests.api.conftest import KeyClient
from tests.conftest import Tenancy
from tests.forms.rich import RICH_QUESTIONS, rich_answers, rich_task

PROJECTS = "/api/v1/projects/"


def post(client: KeyClient, url: str, body: Any, **kwargs: Any) -> Any:
    return client.post(url, body, content_type="application/json", **kwargs)


def _rich_project(api: KeyClient, **settings: Any) -> dict[str, Any]:
    response = post(api, PROJECTS, {"name": "Rich", "questions": RICH_QUESTIONS, "min_judgments": 2, **settings})
    assert response.status_code == 201, response.content
    return response.json()


def _import(api: KeyClient, project_id: int, rows: list[dict[str, Any]]) -> Any:
    body = b"\n".join(orjson.dumps(row) for row in rows)
    return api.post(f"{PROJECTS}{project_id}/tasks/import?format=jsonl", body, content_type="application/x-ndjson")


def test_a_form_is_created_read_back_and_its_kind_is_the_primarys(api_a: KeyClient, tenancy: Tenancy) -> None:
    body = _rich_project(api_a)
    assert body["kind"] == "ranking"
    assert [q["key"] for q in body["questions"]] == ["rank", "helpfulness", "honesty", "harmlessness", "why", "better"]
    rating = body["questions"][1]
    assert rating == {
        "key": "helpfulness",
        "kind": "rating",
        "title": "Helpfulness of each response",
        "help": "",
        "required": True,
        "primary": False,
        "min": 1,
        "max": 7,
        "anchors": {"1": "Very poor", "7": "Excellent"},
        "per_response": True,
    }
    assert Question.objects.filter(project_id=body["id"]).count() == 6
    assert sorted(Label.objects.filter(project_id=body["id"]).values_list("value", flat=True)) == list("012345678")
    assert api_a.get(f"{PROJECTS}{body['id']}/").json()["questions"] == body["questions"]
    # Existing projects: no stored questions, the implied one.
    pairwise = api_a.get(f"{PROJECTS}{tenancy.project_a.pk}/").json()
    assert pairwise["questions"] == [] and pairwise["kind"] == "pairwise"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "bogus"}, "questions[0].kind"),
        ({"primary": False}, "questions"),
        ({"key": "Rank"}, "questions[0].key"),
        ({"options": ["a", "b"]}, "questions[0].options"),
    ],
)
def test_a_bad_form_is_a_400_naming_the_question(
    api_a: KeyClient, tenancy: Tenancy, change: dict[str, Any], field: str
) -> None:
    questions = [dict(RICH_QUESTIONS[0], **change), *RICH_QUESTIONS[1:]]
    response = post(api_a, PROJECTS, {"name": "Bad", "questions": questions})
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not Project.objects.filter(name="Bad").exists()


def test_bad_forms_by_setting(api_a: KeyClient, tenancy: Tenancy) -> None:
    cases = [
        ([{"key": "r", "kind": "rating", "title": "R", "primary": True, "min": 3, "max": 2}], "questions[0].max"),
        ([{"key": "t", "kind": "text", "title": "T", "primary": True}], "questions[0].primary"),
        ([{"key": "r", "kind": "rating", "title": "R", "primary": True, "min": -2, "max": 2}], "questions[0].min"),
        (
            [{"key": "r", "kind": "ranking", "title": "R", "primary": True, "per_response": True}],
            "questions[0].per_response",
        ),
        (
            [
                {"key": "c", "kind": "choice", "title": "C", "primary": True, "options": ["x", "y"]},
                {"key": "r", "kind": "ranking", "title": "R"},
            ],
            "questions",
        ),
        ([{"key": "p", "kind": "pairwise", "title": "P", "primary": True}] * 2, "questions"),
    ]
    for questions, field in cases:
        response = post(api_a, PROJECTS, {"name": "Bad", "questions": questions})
        assert response.status_code == 400 and field in response.json(), (questions, response.content)
    response = post(api_a, PROJECTS, {"name": "Bad", "kind": "pairwise", "questions": RICH_QUESTIONS})
    assert response.status_code == 400 and "kind" in response.json()
    response = post(api_a, PROJECTS, {"name": "Bad", "kind": "ranking"})
    assert response.status_code == 400 and "questions" in response.json()


def test_tasks_with_conversations_and_responses_import_and_bad_rows_are_named(
    api_a: KeyClient, tenancy: Tenancy
) -> None:
    project = _rich_project(api_a)
    response = _import(api_a, project["id"], [rich_task(i) for i in range(3)])
    assert response.status_code == 200, response.content
    task = Task.objects.get(project_id=project["id"], external_id="rich-0")
    assert len(task.payload["responses"]) == 4 and task.payload["messages"][1]["role"] == "user"
    bad_rows = [
        {"external_id": "x1", "prompt": "p", "responses": [{"text": "only one"}]},
        {"external_id": "x2", "prompt": "p", "messages": [{"role": "user", "content": "q"}], "responses": []},
        {"external_id": "x3", "messages": [{"role": "robot", "content": "q"}], "responses": [{"text": "a"}] * 2},
        {"external_id": "x4", "prompt": "p", "responses": [{"text": "a", "score": 1}, {"text": "b"}]},
        {"external_id": "x5", "prompt": "p", "response_a": "a", "response_b": "b"},
    ]
    response = _import(api_a, project["id"], bad_rows)
    assert response.status_code == 400, response.content
    errors = {(e["row"], e["field"]) for e in response.json()["errors"]}
    expected = {(1, "responses"), (2, "messages"), (3, "messages[0].role"), (4, "responses[0]"), (5, "response_a")}
    assert expected <= errors
    assert not Task.objects.filter(project_id=project["id"], external_id__startswith="x").exists()


def _lease_for(tenancy: Tenancy, project_id: int, annotator: Any) -> Any:
    project = Project.objects.get(pk=project_id)
    project.gold_rate = 0
    project.save()
    lease = next_task(annotator=annotator, project=project)
    assert lease is not None
    return lease


def test_a_submit_stores_answers_and_the_primary_fills_the_label(api_a: KeyClient, tenancy: Tenancy) -> None:
    project = _rich_project(api_a)
    _import(api_a, project["id"], [rich_task(0)])
    lease = _lease_for(tenancy, project["id"], tenancy.annotator_a)
    assert sorted(lease.response_order) == list(range(9))
    answers = rich_answers([2, 0, 3, 1])
    judgment = judgment_submit(lease=lease, answers=answers, client_id="c1", seconds=12.0, actor=tenancy.annotator_a)
    judgment.refresh_from_db()
    assert judgment.label == "2" and judgment.answers == answers
    assert judgment.response_order == [i for i in lease.response_order if i < 4]
    # The same client id again: the same row.
    again = judgment_submit(lease=lease, answers=answers, client_id="c1", seconds=13.0, actor=tenancy.annotator_a)
    assert again.pk == judgment.pk and Judgment.objects.filter(task=lease.task).count() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"rank": [0, 1, 2]}, "answers.rank"),
        ({"rank": [0, 1, 2, 2]}, "answers.rank"),
        ({"rank": "0,1,2,3"}, "answers.rank"),
        ({"helpfulness": [1, 2, 3, 8]}, "answers.helpfulness"),
        ({"honesty": [1, 2, 3]}, "answers.honesty"),
        ({"harmlessness": [1, 2, 3, True]}, "answers.harmlessness"),
        ({"why": "short"}, "answers.why"),
        ({"why": "x" * 2001}, "answers.why"),
        ({"better": {"text": "fine answer here", "source": 4}}, "answers.better"),
        ({"better": "plain text"}, "answers.better"),
        ({"extra": 1}, "answers.extra"),
        ({"rank": None}, "answers.rank"),
    ],
)
def test_a_bad_answer_is_refused_naming_the_question_and_writes_nothing(
    api_a: KeyClient, tenancy: Tenancy, change: dict[str, Any], field: str
) -> None:
    project = _rich_project(api_a)
    _import(api_a, project["id"], [rich_task(0)])
    lease = _lease_for(tenancy, project["id"], tenancy.annotator_a)
    answers = rich_answers([0, 1, 2, 3]) | change
    with pytest.raises(ValidationError) as error:
        judgment_submit(lease=lease, answers=answers, client_id="c1", seconds=5.0, actor=tenancy.annotator_a)
    assert field in error.value.message_dict
    assert not Judgment.objects.filter(task=lease.task).exists()
    lease.refresh_from_db()
    assert lease.state == "active"


def test_a_form_project_refuses_a_bare_label(api_a: KeyClient, tenancy: Tenancy) -> None:
    project = _rich_project(api_a)
    _import(api_a, project["id"], [rich_task(0)])
    lease = _lease_for(tenancy, project["id"], tenancy.annotator_a)
    with pytest.raises(ValidationError) as error:
        judgment_submit(lease=lease, label="0", client_id="c1", seconds=5.0, actor=tenancy.annotator_a)
    assert "answers" in error.value.message_dict


def test_another_organization_cannot_see_or_change_the_form(
    api_a: KeyClient, api_b: KeyClient, tenancy: Tenancy
) -> None:
    project = _rich_project(api_a)
    url = f"{PROJECTS}{project['id']}/"
    assert api_b.get(url).status_code == 404
    response = api_b.patch(url, {"questions": RICH_QUESTIONS[:1]}, content_type="application/json")
    assert response.status_code == 404
    assert Question.objects.filter(project_id=project["id"]).count() == 6


def test_the_form_can_change_until_the_first_judgment(api_a: KeyClient, tenancy: Tenancy) -> None:
    project = _rich_project(api_a)
    url = f"{PROJECTS}{project['id']}/"
    response = api_a.patch(url, {"questions": RICH_QUESTIONS[:2]}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert [q["key"] for q in response.json()["questions"]] == ["rank", "helpfulness"]
    _import(api_a, project["id"], [rich_task(0)])
    lease = _lease_for(tenancy, project["id"], tenancy.annotator_a)
    answers = {"rank": [0, 1, 2, 3], "helpfulness": [7, 6, 5, 4]}
    judgment_submit(lease=lease, answers=answers, client_id="c1", seconds=5.0, actor=tenancy.annotator_a)
    response = api_a.patch(url, {"questions": RICH_QUESTIONS}, content_type="application/json")
    assert response.status_code == 400 and "questions" in response.json()
    assert Question.objects.filter(project_id=project["id"]).count() == 2


def test_the_judgments_list_carries_answers_for_a_form_project_only(api_a: KeyClient, tenancy: Tenancy) -> None:
    project = _rich_project(api_a)
    _import(api_a, project["id"], [rich_task(0)])
    lease = _lease_for(tenancy, project["id"], tenancy.annotator_a)
    answers = rich_answers([1, 0, 2, 3])
    judgment_submit(lease=lease, answers=answers, client_id="c1", seconds=5.0, actor=tenancy.annotator_a)
    rows = api_a.get(f"{PROJECTS}{project['id']}/annotations/").json()["results"]
    assert rows[0]["answers"] == answers and rows[0]["label"] == "1" and len(rows[0]["response_order"]) == 4
    plain = api_a.get(f"{PROJECTS}{tenancy.project_a.pk}/annotations/").json()["results"]
    assert all("answers" not in row for row in plain)


def test_a_rankings_gold_is_the_best_response_of_the_task(api_a: KeyClient, tenancy: Tenancy) -> None:
    project = _rich_project(api_a)
    rows = [rich_task(0) | {"gold": [2, 0, 1, 3]}, rich_task(1) | {"gold": 3}, rich_task(2) | {"gold": 4}]
    response = _import(api_a, project["id"], rows)
    assert response.status_code == 400, response.content
    assert [(e["row"], e["field"]) for e in response.json()["errors"]] == [(3, "gold")]
    response = _import(api_a, project["id"], rows[:2])
    assert response.status_code == 200, response.content
    gold = dict(Task.objects.filter(project_id=project["id"]).values_list("external_id", "gold_label"))
    assert gold == {"rich-0": "2", "rich-1": "3"}


def test_new_option_titles_and_keys_reach_the_labels_once_the_project_has_tasks(
    api_a: KeyClient, tenancy: Tenancy
) -> None:
    def form(titles: tuple[str, str], keys: tuple[str, str]) -> list[dict[str, Any]]:
        options = [
            {"value": value, "title": title, "shortcut": key}
            for value, title, key in zip(("yes", "no"), titles, keys, strict=True)
        ]
        return [{"key": "ok", "kind": "choice", "title": "OK?", "primary": True, "options": options}]

    response = post(api_a, PROJECTS, {"name": "Choice form", "questions": form(("Yes", "No"), ("1", "2"))})
    assert response.status_code == 201, response.content
    project_id = response.json()["id"]
    Task.objects.create(organization=tenancy.org_a, project_id=project_id, external_id="t", payload={"text": "x"})
    response = api_a.patch(
        f"{PROJECTS}{project_id}/",
        {"questions": form(("Acceptable", "Not acceptable"), ("y", "n"))},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    labels = Label.objects.filter(project_id=project_id).order_by("position")
    assert list(labels.values_list("value", "title", "shortcut")) == [
        ("yes", "Acceptable", "y"),
        ("no", "Not acceptable", "n"),
    ]

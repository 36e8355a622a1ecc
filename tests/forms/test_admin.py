"""Issue 17 in the customer admin: a project's form (its questions) is created and edited as one form, checked by
the API's rules (each problem names the question, nothing is written), frozen once the project has judgments, and
kept inside the organization; judgments show their answers, tasks accept the new payload shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from labeling.models import Judgment, Label, Project, ProjectKind, Question, Task
from labeling.questions import questions_parse
from labeling.selectors import project_stored_questions
from labeling.services import project_create, task_create
from routing.models import ProjectRequirement
from routing.services import judgment_submit, next_task, qualification_create
from tests.conftest import Tenancy
from tests.forms.rich import RICH_QUESTIONS, rich_answers, rich_task
from tests.labeling.test_admin_tenancy import admin_url, form_data, snapshot

#: The admin's text formats for options and anchors (one a line); JSON is accepted too.
LINE_OPTIONS = "harmful | Harmful | h\nsafe | Safe |\nunsure"


def _questions_data(questions: list[dict[str, Any]], *, initial: int = 0) -> dict[str, Any]:
    """The inline rows a browser posts for ``questions`` (the API's shape), after ``initial`` saved rows."""
    data: dict[str, Any] = {}
    for offset, question in enumerate(questions):
        prefix = f"questions-{initial + offset}-"
        row = {
            "id": "",
            "key": question["key"],
            "kind": question["kind"],
            "title": question["title"],
            "help": question.get("help", ""),
            "position": str(initial + offset),
            "options": question.get("options", ""),
            "min_value": question.get("min", ""),
            "max_value": question.get("max", ""),
            "anchors": "\n".join(f"{k} | {v}" for k, v in question.get("anchors", {}).items()),
            "min_length": question.get("min_length", ""),
            "max_length": question.get("max_length", ""),
        }
        if not isinstance(row["options"], str):
            row["options"] = json.dumps(row["options"])
        for flag, default in (("required", True), ("primary", False), ("per_response", False), ("allow_ties", False)):
            if question.get(flag, default):
                row[flag] = "on"
        data |= {prefix + name: str(value) for name, value in row.items()}
    data["questions-TOTAL_FORMS"] = str(initial + len(questions))
    return data


def _add_data(client: Client, questions: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    data = form_data(client.get(admin_url(Project, "add")))
    assert data["questions-TOTAL_FORMS"] == "0"
    return data | {"name": "Rich", "kind": ""} | fields | _questions_data(questions)


def _errors(response: Any) -> list[str]:
    """Every error the page shows: the project form's, each inline's (non-form first, then the rows')."""
    assert response.status_code == 200, f"expected the form again with errors, got {response.status_code}"
    errors = [str(e) for field_errors in response.context["adminform"].form.errors.values() for e in field_errors]
    for inline in response.context["inline_admin_formsets"]:
        errors += list(inline.formset.non_form_errors())
        errors += [
            f"{name}: {e}" for form_errors in inline.formset.errors for name, es in form_errors.items() for e in es
        ]
    assert errors, "the form was expected to have errors"
    return errors


def _everything() -> dict[str, Any]:
    return snapshot() | {"questions": list(Question.objects.order_by("pk").values())}


def _rich_project(tenancy: Tenancy, **options: Any) -> Project:
    return project_create(organization=tenancy.org_a, name="Rich", questions=RICH_QUESTIONS, **options)


def _judged(tenancy: Tenancy, project: Project) -> Judgment:
    task_create(project=project, external_id="rich-0", payload={k: rich_task(0)[k] for k in ("messages", "responses")})
    lease = next_task(annotator=tenancy.annotator_a, project=project)
    assert lease is not None
    return judgment_submit(
        lease=lease, answers=rich_answers([2, 0, 3, 1]), client_id="c-1", seconds=30, actor=tenancy.annotator_a
    )


# --- Creating a project with its form ------------------------------------------------------------------------
def test_admin_creates_a_ranking_project_with_the_rich_form(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    response = client.post(admin_url(Project, "add"), _add_data(client, RICH_QUESTIONS))
    assert response.status_code == 302, _errors(response)
    project = Project.objects.get(name="Rich")
    assert (project.organization, project.kind) == (tenancy.org_a, ProjectKind.RANKING)
    expected, errors = questions_parse(RICH_QUESTIONS)
    assert not errors
    assert project_stored_questions(project=project) == expected
    assert set(Question.objects.filter(project=project).values_list("organization_id", flat=True)) == {tenancy.org_a.pk}
    labels = Label.objects.filter(project=project).order_by("position")
    assert [label.value for label in labels] == list("012345678")
    # The change page shows the form back in the same formats; saved untouched, nothing changes.
    page = client.get(admin_url(project, "change"))
    assert "labels (the primary question&#x27;s answers)" in page.content.decode().lower()
    data = form_data(page)
    assert data["questions-TOTAL_FORMS"] == "6"
    assert data["questions-1-anchors"] == "1 | Very poor\n7 | Excellent"
    rows = list(Question.objects.filter(project=project).order_by("pk").values_list("pk", flat=True))
    response = client.post(admin_url(project, "change"), data | {"_save": "Save"})
    assert response.status_code == 302, _errors(response)
    assert list(Question.objects.filter(project=project).order_by("pk").values_list("pk", flat=True)) == rows


def test_a_choice_primary_makes_a_categorical_project_with_its_options_as_labels(
    client: Client, tenancy: Tenancy
) -> None:
    questions = [
        {"key": "safety", "kind": "choice", "title": "Is it safe?", "primary": True, "options": LINE_OPTIONS},
        {"key": "notes", "kind": "text", "title": "Notes", "required": False, "max_length": 500},
    ]
    client.force_login(tenancy.manager_a)  # a manager edits projects too
    response = client.post(admin_url(Project, "add"), _add_data(client, questions, kind=ProjectKind.CATEGORICAL))
    assert response.status_code == 302, _errors(response)
    project = Project.objects.get(name="Rich")
    assert project.kind == ProjectKind.CATEGORICAL
    primary, notes = project_stored_questions(project=project)
    assert [(o.value, o.title, o.shortcut) for o in primary.options] == [
        ("harmful", "Harmful", "h"),
        ("safe", "Safe", ""),
        ("unsure", "unsure", "3"),
    ]
    assert (notes.required, notes.min_length, notes.max_length) == (False, 0, 500)
    assert list(Label.objects.filter(project=project).values_list("value", "title", "shortcut")) == [
        ("harmful", "Harmful", "h"),
        ("safe", "Safe", ""),
        ("unsure", "unsure", "3"),
    ]


BAD_FORMS = {
    "two-primaries": (
        [RICH_QUESTIONS[0], {**RICH_QUESTIONS[1], "per_response": False, "primary": True}],
        "Exactly one question must be primary (one of pairwise, choice, rating, ranking); 2 are.",
    ),
    "rating-max-below-min": (
        [RICH_QUESTIONS[0], {**RICH_QUESTIONS[1], "min": 5, "max": 3}],
        "Question 2 ('helpfulness'), max: is required: a whole number above min, at most 100.",
    ),
    "unknown-kind": (
        [RICH_QUESTIONS[0], {**RICH_QUESTIONS[4], "kind": "essay"}],
        "Question 2 ('why'), kind: Select a valid choice. essay is not one of the available choices.",
    ),
    "setting-of-another-kind": (
        [RICH_QUESTIONS[0], {**RICH_QUESTIONS[4], "min": 1}],
        "Question 2 ('why'), min: is not a setting of a text question.",
    ),
    "bad-option-line": (
        [{"key": "c", "kind": "choice", "title": "C", "primary": True, "options": "yes | Yes | y | extra\nno"}],
        "Question 1 ('c'), options: line 1: write value | Title | shortcut (a title with '|' needs JSON)",
    ),
    "no-primary-question-kind": (
        [{**RICH_QUESTIONS[4], "primary": True}],
        "Question 1 ('why'), primary: a primary question is one of pairwise, choice, rating, ranking.",
    ),
}


@pytest.mark.parametrize(("questions", "expected"), BAD_FORMS.values(), ids=BAD_FORMS.keys())
def test_a_bad_form_shows_errors_naming_the_question_and_writes_nothing(
    client: Client, tenancy: Tenancy, questions: list[dict[str, Any]], expected: str
) -> None:
    client.force_login(tenancy.admin_a)
    data = _add_data(client, questions)
    before = _everything()
    errors = _errors(client.post(admin_url(Project, "add"), data))
    assert expected in errors, errors
    assert _everything() == before


def test_the_kind_picked_must_be_the_primary_questions(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    data = _add_data(client, RICH_QUESTIONS, kind=ProjectKind.PAIRWISE)
    before = _everything()
    errors = _errors(client.post(admin_url(Project, "add"), data))
    assert "Kind: must be 'ranking', the kind of the primary question 'rank' (or leave the kind blank)." in errors
    assert _everything() == before


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (ProjectKind.RANKING, "A ranking project needs its questions (one of them primary): add them."),
        (ProjectKind.RATING, "A rating project needs its questions (one of them primary): add them."),
        ("", "Kind: choose one, or add questions (the primary question's kind decides it)."),
    ],
)
def test_a_project_without_questions_needs_a_kind_that_has_none(
    client: Client, tenancy: Tenancy, kind: str, expected: str
) -> None:
    client.force_login(tenancy.admin_a)
    data = _add_data(client, [], kind=kind)
    before = _everything()
    assert expected in _errors(client.post(admin_url(Project, "add"), data))
    assert _everything() == before


def test_questions_and_labels_in_one_submission_are_refused(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    data = _add_data(client, RICH_QUESTIONS) | {
        "labels-TOTAL_FORMS": "1",
        "labels-0-value": "extra",
        "labels-0-title": "Extra",
        "labels-0-position": "0",
    }
    before = _everything()
    errors = _errors(client.post(admin_url(Project, "add"), data))
    assert "With questions, give the options in the primary question, not as labels." in errors
    assert _everything() == before


def test_plain_projects_keep_their_label_inlines(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    categorical = project_create(
        organization=tenancy.org_a, name="Topics", kind=ProjectKind.CATEGORICAL, labels=[("x", "X"), ("y", "Y")]
    )
    for project in (tenancy.project_a, categorical):
        data = form_data(client.get(admin_url(project, "change")))
        assert "questions-TOTAL_FORMS" not in data and "labels-TOTAL_FORMS" in data


def test_a_pairwise_projects_required_qualification_is_saved(client: Client, tenancy: Tenancy) -> None:
    """Saving a pairwise project skips its fixed labels only: its other inlines are saved (they used not to be)."""
    qualification = qualification_create(organization=tenancy.org_a, code="medical")
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(tenancy.project_a, "change")))
    data |= {"requirements-TOTAL_FORMS": "1", "requirements-0-qualification": qualification.pk, "_save": "Save"}
    data |= {"requirements-0-min_level": "2"}
    response = client.post(admin_url(tenancy.project_a, "change"), data)
    assert response.status_code == 302, _errors(response)
    requirement = ProjectRequirement.objects.get(project=tenancy.project_a)
    assert (requirement.qualification, requirement.min_level, requirement.organization_id) == (
        qualification,
        2,
        tenancy.org_a.pk,
    )
    assert list(tenancy.project_a.labels.values_list("value", flat=True)) == ["a", "b", "tie", "both_bad"]


# --- Editing the form ------------------------------------------------------------------------------------------
def test_admin_edits_the_form_while_the_project_has_no_judgments(client: Client, tenancy: Tenancy) -> None:
    project = _rich_project(tenancy)
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(project, "change")))
    data |= {"questions-4-title": "Why?", "questions-5-DELETE": "on", "_save": "Save"}
    data |= _questions_data(
        [{"key": "flag", "kind": "multi_choice", "title": "Flags", "options": '["pii", "nsfw"]'}], initial=6
    )
    response = client.post(admin_url(project, "change"), data)
    assert response.status_code == 302, _errors(response)
    questions = project_stored_questions(project=project)
    assert [q.key for q in questions] == ["rank", "helpfulness", "honesty", "harmlessness", "why", "flag"]
    assert questions[4].title == "Why?"
    assert questions[5].option_values == ("pii", "nsfw")
    entry = LogEntry.objects.filter(object_id=str(project.pk)).latest("pk")
    assert entry.get_change_message() == "Changed questions."


def test_the_primary_question_keeps_the_projects_kind(client: Client, tenancy: Tenancy) -> None:
    project = _rich_project(tenancy)
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(project, "change")))
    data |= {"questions-0-primary": "", "questions-1-primary": "on", "questions-1-per_response": "", "_save": "Save"}
    data = {k: v for k, v in data.items() if v != ""}
    before = _everything()
    errors = _errors(client.post(admin_url(project, "change"), data))
    assert any(e.startswith("The primary question must keep the project's kind (ranking):") for e in errors), errors
    assert _everything() == before


def test_the_primary_answers_are_fixed_once_the_project_has_tasks(client: Client, tenancy: Tenancy) -> None:
    questions = [{"key": "safety", "kind": "choice", "title": "Safe?", "primary": True, "options": ["yes", "no"]}]
    project = project_create(organization=tenancy.org_a, name="Safety", questions=questions)
    task_create(project=project, external_id="t-1", payload={"text": "Hello"})
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(project, "change")))
    assert data["questions-0-options"] == "yes | yes | 1\nno | no | 2"
    data |= {"questions-0-options": "yes | Yes\nno | No\nmaybe", "_save": "Save"}
    before = _everything()
    errors = _errors(client.post(admin_url(project, "change"), data))
    assert "The primary question's answers (the project's labels) cannot change once the project has tasks." in errors
    assert _everything() == before
    # New titles for the same answers are fine.
    data["questions-0-options"] = "yes | Yes\nno | No"
    assert client.post(admin_url(project, "change"), data).status_code == 302
    assert project_stored_questions(project=project)[0].options[0].title == "Yes"


def test_editing_questions_after_a_judgment_is_refused(client: Client, tenancy: Tenancy) -> None:
    project = _rich_project(tenancy)
    _judged(tenancy, project)
    client.force_login(tenancy.admin_a)
    page = client.get(admin_url(project, "change"))
    assert "questions (read-only: the project has judgments)" in page.content.decode().lower()
    data = form_data(page)
    assert {name for name in data if name.startswith("questions-0-")} == {"questions-0-id", "questions-0-project"}
    # A forged edit of the form is ignored; the project's settings are still saved.
    forged = (
        data | _questions_data([{**RICH_QUESTIONS[4], "title": "Forged"}]) | {"questions-0-id": "", "_save": "Save"}
    )
    forged |= {"questions-TOTAL_FORMS": data["questions-TOTAL_FORMS"], "name": "Rich v2"}
    questions = list(Question.objects.order_by("pk").values())
    response = client.post(admin_url(project, "change"), forged)
    assert response.status_code == 302, _errors(response)
    assert list(Question.objects.order_by("pk").values()) == questions
    project.refresh_from_db()
    assert project.name == "Rich v2"


def test_a_judgment_arriving_before_the_save_rolls_the_whole_change_back(
    client: Client, tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The admin's check and the save are apart: the service checks again under its lock, and nothing is saved."""
    project = _rich_project(tenancy)
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(project, "change")))
    _judged(tenancy, project)
    monkeypatch.setattr("backoffice.admin.questions.project_has_judgments", lambda project: False)
    monkeypatch.setattr("backoffice.admin.labeling.project_has_judgments", lambda project: False)
    before = _everything()
    response = client.post(admin_url(project, "change"), data | {"questions-4-title": "Why?", "name": "Renamed"})
    assert response.status_code == 302 and response["Location"] == admin_url(project, "change")
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == ["Nothing was saved: cannot change once the project has judgments"]
    assert _everything() == before


# --- Tenancy and roles ---------------------------------------------------------------------------------------
def test_another_organizations_form_project_is_a_404(client: Client, tenancy: Tenancy) -> None:
    project = _rich_project(tenancy)
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(project, "change"))) | {"questions-0-title": "Mine now", "_save": "Save"}
    client.force_login(tenancy.outsider_b)
    before = _everything()
    for view in ("change", "delete", "history"):
        assert client.get(admin_url(project, view)).status_code == 404
    assert client.post(admin_url(project, "change"), data).status_code == 404
    assert _everything() == before


def test_a_manager_edits_the_form_and_an_annotator_cannot_see_it(client: Client, tenancy: Tenancy) -> None:
    project = _rich_project(tenancy)
    client.force_login(tenancy.manager_a)
    data = form_data(client.get(admin_url(project, "change"))) | {"questions-4-title": "Why?", "_save": "Save"}
    assert client.post(admin_url(project, "change"), data).status_code == 302
    assert project_stored_questions(project=project)[4].title == "Why?"
    client.force_login(tenancy.annotator_a)
    before = _everything()
    for method in (client.get, client.post):
        response = method(admin_url(project, "change"), *(() if method == client.get else (data,)))
        assert response.status_code == 302 and "/login/" in response["Location"]
    assert _everything() == before


# --- Judgments and tasks --------------------------------------------------------------------------------------
def test_the_judgment_page_shows_answers_and_response_order_as_json(client: Client, tenancy: Tenancy) -> None:
    project = _rich_project(tenancy)
    judgment = _judged(tenancy, project)
    judgment.refresh_from_db()  # PostgreSQL's jsonb keeps its own key order
    client.force_login(tenancy.admin_a)
    page = client.get(admin_url(judgment, "change"))
    text = page.content.decode()
    assert page.context["adminform"].form.fields == {}  # read-only
    rendered = json.dumps(judgment.answers, indent=2, ensure_ascii=False)
    assert f'<pre class="json">{rendered.replace(chr(34), "&quot;")}</pre>' in text
    order = json.dumps(judgment.response_order, indent=2)
    assert f'<pre class="json">{order}</pre>' in text
    # A pairwise judgment has neither: shown as empty.
    lease = next_task(annotator=tenancy.annotator_a, project=tenancy.project_a)
    assert lease is not None
    plain = judgment_submit(lease=lease, label="a", client_id="c-2", seconds=3, actor=tenancy.annotator_a)
    assert '<pre class="json">' not in client.get(admin_url(plain, "change")).content.decode()


def test_the_task_form_takes_messages_and_responses(client: Client, tenancy: Tenancy) -> None:
    project = _rich_project(tenancy)
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(Task, "add")))
    row = rich_task(7)
    payload = {"messages": row["messages"], "responses": row["responses"]}
    data |= {"project": project.pk, "external_id": "rich-7", "payload": json.dumps(payload), "gold_label": "2"}
    response = client.post(admin_url(Task, "add"), data)
    assert response.status_code == 302, _errors(response)
    task = Task.objects.get(external_id="rich-7")
    assert (task.project, task.payload, task.gold_label) == (project, payload, "2")
    # One response is not a ranking; a bad role is named.
    before = _everything()
    bad = payload | {"responses": payload["responses"][:1], "messages": [{"role": "robot", "content": "Hi"}]}
    errors = _errors(client.post(admin_url(Task, "add"), data | {"external_id": "rich-8", "payload": json.dumps(bad)}))
    assert any("responses:" in e for e in errors) and any("messages" in e for e in errors), errors
    assert _everything() == before


def test_the_change_page_queries_do_not_grow_with_the_questions(client: Client, tenancy: Tenancy) -> None:
    small = project_create(organization=tenancy.org_a, name="Small", questions=RICH_QUESTIONS[:1])
    rich = _rich_project(tenancy)
    client.force_login(tenancy.admin_a)
    client.get(admin_url(small, "change"))  # the first request fills per-process caches (content types)
    counts = []
    for project in (small, rich):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(admin_url(project, "change")).status_code == 200
        counts.append(len(captured))
    assert counts[0] == counts[1], counts

"""A customer admin creates, changes and deletes their organization's projects (with labels) and tasks in the
admin; the task's JSON payload editor validates like the services do; fixed fields stay fixed after creation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from labeling.models import Judgment, Label, Project, ProjectKind, Task
from tests import factories
from tests.conftest import Tenancy
from tests.labeling.test_admin_tenancy import admin_url, form_data, seed_annotations, snapshot

VALID_PAIRWISE = {"prompt": "Say hi.", "response_a": "Hi!", "response_b": "Hello.", "model_a": "m1"}


def _labels_data(labels: list[tuple[str, str, str]], initial: int = 0) -> dict[str, Any]:
    """Inline rows for new labels (value, title, shortcut), appended after ``initial`` existing ones."""
    data: dict[str, Any] = {}
    for offset, (value, title, shortcut) in enumerate(labels):
        index = initial + offset
        data |= {
            f"labels-{index}-id": "",
            f"labels-{index}-value": value,
            f"labels-{index}-title": title,
            f"labels-{index}-shortcut": shortcut,
            f"labels-{index}-position": str(index),
        }
    data["labels-TOTAL_FORMS"] = str(initial + len(labels))
    return data


def _form_errors(response: Any) -> dict[str, Any]:
    """Errors of the main form and of its inline formsets (``__inline__`` lists non-form formset errors)."""
    assert response.status_code == 200, f"expected the form again with errors, got {response.status_code}"
    errors: dict[str, Any] = dict(response.context["adminform"].form.errors)
    inline_errors: list[str] = []
    for inline in response.context["inline_admin_formsets"]:
        inline_errors += list(inline.formset.non_form_errors())
        inline_errors += [str(e) for form_errors in inline.formset.errors for e in form_errors.values()]
    if inline_errors:
        errors["__inline__"] = inline_errors
    assert errors, "the form was expected to have errors"
    return errors


def _task_add_data(client: Client, project: Project, **fields: Any) -> dict[str, Any]:
    data = form_data(client.get(admin_url(Task, "add")))
    payload = fields.pop("payload", VALID_PAIRWISE)
    data.update(
        project=project.pk,
        external_id="new-1",
        payload=payload if isinstance(payload, str) else json.dumps(payload),
        **fields,
    )
    return data


# --- Projects ------------------------------------------------------------------------------------------------
def test_admin_creates_a_categorical_project_with_labels(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(Project, "add")))
    assert {"labels-TOTAL_FORMS", "labels-INITIAL_FORMS", "labels-MIN_NUM_FORMS", "labels-MAX_NUM_FORMS"} <= set(data)
    data |= {"name": "Sentiment", "kind": ProjectKind.CATEGORICAL}
    data |= _labels_data([("pos", "Positive", "p"), ("neg", "Negative", "n"), ("neutral", "Neutral", "")])
    response = client.post(admin_url(Project, "add"), data)
    assert response.status_code == 302, _form_errors(response)
    project = Project.objects.get(name="Sentiment")
    assert (project.organization, project.kind) == (tenancy.org_a, ProjectKind.CATEGORICAL)
    labels = list(Label.objects.filter(project=project).values_list("value", "title", "shortcut", "organization_id"))
    assert labels == [
        ("pos", "Positive", "p", tenancy.org_a.pk),
        ("neg", "Negative", "n", tenancy.org_a.pk),
        ("neutral", "Neutral", "", tenancy.org_a.pk),
    ]


@pytest.mark.parametrize(
    "labels",
    [
        [],
        [("only", "Only one", "1")],
        [("ok", "Ok", "1"), ("Bad Value", "Bad", "2")],
        [("same", "One", "1"), ("same", "Two", "2")],
    ],
    ids=["no-labels", "one-label", "bad-value", "duplicate-value"],
)
def test_categorical_project_needs_two_valid_labels(
    client: Client, tenancy: Tenancy, labels: list[tuple[str, str, str]]
) -> None:
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(Project, "add")))
    data |= {"name": "Too few", "kind": ProjectKind.CATEGORICAL} | _labels_data(labels)
    before = snapshot()
    errors = _form_errors(client.post(admin_url(Project, "add"), data))
    assert errors["__inline__"]
    if len(labels) < 2:
        assert "A categorical project needs at least two labels." in errors["__inline__"]
    assert snapshot() == before


def test_admin_creates_a_pairwise_project_with_the_fixed_labels(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(Project, "add")))
    data |= {"name": "Prefs 2", "kind": ProjectKind.PAIRWISE} | _labels_data([("extra", "Extra", "x")])
    response = client.post(admin_url(Project, "add"), data)
    assert response.status_code == 302, _form_errors(response)
    project = Project.objects.get(name="Prefs 2")
    assert project.organization == tenancy.org_a
    assert list(project.labels.values_list("value", flat=True)) == ["a", "b", "tie", "both_bad"]


def test_admin_changes_a_project_and_its_kind_stays_fixed(client: Client, tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, ProjectKind.CATEGORICAL, name="Topics")
    client.force_login(tenancy.admin_a)
    response = client.get(admin_url(project, "change"))
    assert "kind" not in response.context["adminform"].form.fields  # read-only once the project exists
    data = form_data(response)
    assert data["labels-INITIAL_FORMS"] == "3"
    data |= {"name": "Topics v2", "kind": ProjectKind.PAIRWISE, "min_judgments": "2", "_save": "Save"}
    data |= _labels_data([("other", "Other", "o")], initial=3)
    response = client.post(admin_url(project, "change"), data)
    assert response.status_code == 302, _form_errors(response)
    project.refresh_from_db()
    assert (project.name, project.kind, project.min_judgments) == ("Topics v2", ProjectKind.CATEGORICAL, 2)
    assert project.organization == tenancy.org_a
    assert list(project.labels.values_list("value", flat=True)) == ["positive", "negative", "neutral", "other"]
    assert set(project.labels.values_list("organization_id", flat=True)) == {tenancy.org_a.pk}


def test_deleting_labels_down_to_one_is_refused(client: Client, tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, ProjectKind.CATEGORICAL, name="Topics")
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(project, "change")))
    data |= {"labels-0-DELETE": "on", "labels-1-DELETE": "on", "_save": "Save"}
    before = snapshot()
    errors = _form_errors(client.post(admin_url(project, "change"), data))
    assert "A categorical project needs at least two labels." in errors["__inline__"]
    assert snapshot() == before


def test_admin_changes_a_pairwise_project(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(tenancy.project_a, "change")))
    data |= {"instructions": "Pick the more helpful answer.", "kind": ProjectKind.CATEGORICAL, "_save": "Save"}
    response = client.post(admin_url(tenancy.project_a, "change"), data)
    assert response.status_code == 302, _form_errors(response)
    tenancy.project_a.refresh_from_db()
    assert tenancy.project_a.instructions == "Pick the more helpful answer."
    assert tenancy.project_a.kind == ProjectKind.PAIRWISE
    assert list(tenancy.project_a.labels.values_list("value", flat=True)) == ["a", "b", "tie", "both_bad"]


def test_project_settings_are_validated(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(tenancy.project_a, "change")))
    data |= {"min_judgments": "5", "max_judgments": "3", "_save": "Save"}
    before = snapshot()
    response = client.post(admin_url(tenancy.project_a, "change"), data)
    assert "Max judgments must be at least min judgments." in str(_form_errors(response))
    assert snapshot() == before


def test_project_names_are_unique_in_the_organization_only(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(Project, "add")))
    before = snapshot()
    response = client.post(admin_url(Project, "add"), data | {"name": "Alpha prefs", "kind": ProjectKind.PAIRWISE})
    assert "Your organization already has a project with this name." in str(_form_errors(response))
    assert snapshot() == before
    # Renaming onto an existing name is refused the same way.
    other = factories.make_project(tenancy.org_a, name="Other A")
    data = form_data(client.get(admin_url(other, "change"))) | {"name": "Alpha prefs", "_save": "Save"}
    response = client.post(admin_url(other, "change"), data)
    assert "Your organization already has a project with this name." in str(_form_errors(response))
    # Another organization's project name is no conflict (and reveals nothing).
    response = client.post(
        admin_url(Project, "add"),
        form_data(client.get(admin_url(Project, "add")))
        | {
            "name": "Beta prefs",
            "kind": ProjectKind.PAIRWISE,
        },
    )
    assert response.status_code == 302
    assert Project.objects.filter(name="Beta prefs").count() == 2


def test_admin_deletes_own_project_with_its_tasks(client: Client, tenancy: Tenancy) -> None:
    factories.make_task(tenancy.project_a, "a-2")
    client.force_login(tenancy.admin_a)
    assert client.get(admin_url(tenancy.project_a, "delete")).status_code == 200
    response = client.post(admin_url(tenancy.project_a, "delete"), {"post": "yes"})
    assert response.status_code == 302
    assert not Project.objects.filter(pk=tenancy.project_a.pk).exists()
    assert not Task.objects.filter(project_id=tenancy.project_a.pk).exists()
    assert Project.objects.filter(pk=tenancy.project_b.pk).exists()


def test_manager_edits_projects_and_tasks_too(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.manager_a)
    data = form_data(client.get(admin_url(tenancy.project_a, "change"))) | {"name": "Renamed", "_save": "Save"}
    assert client.post(admin_url(tenancy.project_a, "change"), data).status_code == 302
    tenancy.project_a.refresh_from_db()
    assert tenancy.project_a.name == "Renamed"
    assert client.post(admin_url(Task, "add"), _task_add_data(client, tenancy.project_a)).status_code == 302
    assert Task.objects.get(external_id="new-1").organization == tenancy.org_a
    assert client.post(admin_url(tenancy.task_a, "delete"), {"post": "yes"}).status_code == 302
    assert not Task.objects.filter(pk=tenancy.task_a.pk).exists()


# --- Tasks and the JSON payload editor -----------------------------------------------------------------------
def test_admin_creates_a_task_with_a_valid_payload(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    data = _task_add_data(client, tenancy.project_a, meta='{"source": "admin"}', gold_label="a")
    response = client.post(admin_url(Task, "add"), data)
    assert response.status_code == 302, _form_errors(response)
    task = Task.objects.get(external_id="new-1")
    assert (task.organization, task.project, task.payload) == (tenancy.org_a, tenancy.project_a, VALID_PAIRWISE)
    assert (task.meta, task.gold_label) == ({"source": "admin"}, "a")


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"prompt": "p", "response_a": "a"}, "payload", "response_b: is required"),
        ({"prompt": "  ", "response_a": "a", "response_b": "b"}, "payload", "prompt: must not be empty"),
        ({"prompt": 3, "response_a": "a", "response_b": "b"}, "payload", "prompt: must be text"),
        ([1, 2], "payload", "payload: must be a JSON object"),
        ("just text", "payload", "payload: must be a JSON object"),
        ({**VALID_PAIRWISE, "extra": "x"}, "payload", "extra: is not a pairwise field"),
        ({**VALID_PAIRWISE, "model_b": ""}, "payload", "model_b: must be non-empty text"),
        ("{not json", "payload", "Enter a valid JSON."),
    ],
    ids=["missing", "empty", "not-text", "array", "string", "unknown-field", "empty-optional", "bad-json"],
)
def test_task_payload_editor_validates(
    client: Client, tenancy: Tenancy, payload: Any, field: str, message: str
) -> None:
    client.force_login(tenancy.admin_a)
    raw = payload if payload == "{not json" else json.dumps(payload)
    data = _task_add_data(client, tenancy.project_a, payload=raw)
    before = snapshot()
    response = client.post(admin_url(Task, "add"), data)
    errors = _form_errors(response)
    assert any(message in error for error in errors[field]), errors
    assert snapshot() == before


def test_categorical_payload_needs_text(client: Client, tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, ProjectKind.CATEGORICAL, name="Topics")
    client.force_login(tenancy.admin_a)
    errors = _form_errors(client.post(admin_url(Task, "add"), _task_add_data(client, project)))
    assert any("text: is required" in error for error in errors["payload"])
    assert any("prompt: is not a categorical field" in error for error in errors["payload"])
    data = _task_add_data(client, project, payload={"text": "Nice."}, gold_label="positive")
    assert client.post(admin_url(Task, "add"), data).status_code == 302
    assert Task.objects.get(project=project).gold_label == "positive"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"gold_label": "positive"}, "gold_label", "'positive' is not one of this project's labels"),
        ({"meta": "[1]"}, "meta", "Meta must be a JSON object."),
        ({"external_id": "a-1"}, "__all__", "This project already has a task with this external id."),
        ({"external_id": ""}, "external_id", "This field is required."),
    ],
    ids=["gold-outside-labels", "meta-not-object", "duplicate-external-id", "empty-external-id"],
)
def test_task_fields_are_validated(
    client: Client, tenancy: Tenancy, fields: dict[str, str], field: str, message: str
) -> None:
    client.force_login(tenancy.admin_a)
    data = _task_add_data(client, tenancy.project_a) | fields
    before = snapshot()
    errors = _form_errors(client.post(admin_url(Task, "add"), data))
    assert any(message in error for error in errors[field]), errors
    assert snapshot() == before


def test_admin_changes_a_task_whose_project_stays_fixed(client: Client, tenancy: Tenancy) -> None:
    other_a = factories.make_project(tenancy.org_a, name="Other A")
    client.force_login(tenancy.admin_a)
    response = client.get(admin_url(tenancy.task_a, "change"))
    form = response.context["adminform"].form
    assert "project" not in form.fields  # read-only once the task exists
    data = form_data(response)
    assert json.loads(data["payload"]) == tenancy.task_a.payload
    assert '\n  "prompt"' in data["payload"]  # the editor shows indented JSON
    new_payload = {**VALID_PAIRWISE, "prompt": "Changed prompt"}
    data |= {"payload": json.dumps(new_payload), "project": other_a.pk, "gold_label": "tie", "_save": "Save"}
    response = client.post(admin_url(tenancy.task_a, "change"), data)
    assert response.status_code == 302, _form_errors(response)
    tenancy.task_a.refresh_from_db()
    assert (tenancy.task_a.payload, tenancy.task_a.gold_label) == (new_payload, "tie")
    assert (tenancy.task_a.project, tenancy.task_a.organization) == (tenancy.project_a, tenancy.org_a)


def test_task_change_validates_against_its_project(client: Client, tenancy: Tenancy) -> None:
    factories.make_task(tenancy.project_a, "a-2")
    client.force_login(tenancy.admin_a)
    url = admin_url(tenancy.task_a, "change")
    before = snapshot()
    for changes, field, message in [
        ({"payload": '{"prompt": "p"}'}, "payload", "response_a: is required"),
        ({"gold_label": "nope"}, "gold_label", "'nope' is not one of this project's labels"),
        ({"external_id": "a-2"}, "__all__", "This project already has a task with this external id."),
    ]:
        data = form_data(client.get(url)) | changes | {"_save": "Save"}
        errors = _form_errors(client.post(url, data))
        assert any(message in error for error in errors[field]), errors
    assert snapshot() == before


def test_admin_deletes_own_task(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    assert client.post(admin_url(tenancy.task_a, "delete"), {"post": "yes"}).status_code == 302
    assert not Task.objects.filter(pk=tenancy.task_a.pk).exists()
    assert Task.objects.filter(pk=tenancy.task_b.pk).exists()


def test_judgments_are_never_added_or_edited_and_only_admins_delete_them(client: Client, tenancy: Tenancy) -> None:
    judgment_a, _ = seed_annotations(tenancy)
    for user in (tenancy.admin_a, tenancy.manager_a):
        client.force_login(user)
        response = client.get(admin_url(judgment_a, "change"))
        assert response.status_code == 200
        assert not response.context["adminform"].form.fields  # everything read-only
        before = snapshot()
        assert client.get(admin_url(judgment_a._meta.model, "add")).status_code == 403
        assert client.post(admin_url(judgment_a, "change"), {"label": "b", "_save": "Save"}).status_code == 403
        assert snapshot() == before
    client.force_login(tenancy.manager_a)
    assert client.post(admin_url(judgment_a, "delete"), {"post": "yes"}).status_code == 403
    assert Judgment.objects.filter(pk=judgment_a.pk).exists()
    client.force_login(tenancy.admin_a)
    assert client.post(admin_url(judgment_a, "delete"), {"post": "yes"}).status_code == 302
    assert not Judgment.objects.filter(pk=judgment_a.pk).exists()


def test_admin_deletes_a_project_with_judgments(client: Client, tenancy: Tenancy) -> None:
    _, judgment_b = seed_annotations(tenancy)
    client.force_login(tenancy.admin_a)
    response = client.post(admin_url(tenancy.project_a, "delete"), {"post": "yes"})
    assert response.status_code == 302
    assert not Project.objects.filter(pk=tenancy.project_a.pk).exists()
    assert not Judgment.objects.filter(project_id=tenancy.project_a.pk).exists()
    assert Judgment.objects.filter(pk=judgment_b.pk).exists()


def test_duplicate_label_shortcuts_are_a_form_error(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(Project, "add")))
    data |= {"name": "Keys", "kind": ProjectKind.CATEGORICAL} | _labels_data([("x", "X", "1"), ("y", "Y", "1")])
    before = snapshot()
    errors = _form_errors(client.post(admin_url(Project, "add"), data))
    assert "Each label needs its own shortcut; used more than once: 1." in errors["__inline__"]
    assert snapshot() == before
    # A new label may not take an existing label's shortcut either.
    project = factories.make_project(tenancy.org_a, ProjectKind.CATEGORICAL, name="Topics")
    data = form_data(client.get(admin_url(project, "change"))) | {"_save": "Save"}
    data |= _labels_data([("other", "Other", "1")], initial=3)
    before = snapshot()
    errors = _form_errors(client.post(admin_url(project, "change"), data))
    assert "Another label of this project uses this shortcut." in str(errors["__inline__"])
    assert snapshot() == before

"""What must never happen is refused with a clear error, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from labeling.models import Judgment, Label, Project, ProjectKind, Task
from labeling.services import task_create
from routing.models import Lease
from routing.services import judgment_record
from tests import factories
from tests.conftest import Tenancy
from tests.services import needs_postgres


def _record(tenancy: Tenancy, **overrides: Any) -> Judgment:
    fields: dict[str, Any] = {
        "task": tenancy.task_a,
        "annotator": tenancy.annotator_a,
        "label": "a",
        "client_id": "page-1",
        "a_left": True,
        "seconds_on_task": 12.5,
    }
    fields.update(overrides)
    return judgment_record(**fields)


def test_second_judgment_of_same_task_by_same_annotator_is_refused(tenancy: Tenancy) -> None:
    _record(tenancy)
    with pytest.raises(ValidationError, match="already judged"):
        _record(tenancy, client_id="page-2", label="b")
    assert Judgment.objects.count() == 1
    assert Judgment.objects.get().label == "a"


def test_retry_with_same_client_id_returns_first_judgment(tenancy: Tenancy) -> None:
    first = _record(tenancy)
    again = _record(tenancy, label="b")  # a retried submit: same page, same client id
    assert again.pk == first.pk
    assert Judgment.objects.count() == 1


def test_database_refuses_duplicate_judgment(tenancy: Tenancy) -> None:
    _record(tenancy)
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(
            organization=tenancy.org_a,
            project=tenancy.project_a,
            task=tenancy.task_a,
            annotator=tenancy.annotator_a,
            label="b",
            a_left=False,
            client_id="other",
        )
    assert Judgment.objects.count() == 1


def test_label_outside_choices_is_refused(tenancy: Tenancy) -> None:
    with pytest.raises(ValidationError) as error:
        _record(tenancy, label="maybe")
    assert "'maybe' is not one of this project's labels" in str(error.value.message_dict["label"])
    assert Judgment.objects.count() == 0


def test_pairwise_judgment_needs_display_order(tenancy: Tenancy) -> None:
    with pytest.raises(ValidationError) as error:
        _record(tenancy, a_left=None)
    assert "a_left" in error.value.message_dict
    assert Judgment.objects.count() == 0


def test_judgment_by_non_member_is_refused(tenancy: Tenancy) -> None:
    with pytest.raises(ValidationError) as error:
        _record(tenancy, annotator=tenancy.outsider_b)
    assert "not a member" in str(error.value.message_dict["annotator"])
    assert Judgment.objects.count() == 0


def test_negative_time_on_task_is_refused(tenancy: Tenancy) -> None:
    with pytest.raises(ValidationError):
        _record(tenancy, seconds_on_task=-1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(
            organization=tenancy.org_a,
            project=tenancy.project_a,
            task=tenancy.task_a,
            annotator=tenancy.annotator_a,
            label="a",
            a_left=True,
            client_id="x",
            seconds_on_task=-3,
        )
    assert Judgment.objects.count() == 0


@needs_postgres
def test_database_refuses_label_outside_project_labels(tenancy: Tenancy) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(
            organization=tenancy.org_a,
            project=tenancy.project_a,
            task=tenancy.task_a,
            annotator=tenancy.annotator_a,
            label="maybe",
            a_left=True,
            client_id="x",
        )
        connection.check_constraints()  # deferred constraints: check now, as a commit would
    assert Judgment.objects.count() == 0


@needs_postgres
def test_database_refuses_rows_pointing_into_another_organization(tenancy: Tenancy) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Task.objects.create(
            organization=tenancy.org_a, project=tenancy.project_b, external_id="smuggled", payload={"text": "x"}
        )
        connection.check_constraints()
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(
            organization=tenancy.org_a,
            project=tenancy.project_a,
            task=tenancy.task_b,
            annotator=tenancy.annotator_a,
            label="a",
            a_left=True,
            client_id="y",
        )
        connection.check_constraints()
    with pytest.raises(IntegrityError), transaction.atomic():
        Project.objects.filter(pk=tenancy.project_a.pk).update(organization=tenancy.org_b)
        connection.check_constraints()
    assert not Task.objects.filter(external_id="smuggled").exists()
    assert Project.objects.get(pk=tenancy.project_a.pk).organization_id == tenancy.org_a.pk


@needs_postgres
def test_the_composite_key_alone_refuses_a_task_of_a_missing_project_or_organization(tenancy: Tenancy) -> None:
    """Migration 0010 drops the task table's single-column keys on PostgreSQL (bulk imports pay a check per row for
    each); (organization_id, project_id) -> project (organization_id, id) still refuses every orphan."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "labeling_task")
    single = [name for name, info in constraints.items() if info["foreign_key"] and len(info["columns"]) == 1]
    assert single == []
    for organization_id, project_id in ((tenancy.org_a.pk, 999_999), (999_999, tenancy.project_a.pk)):
        with pytest.raises(IntegrityError), transaction.atomic():
            Task.objects.create(
                organization_id=organization_id, project_id=project_id, external_id="ghost", payload={"text": "x"}
            )
            connection.check_constraints()
    assert not Task.objects.filter(external_id="ghost").exists()


@needs_postgres
def test_composite_keys_alone_refuse_a_judgment_pointing_nowhere(tenancy: Tenancy) -> None:
    """Migration 0012 drops the judgment table's single-column keys on organization, project and task (composite
    keys cover them; a judgments import paid a check per row for each), keeping the project index; orphans of
    every kind are still refused."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "labeling_annotation")
    single_keys = sorted(
        info["columns"][0] for info in constraints.values() if info["foreign_key"] and len(info["columns"]) == 1
    )
    single_indexes = sorted(
        info["columns"][0]
        for info in constraints.values()
        if info["index"] and not info["unique"] and not info["primary_key"] and len(info["columns"]) == 1
    )
    assert single_keys == ["annotator_id"]
    assert single_indexes == ["annotator_id", "project_id"]
    other_task = factories.make_task(tenancy.project_b, "b-2")
    orphans = [
        {"organization_id": 999_999},  # no such organization
        {"project_id": 999_999},  # no such project
        {"task_id": 999_999},  # no such task
        {"task_id": other_task.pk},  # another project's task
        {"organization_id": tenancy.org_b.pk},  # another organization's name on this project's task
        {"organization_id": tenancy.org_b.pk, "project_id": tenancy.project_b.pk},  # a task of another project
    ]
    for n, change in enumerate(orphans):
        values = {
            "organization_id": tenancy.org_a.pk,
            "project_id": tenancy.project_a.pk,
            "task_id": tenancy.task_a.pk,
            "annotator": tenancy.annotator_a,
            "label": "a",
            "a_left": True,
            "client_id": f"orphan-{n}",
        } | change
        with pytest.raises(IntegrityError), transaction.atomic():
            Judgment.objects.create(**values)
            connection.check_constraints()
    assert not Judgment.objects.filter(client_id__startswith="orphan-").exists()


@needs_postgres
def test_one_composite_key_refuses_a_lease_or_judgment_whose_task_is_elsewhere(tenancy: Tenancy) -> None:
    """Migrations labeling 0016 and routing 0005: a judgment's and a lease's (organization, project, task) point at
    the task's (organization, project, id), one check where two were; each mismatch is still refused."""
    with connection.cursor() as cursor:
        keys = {
            table: sorted(
                tuple(info["columns"])
                for info in connection.introspection.get_constraints(cursor, table).values()
                if info["foreign_key"] and len(info["columns"]) > 1
            )
            for table in ("labeling_annotation", "routing_assignment")
        }
    assert keys == {
        "labeling_annotation": [("organization_id", "project_id", "task_id"), ("project_id", "label")],
        "routing_assignment": [("organization_id", "project_id", "task_id")],
    }
    now = timezone.now()
    mismatches = [
        {"organization_id": tenancy.org_b.pk},
        {"project_id": tenancy.project_b.pk},
        {"task_id": tenancy.task_b.pk},
        {"organization_id": 999_999},
    ]
    for change in mismatches:
        values = {
            "organization_id": tenancy.org_a.pk,
            "project_id": tenancy.project_a.pk,
            "task_id": tenancy.task_a.pk,
            "annotator": tenancy.annotator_a,
            "leased_at": now,
            "expires_at": now,
        } | change
        with pytest.raises(IntegrityError), transaction.atomic():
            Lease.objects.create(**values)
            connection.check_constraints()
    assert not Lease.objects.filter(annotator=tenancy.annotator_a).exists()


def test_duplicate_external_id_is_refused(tenancy: Tenancy) -> None:
    with pytest.raises(ValidationError) as error:
        factories.make_task(tenancy.project_a, "a-1")
    assert "'a-1' already exists in this project" in str(error.value.message_dict["external_id"])
    with pytest.raises(IntegrityError), transaction.atomic():
        Task.objects.create(
            organization=tenancy.org_a,
            project=tenancy.project_a,
            external_id="a-1",
            payload=factories.pairwise_payload(),
        )
    assert Task.objects.filter(project=tenancy.project_a).count() == 1


def test_same_external_id_in_another_project_is_fine(tenancy: Tenancy) -> None:
    factories.make_task(tenancy.project_b, "a-1")
    assert Task.objects.filter(external_id="a-1").count() == 2


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"prompt": "p", "response_a": "a"}, "response_b", "is required"),
        ({"prompt": "   ", "response_a": "a", "response_b": "b"}, "prompt", "must not be empty"),
        ({"prompt": "p", "response_a": 3, "response_b": "b"}, "response_a", "must be text"),
        (
            {"prompt": "p", "response_a": "a", "response_b": "b", "respone_c": "?"},
            "respone_c",
            "is not a pairwise field",
        ),
        ({"prompt": "p", "response_a": "a", "response_b": "b", "model_a": ""}, "model_a", "must be non-empty text"),
        (["prompt", "a", "b"], "payload", "must be a JSON object"),
        ({"text": "categorical text in a pairwise project"}, "prompt", "is required"),
    ],
)
def test_invalid_pairwise_payload_is_refused(tenancy: Tenancy, payload: Any, field: str, message: str) -> None:
    before = Task.objects.count()
    with pytest.raises(ValidationError) as error:
        task_create(project=tenancy.project_a, external_id="bad", payload=payload)
    problems = " | ".join(error.value.message_dict["payload"])
    assert f"{field}: {message}" in problems
    assert Task.objects.count() == before


def test_invalid_categorical_payload_is_refused(tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, ProjectKind.CATEGORICAL)
    with pytest.raises(ValidationError) as error:
        task_create(project=project, external_id="c-1", payload={"prompt": "p", "response_a": "a", "response_b": "b"})
    problems = " | ".join(error.value.message_dict["payload"])
    assert "text: is required" in problems
    assert "prompt: is not a categorical field" in problems
    assert not Task.objects.filter(project=project).exists()


def test_gold_label_outside_project_labels_is_refused(tenancy: Tenancy) -> None:
    with pytest.raises(ValidationError) as error:
        factories.make_task(tenancy.project_a, "gold-1", gold_label="positive")
    assert "gold_label" in error.value.message_dict
    assert not Task.objects.filter(external_id="gold-1").exists()
    assert factories.make_task(tenancy.project_a, "gold-2", gold_label="b").is_gold


def test_pairwise_project_gets_the_four_fixed_labels(tenancy: Tenancy) -> None:
    values = list(Label.objects.filter(project=tenancy.project_a).values_list("value", "shortcut"))
    assert values == [("a", "1"), ("b", "2"), ("tie", "3"), ("both_bad", "4")]


def test_categorical_project_needs_two_labels(tenancy: Tenancy) -> None:
    with pytest.raises(ValidationError, match="at least two labels"):
        factories.make_project(tenancy.org_a, ProjectKind.CATEGORICAL, name="One label", labels=[("yes", "Yes")])
    assert not Project.objects.filter(name="One label").exists()


def test_project_settings_are_checked_by_the_database(tenancy: Tenancy) -> None:
    for bad in ({"min_judgments": 0}, {"max_judgments": 1, "min_judgments": 3}, {"consensus_threshold": 0.3}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Project.objects.filter(pk=tenancy.project_a.pk).update(**bad)
    tenancy.project_a.refresh_from_db()
    assert tenancy.project_a.min_judgments == 3


def test_project_settings_are_validated_by_the_service(tenancy: Tenancy) -> None:
    with pytest.raises(ValidationError) as error:
        factories.make_project(tenancy.org_a, name="Bad overlap", min_judgments=4, max_judgments=2)
    assert "Max judgments must be at least min judgments." in error.value.messages
    assert not Project.objects.filter(name="Bad overlap").exists()


def test_project_name_is_unique_in_its_organization(tenancy: Tenancy) -> None:
    with pytest.raises(ValidationError):
        factories.make_project(tenancy.org_a, name="Alpha prefs")
    factories.make_project(tenancy.org_b, name="Alpha prefs")  # another organization may use the name
    assert Project.objects.filter(name="Alpha prefs").count() == 2

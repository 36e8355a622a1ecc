"""The optional strength scale: how much better the preferred response is, stored with a decisive judgment."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse

from labeling.models import Judgment, Project, ProjectKind
from routing.models import Lease, LeaseState
from routing.services import judgment_record, judgment_submit, next_task
from tests import factories
from tests.conftest import Tenancy


@pytest.fixture
def scaled(tenancy: Tenancy) -> Project:
    return factories.make_project(
        tenancy.org_a, name="Scaled", min_judgments=1, max_judgments=1, gold_rate=0, strength_scale=True
    )


def _post(client: Client, page: Any, **data: str) -> Any:
    lease = page.context["lease"]
    return client.post(
        reverse("annotate-submit", args=[lease.project_id, lease.pk]),
        {"client_id": page.context["client_id"], **data},
    )


def _page(client: Client, project: Project) -> Any:
    page = client.get(reverse("annotate", args=[project.pk]))
    assert page.status_code == 200
    return page


def test_the_page_offers_the_scale_with_its_keys_only_when_the_project_has_one(
    client: Client, tenancy: Tenancy, scaled: Project
) -> None:
    plain = factories.make_project(tenancy.org_a, name="Plain", min_judgments=1, max_judgments=1, gold_rate=0)
    factories.make_task(scaled)
    factories.make_task(plain)
    client.force_login(tenancy.annotator_a)
    text = _page(client, scaled).text
    for key, title in (("z", "Slightly better"), ("x", "Clearly better"), ("c", "Much better")):
        assert f'data-key="{key}"' in text and title in text
    assert 'name="strength"' not in _page(client, plain).text


@pytest.mark.parametrize("a_left", [True, False])
def test_a_decisive_choice_stores_its_strength(client: Client, tenancy: Tenancy, scaled: Project, a_left: bool) -> None:
    task = factories.make_task(scaled)
    client.force_login(tenancy.annotator_a)
    page = _page(client, scaled)
    Lease.objects.filter(pk=page.context["lease"].pk).update(a_left=a_left)
    assert _post(client, page, choice="second", strength="3").status_code == 302
    judgment = Judgment.objects.get(task=task)
    assert (judgment.label, judgment.strength) == ("b" if a_left else "a", 3)


def test_a_decisive_choice_without_strength_is_refused_and_the_lease_kept(
    client: Client, tenancy: Tenancy, scaled: Project
) -> None:
    factories.make_task(scaled)
    client.force_login(tenancy.annotator_a)
    page = _page(client, scaled)
    response = _post(client, page, choice="first")
    assert response.status_code == 400
    assert "strength" in response.text and "how much better" in response.text
    assert not Judgment.objects.exists()
    assert Lease.objects.get(pk=page.context["lease"].pk).state == LeaseState.ACTIVE
    for bad in ("7", "much", "0"):
        response = _post(client, page, choice="first", strength=bad)
        assert response.status_code == 400 and "must be 1 (slightly), 2 (clearly) or 3 (much)" in response.text
    assert _post(client, page, choice="first", strength="1").status_code == 302
    assert Judgment.objects.get().strength == 1


@pytest.mark.parametrize("choice", ["tie", "both_bad"])
def test_a_strength_left_selected_before_a_tie_is_not_stored(
    client: Client, tenancy: Tenancy, scaled: Project, choice: str
) -> None:
    factories.make_task(scaled)
    client.force_login(tenancy.annotator_a)
    assert _post(client, _page(client, scaled), choice=choice, strength="2").status_code == 302
    judgment = Judgment.objects.get()
    assert (judgment.label, judgment.strength) == (choice, None)


def test_the_service_refuses_strength_where_it_does_not_apply(tenancy: Tenancy, scaled: Project) -> None:
    plain = factories.make_project(tenancy.org_a, name="Plain", min_judgments=1, max_judgments=1, gold_rate=0)
    factories.make_task(plain)
    factories.make_task(scaled)
    annotator = tenancy.annotator_a
    lease = next_task(annotator=annotator, project=plain)
    with pytest.raises(ValidationError) as error:
        judgment_submit(lease=lease, label="a", client_id="p1", seconds=1.0, actor=annotator, strength=2)
    assert "strength" in error.value.message_dict
    lease = next_task(annotator=annotator, project=scaled)
    with pytest.raises(ValidationError) as error:
        judgment_submit(lease=lease, label="tie", client_id="s1", seconds=1.0, actor=annotator, strength=2)
    assert error.value.message_dict["strength"] == ["applies only to a judgment that prefers A or B"]
    assert not Judgment.objects.exists()


def test_imports_validate_strength_too(tenancy: Tenancy, scaled: Project) -> None:
    task = factories.make_task(scaled)
    with pytest.raises(ValidationError) as error:
        judgment_record(task=task, annotator=tenancy.annotator_a, label="a", client_id="i1", a_left=True)
    assert "strength" in error.value.message_dict
    stored = judgment_record(
        task=task, annotator=tenancy.annotator_a, label="a", client_id="i1", a_left=True, strength=2
    )
    assert stored.strength == 2


def test_the_database_refuses_strength_on_a_tie_and_a_scale_on_a_categorical_project(
    tenancy: Tenancy, scaled: Project
) -> None:
    task = factories.make_task(scaled)
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(
            organization=tenancy.org_a,
            project=scaled,
            task=task,
            annotator=tenancy.annotator_a,
            label="tie",
            a_left=True,
            strength=1,
            client_id="db1",
        )
    categorical = factories.make_project(tenancy.org_a, name="Cats", kind=ProjectKind.CATEGORICAL)
    with pytest.raises(IntegrityError), transaction.atomic():
        Project.objects.filter(pk=categorical.pk).update(strength_scale=True)

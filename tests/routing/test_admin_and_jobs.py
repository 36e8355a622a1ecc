"""Routing in the customer admin (qualifications, requirements, predictions, judgment deletion) and its jobs."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from labeling.jobs import refresh_project_ranks_job
from labeling.models import Judgment, Project, SamplingStrategy, Task, TaskStatus
from routing.jobs import expire_leases_job
from routing.models import Lease, LeaseState, Qualification, QualificationKind, TaskRequirement
from routing.services import next_task
from tests import factories
from tests.conftest import Tenancy
from tests.labeling.test_admin_tenancy import admin_url, form_data
from tests.routing.helpers import annotators, judge


def test_adding_a_qualification_derives_its_kind_from_the_code(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(Qualification, "add")))
    data.update(code="  Lang:DE ", name="German")
    response = client.post(admin_url(Qualification, "add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    qualification = Qualification.objects.get()
    assert (qualification.code, qualification.kind, qualification.organization) == (
        "lang:de",
        QualificationKind.LANGUAGE,
        tenancy.org_a,
    )


def test_task_requirements_set_in_the_admin_restrict_routing(client: Client, tenancy: Tenancy) -> None:
    qualification = Qualification.objects.create(organization=tenancy.org_a, code="medical")
    client.force_login(tenancy.admin_a)
    url = admin_url(tenancy.task_a, "change", tenancy.task_a.pk)
    data = form_data(client.get(url))
    data.update(
        {
            "requirements-TOTAL_FORMS": "1",
            "requirements-0-qualification": qualification.pk,
            "requirements-0-min_level": 1,
        }
    )
    response = client.post(url, data)
    assert response.status_code == 302
    assert TaskRequirement.objects.get().task == tenancy.task_a
    tenancy.task_a.refresh_from_db()
    assert tenancy.task_a.is_restricted
    assert next_task(annotator=tenancy.annotator_a, project=tenancy.project_a) is None


def test_requirement_choices_offer_only_own_qualifications(client: Client, tenancy: Tenancy) -> None:
    own = Qualification.objects.create(organization=tenancy.org_a, code="medical")
    Qualification.objects.create(organization=tenancy.org_b, code="legal")
    client.force_login(tenancy.admin_a)
    response = client.get(admin_url(tenancy.task_a, "change", tenancy.task_a.pk))
    formset = next(f.formset for f in response.context["inline_admin_formsets"] if f.formset.prefix == "requirements")
    choices = formset.empty_form.fields["qualification"].queryset
    assert list(choices) == [own]


def test_predictions_entered_in_the_admin_are_validated_and_rank_the_task(client: Client, tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, sampling_strategy=SamplingStrategy.MARGIN)
    task = factories.make_task(project, "p-1")
    client.force_login(tenancy.admin_a)
    url = admin_url(task, "change", task.pk)
    data = form_data(client.get(url))
    data["predictions"] = "1.5"
    response = client.post(url, data)
    assert "from 0 to 1" in str(response.context["adminform"].form.errors["predictions"])
    data["predictions"] = "0.55"
    assert client.post(url, data).status_code == 302
    task.refresh_from_db()
    assert task.predictions == {"a": 0.55, "b": pytest.approx(0.45)}
    assert task.rank == pytest.approx(0.1)  # margin |p - (1 - p)|


def test_changing_the_strategy_in_the_admin_re_ranks_the_tasks(
    client: Client, tenancy: Tenancy, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[int] = []
    monkeypatch.setattr(refresh_project_ranks_job, "delay", queued.append)
    project = tenancy.project_a
    client.force_login(tenancy.admin_a)
    url = admin_url(project, "change", project.pk)
    data = form_data(client.get(url))
    data["sampling_strategy"] = SamplingStrategy.RANDOM
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, data).status_code == 302
    assert queued == [project.pk]
    refresh_project_ranks_job(project.pk)  # what the worker runs
    tenancy.task_a.refresh_from_db()
    assert tenancy.task_a.rank == tenancy.task_a.shuffle


@pytest.mark.django_db(transaction=True)
def test_deleting_a_judgment_in_the_admin_reopens_its_task(client: Client, tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, min_judgments=1, max_judgments=1, gold_rate=0)
    task = factories.make_task(project)
    judgment = judge(tenancy.annotator_a, project)
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETE
    client.force_login(tenancy.admin_a)
    response = client.post(admin_url(Judgment, "delete", judgment.pk), {"post": "yes"})
    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.status, task.judgment_count) == (TaskStatus.OPEN, 0)
    assert next_task(annotator=annotators(tenancy.org_a, 1)[0], project=project).task_id == task.pk


def test_leases_are_read_only_in_the_admin(client: Client, tenancy: Tenancy) -> None:
    lease = next_task(annotator=tenancy.annotator_a, project=tenancy.project_a)
    client.force_login(tenancy.admin_a)
    assert client.get(admin_url(Lease, "add")).status_code == 403
    response = client.post(admin_url(lease, "change", lease.pk), {"state": "submitted"})
    assert response.status_code == 403
    lease.refresh_from_db()
    assert lease.state == LeaseState.ACTIVE


def test_the_beat_schedule_runs_the_expiry_job(tenancy: Tenancy) -> None:
    assert settings.CELERY_BEAT_SCHEDULE["expire-leases"]["task"] == expire_leases_job.name
    lease = next_task(annotator=tenancy.annotator_a, project=tenancy.project_a)
    Lease.objects.filter(pk=lease.pk).update(
        leased_at=timezone.now() - timedelta(hours=1), expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert expire_leases_job() == 1  # what the worker runs on beat's schedule
    lease.refresh_from_db()
    assert lease.state == LeaseState.EXPIRED


def test_tasks_created_with_predictions_get_their_rank(tenancy: Tenancy) -> None:
    project: Project = factories.make_project(tenancy.org_a, sampling_strategy=SamplingStrategy.ENTROPY)
    with_prediction = factories.make_task(project, "x", predictions={"a": 0.5})
    without = factories.make_task(project, "y")
    assert with_prediction.rank < 0 < without.rank
    assert Task.objects.get(pk=without.pk).rank == without.rank
    assert json.dumps(Task.objects.get(pk=with_prediction.pk).predictions) == json.dumps({"a": 0.5, "b": 0.5})

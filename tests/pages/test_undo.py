"""Undo of the judgment just submitted: within ``UNDO_SECONDS``, while its lease would still be live and its task is
open; the judgment goes, the lease is active again, the next lease given meanwhile is released."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from labeling.models import Judgment, Project, Task, TaskStatus
from routing.models import Lease, LeaseState
from routing.services import UNDO_SECONDS, LeaseError, judgment_submit, judgment_undo, next_task
from tests import factories
from tests.conftest import Tenancy

INLINE = {"X-Requested-With": "fetch", "X-Next-Task": "inline"}


@pytest.fixture
def project(tenancy: Tenancy) -> Project:
    project = factories.make_project(tenancy.org_a, name="Undo", min_judgments=2, max_judgments=3, gold_rate=0)
    for n in range(3):
        factories.make_task(project, f"u-{n}")
    return project


def _submit_and_move_on(tenancy: Tenancy, project: Project) -> tuple[Lease, Lease]:
    lease = next_task(annotator=tenancy.annotator_a, project=project)
    assert lease is not None
    judgment_submit(lease=lease, label="a", client_id="c1", seconds=5.0, actor=tenancy.annotator_a)
    following = next_task(annotator=tenancy.annotator_a, project=project)
    assert following is not None and following.pk != lease.pk
    return lease, following


def test_undo_takes_the_judgment_back_and_releases_the_next_lease(tenancy: Tenancy, project: Project) -> None:
    lease, following = _submit_and_move_on(tenancy, project)
    assert Task.objects.get(pk=lease.task_id).judgment_count == 1
    judgment_undo(lease=lease, actor=tenancy.annotator_a)
    lease.refresh_from_db()
    following.refresh_from_db()
    assert lease.state == LeaseState.ACTIVE and lease.finished_at is None
    assert following.state == LeaseState.EXPIRED
    assert not Judgment.objects.exists() and Task.objects.get(pk=lease.task_id).judgment_count == 0
    # The task is theirs again: the router resumes it, and a new answer is stored.
    assert next_task(annotator=tenancy.annotator_a, project=project).pk == lease.pk  # type: ignore[union-attr]
    judgment_submit(lease=lease, label="b", client_id="c2", seconds=6.0, actor=tenancy.annotator_a)
    assert Judgment.objects.get().label == "b"


@pytest.mark.parametrize(
    ("case", "code"),
    [("too late", "undo_too_late"), ("settled", "undo_settled"), ("lease over", "undo_expired"), ("twice", "")],
)
def test_undo_is_refused_and_changes_nothing(tenancy: Tenancy, project: Project, case: str, code: str) -> None:
    lease, following = _submit_and_move_on(tenancy, project)
    now = timezone.now()
    if case == "too late":
        now += timedelta(seconds=UNDO_SECONDS + 1)
    elif case == "settled":
        Task.objects.filter(pk=lease.task_id).update(status=TaskStatus.COMPLETE)
    elif case == "lease over":
        expires = now - timedelta(seconds=1)
        Lease.objects.filter(pk=lease.pk).update(leased_at=expires - timedelta(minutes=30), expires_at=expires)
    else:
        judgment_undo(lease=lease, actor=tenancy.annotator_a)
        code = "not_submitted"
    before = list(Judgment.objects.values_list("pk", flat=True))
    with pytest.raises(LeaseError) as error:
        judgment_undo(lease=lease, actor=tenancy.annotator_a, now=now)
    assert error.value.code == code
    assert list(Judgment.objects.values_list("pk", flat=True)) == before
    if case != "twice":
        lease.refresh_from_db()
        following.refresh_from_db()
        assert lease.state == LeaseState.SUBMITTED and following.state == LeaseState.ACTIVE


def test_someone_elses_lease_cannot_be_undone(tenancy: Tenancy, project: Project) -> None:
    lease, _ = _submit_and_move_on(tenancy, project)
    with pytest.raises(LeaseError):
        judgment_undo(lease=lease, actor=tenancy.manager_a)
    assert Judgment.objects.count() == 1


def test_the_page_undo_returns_the_task_again(client: Client, tenancy: Tenancy, project: Project) -> None:
    client.force_login(tenancy.annotator_a)
    page = client.get(reverse("annotate", args=[project.pk]))
    lease = page.context["lease"]
    response = client.post(
        reverse("annotate-submit", args=[project.pk, lease.pk]),
        {"choice": "first", "client_id": page.context["client_id"]},
        headers=INLINE,
    )
    assert response.json()["lease"] != lease.pk
    body = client.post(reverse("annotate-undo", args=[project.pk, lease.pk]), headers=INLINE).json()
    assert body["undone"] is True and body["lease"] == lease.pk and f'data-lease="{lease.pk}"' in body["html"]
    assert not Judgment.objects.exists()
    # Again: nothing to undo, said on the page, and the same task stays.
    body = client.post(reverse("annotate-undo", args=[project.pk, lease.pk]), headers=INLINE).json()
    assert body["undone"] is False and body["lease"] == lease.pk and "no judgment on this task" in body["html"]
    # Another member of the organization: 404, like a missing lease.
    client.force_login(factories.make_member(tenancy.org_a))
    assert client.post(reverse("annotate-undo", args=[project.pk, lease.pk])).status_code == 404

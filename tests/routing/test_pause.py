"""A paused annotator (issue 15, item 9): refused and released.

A pause comes from the membership (an admin) or from the quality engine in one project. While it holds, a submit
stores nothing and says so plainly, the router gives no task and releases the lease the annotator held (its slot
frees at once), a skip is still allowed, and the beat job releases the leases of paused annotators who do not come
back.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from labeling.models import Judgment, Project
from quality.models import AnnotatorScore
from routing.models import Lease, LeaseState
from routing.services import AnnotatorPaused, judgment_submit, lease_skip, leases_expire, next_task
from tests import factories
from tests.conftest import Tenancy
from tests.routing.helpers import annotators

PAUSED_TEXT = "Your work in this project is paused"


@pytest.fixture(autouse=True)
def seeded_rng(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("routing.services.leases._rng", random.Random(9))


@pytest.fixture
def project(tenancy: Tenancy) -> Project:
    return factories.make_project(tenancy.org_a, name="Prefs", min_judgments=1, max_judgments=1, gold_rate=0)


def pause_membership(annotator: Any, project: Project) -> None:
    annotator.memberships.filter(organization=project.organization).update(
        paused_at=timezone.now(), pause_reason="Checking your recent work"
    )


def pause_in_project(annotator: Any, project: Project) -> None:
    """What the quality engine's auto-pause writes."""
    AnnotatorScore.objects.create(
        organization=project.organization,
        project=project,
        annotator=annotator,
        paused_at=timezone.now(),
        pause_reason="Paused automatically: judgments agree with other annotators about as often as random clicking.",
        computed_at=timezone.now(),
    )


PAUSES = pytest.mark.parametrize("pause", [pause_membership, pause_in_project], ids=["membership", "quality"])
Pause = Callable[[Any, Project], None]


def _submit(lease: Lease, annotator: Any, client_id: str = "c-1") -> Judgment:
    return judgment_submit(lease=lease, label="a", client_id=client_id, seconds=2.0, actor=annotator)


@PAUSES
def test_a_paused_annotators_submit_stores_nothing(tenancy: Tenancy, project: Project, pause: Pause) -> None:
    factories.make_task(project)
    lease = next_task(annotator=tenancy.annotator_a, project=project)
    pause(tenancy.annotator_a, project)
    with pytest.raises(AnnotatorPaused, match=PAUSED_TEXT):
        _submit(lease, tenancy.annotator_a)
    assert not Judgment.objects.exists()
    lease.refresh_from_db()
    assert lease.state == LeaseState.ACTIVE  # the submit writes nothing; the router releases it


@PAUSES
def test_the_router_releases_a_paused_annotators_lease_and_its_slot_frees_at_once(
    tenancy: Tenancy, project: Project, pause: Pause
) -> None:
    (task,) = [factories.make_task(project)]
    holder, other = tenancy.annotator_a, annotators(tenancy.org_a, 1)[0]
    lease = next_task(annotator=holder, project=project)
    assert next_task(annotator=other, project=project) is None  # the only slot is held
    pause(holder, project)
    before = timezone.now()
    assert next_task(annotator=holder, project=project) is None  # not handed back
    lease.refresh_from_db()
    assert lease.state == LeaseState.EXPIRED
    assert before <= lease.finished_at < lease.expires_at  # released now, not at its expiry
    handed_on = next_task(annotator=other, project=project)
    assert handed_on is not None and handed_on.task_id == task.pk
    with pytest.raises(AnnotatorPaused):
        _submit(lease, holder)
    assert not Judgment.objects.exists()


@PAUSES
def test_a_paused_annotator_may_still_skip_their_lease(tenancy: Tenancy, project: Project, pause: Pause) -> None:
    factories.make_task(project)
    lease = next_task(annotator=tenancy.annotator_a, project=project)
    pause(tenancy.annotator_a, project)
    skipped = lease_skip(lease=lease, actor=tenancy.annotator_a, reason="unclear")
    assert skipped.state == LeaseState.SKIPPED


def test_a_retry_of_a_judgment_stored_before_the_pause_returns_it(tenancy: Tenancy, project: Project) -> None:
    factories.make_task(project)
    factories.make_task(project)
    lease = next_task(annotator=tenancy.annotator_a, project=project)
    stored = _submit(lease, tenancy.annotator_a, client_id="page-7")
    pause_membership(tenancy.annotator_a, project)
    assert _submit(lease, tenancy.annotator_a, client_id="page-7").pk == stored.pk


def test_a_quality_pause_holds_in_its_own_project_only(tenancy: Tenancy, project: Project) -> None:
    other_project = factories.make_project(tenancy.org_a, name="Other", min_judgments=1, max_judgments=1, gold_rate=0)
    factories.make_task(project)
    factories.make_task(other_project)
    elsewhere = next_task(annotator=tenancy.annotator_a, project=other_project)
    pause_in_project(tenancy.annotator_a, project)
    assert next_task(annotator=tenancy.annotator_a, project=project) is None
    assert next_task(annotator=tenancy.annotator_a, project=other_project).pk == elsewhere.pk
    assert _submit(elsewhere, tenancy.annotator_a).task_id == elsewhere.task_id


@PAUSES
def test_the_beat_job_releases_the_leases_of_paused_annotators_who_do_not_come_back(
    tenancy: Tenancy, project: Project, pause: Pause
) -> None:
    factories.make_task(project)
    factories.make_task(project)
    paused, working = tenancy.annotator_a, annotators(tenancy.org_a, 1)[0]
    stranded = next_task(annotator=paused, project=project)
    kept = next_task(annotator=working, project=project)
    pause(paused, project)
    assert leases_expire() == 1
    stranded.refresh_from_db()
    kept.refresh_from_db()
    assert stranded.state == LeaseState.EXPIRED and stranded.finished_at < stranded.expires_at
    assert kept.state == LeaseState.ACTIVE
    assert leases_expire() == 0


def test_a_lease_released_by_a_pause_comes_back_after_the_unpause_unless_gold(tenancy: Tenancy) -> None:
    """Released leases follow the expiry rules: a normal task may come back, a gold task never."""
    project = factories.make_project(tenancy.org_a, min_judgments=2, max_judgments=2, gold_rate=1.0)
    gold = factories.make_task(project, "gold", gold_label="a")
    normal = factories.make_task(project, "normal")
    annotator = tenancy.annotator_a
    membership = annotator.memberships.get(organization=tenancy.org_a)
    seen = []
    for _ in range(2):
        lease = next_task(annotator=annotator, project=project)
        seen.append(lease.task_id)
        pause_membership(annotator, project)
        assert next_task(annotator=annotator, project=project) is None
        membership.refresh_from_db()
        membership.paused_at = None
        membership.save()
    assert seen == [gold.pk, normal.pk]
    assert next_task(annotator=annotator, project=project).task_id == normal.pk


# --- The pages --------------------------------------------------------------------------------------------------
def _open(client: Client, project: Project) -> Any:
    response = client.get(reverse("annotate", args=[project.pk]))
    assert response.status_code == 200 and "lease" in response.context
    return response


@PAUSES
@pytest.mark.parametrize("script", [False, True], ids=["form", "page-script"])
def test_a_paused_annotators_post_says_so_plainly_and_stores_nothing(
    client: Client, tenancy: Tenancy, project: Project, pause: Pause, script: bool
) -> None:
    factories.make_task(project)
    client.force_login(tenancy.annotator_a)
    page = _open(client, project)
    pause(tenancy.annotator_a, project)
    lease = page.context["lease"]
    response = client.post(
        reverse("annotate-submit", args=[project.pk, lease.pk]),
        {"choice": "first", "client_id": page.context["client_id"]},
        headers={"X-Requested-With": "fetch"} if script else {},
    )
    url = reverse("annotate", args=[project.pk])
    if script:
        assert response.json() == {"next": url}
    else:
        assert response.status_code == 302 and response["Location"] == url
    shown = client.get(url)
    assert PAUSED_TEXT in shown.text and "not saved" in shown.text
    assert "lease" not in shown.context  # the done page, with the pause notice
    assert not Judgment.objects.exists()
    assert Lease.objects.get().state == LeaseState.EXPIRED


def test_a_pause_while_the_page_is_open_takes_the_task_away_on_reload(
    client: Client, tenancy: Tenancy, project: Project
) -> None:
    factories.make_task(project)
    client.force_login(tenancy.annotator_a)
    _open(client, project)
    pause_membership(tenancy.annotator_a, project)
    reloaded = client.get(reverse("annotate", args=[project.pk]))
    assert "lease" not in reloaded.context and "paused" in reloaded.text
    assert Lease.objects.get().finished_at is not None
    assert Lease.objects.get().finished_at < timezone.now() + timedelta(seconds=1)

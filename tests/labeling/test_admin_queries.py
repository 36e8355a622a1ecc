"""The busiest admin pages run a fixed number of queries, however many rows the organization has."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.db.models import Model
from django.test import Client
from django.test.utils import CaptureQueriesContext

from labeling.models import Judgment, Membership, Project, Role, Task
from labeling.services import project_stats_refresh
from routing.services import judgment_record
from tests import factories
from tests.conftest import Tenancy
from tests.labeling.test_admin_tenancy import admin_url, results

#: Session, user, membership (middleware), membership (template context), COUNT and rows: six for every page;
#: plus one per list filter that reads its choices (task: project; judgments: project, annotator, label).
TASK_LIST_QUERIES = 7


def _queries(client: Client, url: str, expected_rows: int) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert len(results(response)) == expected_rows
    return len(captured)


def _grow_tasks(tenancy: Tenancy, total: int) -> None:
    """``total`` tasks in org A's project (some of them gold and complete), plus rows in org B that must not count."""
    while (n := Task.objects.filter(project=tenancy.project_a).count()) < total:
        factories.make_task(tenancy.project_a, gold_label="a" if n % 5 == 0 else None)
    Task.objects.filter(project=tenancy.project_a, gold_label__isnull=False).update(status="complete")
    factories.make_task(tenancy.project_b)


def _grow_projects(tenancy: Tenancy, total: int) -> None:
    while Project.objects.for_org(tenancy.org_a).count() < total:
        project = factories.make_project(tenancy.org_a)
        factories.make_task(project)
        project_stats_refresh(project_id=project.pk)
    factories.make_project(tenancy.org_b)


def _grow_annotations(tenancy: Tenancy, total: int) -> None:
    annotators = [tenancy.annotator_a, tenancy.manager_a, tenancy.admin_a]
    while (n := Judgment.objects.for_org(tenancy.org_a).count()) < total:
        task = factories.make_task(tenancy.project_a)
        annotator = annotators[n % len(annotators)]
        judgment_record(task=task, annotator=annotator, label="a", client_id=f"c-{n}", a_left=True)


def _grow_members(tenancy: Tenancy, total: int) -> None:
    while Membership.objects.for_org(tenancy.org_a).count() < total:
        factories.make_member(tenancy.org_a, Role.ANNOTATOR)


@pytest.mark.parametrize(
    ("model", "grow", "max_queries"),
    [
        (Task, _grow_tasks, TASK_LIST_QUERIES),
        (Project, _grow_projects, 7),  # COUNT twice (filters shown), no filter reads rows, stats joined
        (Judgment, _grow_annotations, 9),
        (Membership, _grow_members, 7),
    ],
    ids=["task", "project", "judgment", "membership"],
)
def test_change_list_queries_do_not_grow_with_rows(
    client: Client,
    tenancy: Tenancy,
    django_assert_max_num_queries: Any,
    model: type[Model],
    grow: Callable[[Tenancy, int], None],
    max_queries: int,
) -> None:
    client.force_login(tenancy.admin_a)
    url = admin_url(model, "changelist")
    grow(tenancy, 5)
    few = _queries(client, url, 5)
    grow(tenancy, 50)
    many = _queries(client, url, 50)
    assert few == many
    with django_assert_max_num_queries(max_queries):
        assert client.get(url).status_code == 200


def test_task_list_beyond_one_page_has_the_same_count(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    url = admin_url(Task, "changelist")
    _grow_tasks(tenancy, 50)
    one_page = _queries(client, url, 50)
    _grow_tasks(tenancy, 80)
    assert _queries(client, url, 50) == one_page  # 50 a page; one COUNT (no full result count)


def test_filtered_and_searched_task_list_has_the_same_bound(
    client: Client, tenancy: Tenancy, django_assert_max_num_queries: Any
) -> None:
    _grow_tasks(tenancy, 50)
    client.force_login(tenancy.admin_a)
    for params in (
        {"project__id__exact": tenancy.project_a.pk},
        {"gold": "yes"},
        {"status__exact": "open"},
        {"q": "item"},
    ):
        with django_assert_max_num_queries(TASK_LIST_QUERIES):
            response = client.get(admin_url(Task, "changelist"), params)
        assert results(response)

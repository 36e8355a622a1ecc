"""PostgreSQL's bulk read and write for the quality job (``quality.pgarrays``) against the portable ORM path.

On PostgreSQL, ``project_data`` fetches every column as one binary array and ``_write_consensus`` upserts with one
statement; SQLite (and these tests, patched) take the ORM path. Both must give the same arrays and store the same
rows, down to the JSON text of the posteriors.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from unittest import mock

import numpy as np
import pytest
from django.db import connection

from labeling.models import Project, ProjectKind, Task
from quality import pgarrays, selectors
from quality.models import TaskConsensus
from quality.services import project_quality_recompute, recompute
from routing.services import judgment_record
from tests import factories
from tests.conftest import Tenancy
from tests.quality.population import plant
from tests.services import needs_postgres

pytestmark = needs_postgres


def _partition(codes: np.ndarray) -> np.ndarray:
    """Group codes renumbered by first appearance: equal exactly when two codings group alike."""
    _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inverse.reshape(-1)]


def _assert_same_data(project: Project) -> selectors.ProjectData:
    fast = selectors.project_data(project=project)
    with mock.patch.object(selectors, "_postgres_columns", selectors._portable_columns):
        portable = selectors.project_data(project=project)
    for field in dataclasses.fields(fast):
        ours, theirs = getattr(fast, field.name), getattr(portable, field.name)
        if field.name == "task_content":
            ours, theirs = _partition(ours), _partition(theirs)
        if isinstance(ours, list):
            assert ours == theirs, field.name
        else:
            assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs), field.name
    return fast


def test_pairwise_project_reads_the_same(tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, name="Bulk prefs")
    plant(project, {f"good{n}": "good" for n in range(4)} | {"left": "left"}, n_tasks=40, per_task=3)
    person = factories.make_member(tenancy.org_a)
    special = [
        {"prompt": "p", "response_a": "naïve café", "response_b": "naive cafe!", "model_a": "Zeta", "model_b": "ä"},
        {"prompt": "p", "response_a": "漢字かな", "response_b": "abcdefg", "model_a": "zeta", "model_b": "Zeta"},
        {"prompt": "p", "response_a": "🙂🙂", "response_b": "ok", "model_b": "model-x"},
        # Rows that validation would refuse (written around it): numbers, objects, empty model names.
        {"prompt": "p", "response_a": 12345, "response_b": {"nested": [1, 2]}, "model_a": ""},
        {"prompt": "p", "response_a": "naïve café", "response_b": "naive cafe!", "model_a": "Zeta", "model_b": "ä"},
        {"model_b": "ä", "prompt": "p", "response_b": "naive cafe!", "response_a": "naïve café", "model_a": "Zeta"},
    ]
    for n, payload in enumerate(special):
        if n == 3:
            task = Task.objects.create(organization=tenancy.org_a, project=project, external_id="raw", payload=payload)
        else:
            task = factories.make_task(project, f"special-{n}", payload=payload, gold_label="a" if n == 1 else None)
        if n != 2:  # one task without judgments
            judgment_record(task=task, annotator=person, label="ab"[n % 2], client_id=f"s{n}", a_left=n % 2 == 0)
    data = _assert_same_data(project)
    assert data.models == sorted({"Zeta", "zeta", "ä", "model-x", "model-y", "model-z"})
    assert data.task_len_a[-6:].tolist() == [10, 4, 2, 5, 10, 10]  # characters, not bytes
    content = data.task_content[-6:]
    assert content[0] == content[4] == content[5] != content[1]  # equal payloads (key order does not matter)


def test_categorical_and_empty_projects_read_the_same(tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, ProjectKind.CATEGORICAL, name="Bulk topics")
    assert _assert_same_data(project).n_tasks == 0
    person = factories.make_member(tenancy.org_a)
    for n in range(5):
        task = factories.make_task(project, f"c{n}", payload={"text": "same" if n < 2 else f"text {n}"})
        judgment_record(
            task=task, annotator=person, label=["positive", "negative", "neutral"][n % 3], client_id=f"c{n}"
        )
    data = _assert_same_data(project)
    assert data.n_judgments == 5 and data.models == [] and (data.task_model_a == -1).all()
    assert data.task_content[0] == data.task_content[1] != data.task_content[2]


def _consensus_rows(project: Project) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT task_id, label, confidence, posterior::text, agreement, n_judgments, method, organization_id "
            "FROM quality_taskconsensus WHERE project_id = %s ORDER BY task_id",
            [project.pk],
        )
        return cursor.fetchall()


def test_consensus_rows_are_stored_alike_inserted_or_updated(tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, name="Bulk writes")
    plant(project, {f"good{n}": "good" for n in range(5)} | {"random": "random"}, n_tasks=60, per_task=3)
    factories.make_task(project, "unjudged")  # no row
    portable = mock.patch.object(recompute, "_upsert_consensus_postgres", recompute._upsert_consensus_portable)

    project_quality_recompute(project_id=project.pk)  # bulk insert
    bulk = _consensus_rows(project)
    assert len(bulk) == 60 and any('"a": 1.0' in row[3] for row in bulk)  # gold: 1.0 as Python writes it
    with portable:
        project_quality_recompute(project_id=project.pk)  # ORM update
    assert _consensus_rows(project) == bulk
    project_quality_recompute(project_id=project.pk)  # bulk update
    assert _consensus_rows(project) == bulk
    TaskConsensus.objects.filter(project=project).delete()
    with portable:
        project_quality_recompute(project_id=project.pk)  # ORM insert
    assert _consensus_rows(project) == bulk


@pytest.mark.parametrize(
    ("pg_type", "values", "dtype"),
    [
        ("int4", [0, -1, 2**31 - 1, -(2**31)], np.int32),
        ("int8", [0, -1, 2**63 - 1, -(2**63)], np.int64),
        ("float8", [0.0, -0.5, 1e-300, np.inf, 1 / 3], np.float64),
        ("bool", [True, False, True], np.bool_),
        ("int8", [], np.int64),
    ],
)
def test_columns_travel_both_ways_unchanged(tenancy: Tenancy, pg_type: str, values: list[Any], dtype: Any) -> None:
    column = np.array(values, dtype=dtype)
    row = pgarrays.fetch_row(f"SELECT array_send(%s::{pg_type}[]), cardinality(%s::{pg_type}[])", [
        pgarrays.Column(column, pg_type), pgarrays.Column(column, pg_type)
    ])  # fmt: skip
    assert row[1] == len(values)
    back = pgarrays.from_array(row[0], dtype)
    assert back.dtype == dtype and np.array_equal(back, column)
    nan = pgarrays.fetch_row("SELECT array_send(%s::float8[])", [pgarrays.Column(np.array([np.nan]), "float8")])
    assert np.isnan(pgarrays.from_array(nan[0], np.float64)).all()
    assert pgarrays.from_array(None, dtype).size == 0
    with pytest.raises(ValueError, match="non-NULL"):
        pgarrays.from_array(pgarrays.fetch_row("SELECT array_send(ARRAY[1, NULL]::int8[])", [])[0], np.int64)

"""The models renamed for one vocabulary (Annotation → Judgment, Assignment → Lease, ProjectStats.annotations →
judgments) keep their tables and columns: the migrations change Django's state only, and they reverse."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from labeling.models import Judgment, ProjectStats
from routing.models import Lease
from tests.conftest import Tenancy

BEFORE = [("labeling", "0012_annotation_covered_keys"), ("routing", "0002_postgres_composite_keys")]
AFTER = [("labeling", "0013_judgment"), ("routing", "0003_lease")]


def _migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)


def _tables() -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.table_names(cursor))


@pytest.mark.django_db(transaction=True)
def test_the_renames_keep_tables_columns_and_rows_both_ways(tenancy: Tenancy) -> None:
    assert Judgment._meta.db_table == "labeling_annotation" and Lease._meta.db_table == "routing_assignment"
    assert ProjectStats._meta.get_field("judgments").column == "annotations"
    _migrate(AFTER)  # the tables as the renames left them (later migrations add others)
    tables = _tables()
    try:
        old = _migrate(BEFORE).loader.project_state(BEFORE).apps
        assert _tables() == tables  # nothing moved in the database
        annotation, assignment = old.get_model("labeling", "Annotation"), old.get_model("routing", "Assignment")
        assert annotation._meta.db_table == "labeling_annotation"
        assert assignment._meta.db_table == "routing_assignment"
        stats = old.get_model("labeling", "ProjectStats")
        assert stats._meta.get_field("annotations").column == "annotations"
        row = annotation.objects.create(
            organization_id=tenancy.org_a.pk,
            project_id=tenancy.project_a.pk,
            task_id=tenancy.task_a.pk,
            annotator_id=tenancy.annotator_a.pk,
            label="a",
            a_left=True,
            client_id="before-the-rename",
        )
    finally:
        _migrate(AFTER)
    assert _tables() == tables
    assert not {"labeling_judgment", "routing_lease"} & _tables()
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    assert Judgment.objects.get(pk=row.pk).client_id == "before-the-rename"

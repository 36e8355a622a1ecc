"""Database helpers: composite foreign keys that PostgreSQL enforces and Django cannot express (for migrations),
and the few primitives every app's hand-written hot-path SQL runs through (``routing.sql``, ``quality.sql``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, migrations

# (table, constraint name, local columns, "target_table (target columns)")
CompositeKey = tuple[str, str, str, str]


def composite_foreign_keys(constraints: list[CompositeKey]) -> migrations.RunPython:
    """A migration operation adding ``constraints`` on PostgreSQL (a no-op elsewhere), reversibly.

    All are ``DEFERRABLE INITIALLY DEFERRED`` like Django's own foreign keys, so cascaded deletes in any order work.
    SQLite cannot add constraints to existing tables; there the same rules are enforced by the services and forms.
    """

    def add(apps: object, schema_editor: object) -> None:
        if schema_editor.connection.vendor != "postgresql":  # type: ignore[attr-defined]
            return
        for table, name, columns, target in constraints:
            schema_editor.execute(  # type: ignore[attr-defined]
                f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY {columns} REFERENCES {target} "
                "DEFERRABLE INITIALLY DEFERRED"
            )

    def drop(apps: object, schema_editor: object) -> None:
        if schema_editor.connection.vendor != "postgresql":  # type: ignore[attr-defined]
            return
        for table, name, _, _ in constraints:
            schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")  # type: ignore[attr-defined]

    return migrations.RunPython(add, drop)


def composite_foreign_keys_drop(constraints: list[CompositeKey]) -> migrations.RunPython:
    """The reverse of :func:`composite_foreign_keys`: drops ``constraints`` (re-adds them when unapplied)."""
    adding = composite_foreign_keys(constraints)
    return migrations.RunPython(adding.reverse_code, adding.code)


def covered_single_keys_drop(
    table: str, columns: list[str], *, keep_indexes: tuple[str, ...] = ()
) -> migrations.RunPython:
    """A migration operation that, on PostgreSQL, drops the single-column foreign keys and indexes Django made for
    ``columns`` of ``table`` where a composite key already does their work (a no-op elsewhere), reversibly.

    The composite foreign key ``(organization_id, project_id) -> project (organization_id, id)`` proves that the
    project exists and belongs to the row's organization, so the two single-column foreign keys only add a check
    per inserted row (a tenth of a bulk import's time); the composite unique indexes that start with each column
    serve every lookup the single-column indexes served. Django finds constraints by introspection when it alters
    a field later, so the model keeps declaring the keys (and SQLite, which has no composite keys, keeps them).
    ``keep_indexes`` names the columns whose index stays (no composite index starts with them, and a lookup or a
    cascaded delete by that column alone needs one): only their foreign key is dropped.
    """

    def constraint_names(schema_editor: Any, column: str) -> tuple[list[str], list[str]]:
        with schema_editor.connection.cursor() as cursor:
            found = schema_editor.connection.introspection.get_constraints(cursor, table)
        foreign = [name for name, info in found.items() if info["foreign_key"] and info["columns"] == [column]]
        indexes = [
            name
            for name, info in found.items()
            if info["index"] and not info["unique"] and not info["primary_key"] and info["columns"] == [column]
        ]
        return foreign, indexes

    def drop(apps: object, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for column in columns:
            foreign, indexes = constraint_names(schema_editor, column)
            for name in foreign:
                schema_editor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            for name in [] if column in keep_indexes else indexes:
                schema_editor.execute(f'DROP INDEX "{name}"')

    def restore(apps: object, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for column in columns:
            target = "labeling_" + column.removesuffix("_id")
            schema_editor.execute(
                f'ALTER TABLE {table} ADD CONSTRAINT "{table}_{column}_fk" FOREIGN KEY ({column}) '
                f"REFERENCES {target} (id) DEFERRABLE INITIALLY DEFERRED"
            )
            if column not in keep_indexes:
                schema_editor.execute(f'CREATE INDEX "{table}_{column}_idx" ON {table} ({column})')

    return migrations.RunPython(drop, restore)


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@contextmanager
def raw_cursor(sql: str, params: Any) -> Iterator[Any]:
    """A cursor that has run ``sql``, inside the current transaction.

    On PostgreSQL a server-side-binding cursor on the same connection runs it as a prepared statement: planning
    the pick costs ~4x its execution, and a prepared statement plans once per connection.
    """
    if is_postgres():
        import psycopg

        connection.ensure_connection()
        raw = connection.connection
        with psycopg.Cursor(raw) as cursor:
            if settings.DATABASE_PREPARED_STATEMENTS:
                # Automatic preparation is off for the connection (config/settings.py); this statement is prepared
                # explicitly, which psycopg allows only while a threshold is set.
                previous, raw.prepare_threshold = raw.prepare_threshold, 0
                try:
                    cursor.execute(sql, params, prepare=True)
                finally:
                    raw.prepare_threshold = previous
            else:
                cursor.execute(sql, params)
            yield cursor
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            yield cursor


def fetch_one(sql: str, params: Any) -> tuple | None:
    with raw_cursor(sql, params) as cursor:
        return cursor.fetchone()


def execute(sql: str, params: Any) -> int:
    with raw_cursor(sql, params) as cursor:
        return cursor.rowcount


def timestamp(value: datetime) -> Any:
    """A datetime as the backend stores it (SQLite compares timestamps as text in its own format)."""
    return connection.ops.adapt_datetimefield_value(value)


def json_value(value: Any) -> Any:
    """A JSON column's value: PostgreSQL's driver decodes it, SQLite returns the text."""
    return orjson.loads(value) if isinstance(value, str) else value


def json_text(value: Any) -> str | None:
    """A value for a JSON column as a text parameter (``None`` stays NULL)."""
    return None if value is None else orjson.dumps(value).decode()


def placeholders(values: list[Any]) -> str:
    """``%s, %s, …``: one placeholder per value, for an ``IN (…)`` list (SQLite)."""
    return ", ".join(["%s"] * len(values))


def int_array(values: Iterable[int]) -> str:
    """A PostgreSQL array literal of whole numbers, as one text parameter: the driver would adapt a list element by
    element in Python, which cost more than the statements it feeds."""
    return "{" + ",".join(map(str, values)) + "}"

"""Database helpers shared by migrations: composite foreign keys that PostgreSQL enforces and Django cannot express."""

from __future__ import annotations

from django.db import migrations

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

"""PostgreSQL: leave half of every consensus page free, so that the recompute's updates are HOT.

Every recompute rewrites every task's consensus row (``quality.services._write_consensus``). None of the indexed
columns change, so PostgreSQL can keep each new row version on its old page without touching the five indexes (a
heap-only tuple), but only if that page has room for it. At the default fillfactor of 100 a page has none, and a
recompute of 333,000 rows took 3.7-4.8 s; at 45 it takes 1.3 s (bench/quality.py), for a table about twice as
large. Only future writes use the setting (a no-op on SQLite).
"""

from django.db import migrations

TABLE = "quality_taskconsensus"


def set_fillfactor(apps: object, schema_editor: object) -> None:
    if schema_editor.connection.vendor == "postgresql":  # type: ignore[attr-defined]
        schema_editor.execute(f"ALTER TABLE {TABLE} SET (fillfactor = 45)")  # type: ignore[attr-defined]


def reset_fillfactor(apps: object, schema_editor: object) -> None:
    if schema_editor.connection.vendor == "postgresql":  # type: ignore[attr-defined]
        schema_editor.execute(f"ALTER TABLE {TABLE} RESET (fillfactor)")  # type: ignore[attr-defined]


class Migration(migrations.Migration):
    dependencies = [("quality", "0001_quality")]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]

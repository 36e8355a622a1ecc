"""PostgreSQL: drop the task table's single-column keys on organization_id and project_id, which composite keys
cover (see ``labeling/db.py``): each cost a check or an index entry per inserted task."""

from django.db import migrations

from labeling.db import covered_single_keys_drop


class Migration(migrations.Migration):
    dependencies = [("labeling", "0009_import_jobs")]

    operations = [covered_single_keys_drop("labeling_task", ["organization_id", "project_id"])]

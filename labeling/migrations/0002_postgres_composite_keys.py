"""PostgreSQL: composite foreign keys that make cross-tenant and out-of-vocabulary rows impossible.

- a label, task, annotation or stats row belongs to the same organization as its project;
- an annotation's task belongs to the annotation's project;
- an annotation's label and a task's gold label are labels of that project.

All are ``DEFERRABLE INITIALLY DEFERRED`` like Django's own foreign keys, so cascaded deletes in any order work.
SQLite cannot add constraints to existing tables; there the same rules are enforced by the services and forms.
"""

from django.db import migrations

CONSTRAINTS = [
    (
        "labeling_label",
        "label_project_same_org_fk",
        "(organization_id, project_id)",
        "labeling_project (organization_id, id)",
    ),
    (
        "labeling_task",
        "task_project_same_org_fk",
        "(organization_id, project_id)",
        "labeling_project (organization_id, id)",
    ),
    (
        "labeling_task",
        "task_gold_label_in_project_fk",
        "(project_id, gold_label)",
        "labeling_label (project_id, value)",
    ),
    (
        "labeling_annotation",
        "annotation_project_same_org_fk",
        "(organization_id, project_id)",
        "labeling_project (organization_id, id)",
    ),
    ("labeling_annotation", "annotation_task_in_project_fk", "(project_id, task_id)", "labeling_task (project_id, id)"),
    (
        "labeling_annotation",
        "annotation_label_in_project_fk",
        "(project_id, label)",
        "labeling_label (project_id, value)",
    ),
    (
        "labeling_projectstats",
        "projectstats_project_same_org_fk",
        "(organization_id, project_id)",
        "labeling_project (organization_id, id)",
    ),
]


def add_constraints(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, name, columns, target in CONSTRAINTS:
        schema_editor.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY {columns} REFERENCES {target} "
            "DEFERRABLE INITIALLY DEFERRED"
        )


def drop_constraints(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, name, _, _ in CONSTRAINTS:
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("labeling", "0001_initial")]

    operations = [migrations.RunPython(add_constraints, drop_constraints)]

"""PostgreSQL: composite foreign keys that make cross-tenant and out-of-vocabulary rows impossible.

- a label, task, annotation or stats row belongs to the same organization as its project;
- an annotation's task belongs to the annotation's project;
- an annotation's label and a task's gold label are labels of that project.

See ``labeling/db.py`` for how they are added.
"""

from django.db import migrations

from labeling.db import composite_foreign_keys

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


class Migration(migrations.Migration):
    dependencies = [("labeling", "0001_initial")]

    operations = [composite_foreign_keys(CONSTRAINTS)]

"""One key from a judgment to its task proves the task, its project and its organization at once.

A judgment had two composite keys, ``(project_id, task_id) -> task (project_id, id)`` and
``(organization_id, project_id) -> project (organization_id, id)``: two checks at commit per judgment written (a
tenth of a bulk import's time each). ``(organization_id, project_id, task_id) -> task (organization_id, project_id,
id)`` says as much (the task's own ``(organization_id, project_id) -> project`` key does the rest) with one. The
task gets the unique key it needs, ``(project_id, id, organization_id)``; ``routing`` moves the lease's keys to it,
then ``0017`` drops the ``(project_id, id)`` key it replaces. PostgreSQL only, as every composite foreign key.
"""

from django.db import migrations, models

from labeling.db import composite_foreign_keys, composite_foreign_keys_drop


class Migration(migrations.Migration):
    dependencies = [("labeling", "0015_annotation_org_annotator_covered")]

    operations = [
        migrations.AddConstraint(
            model_name="task",
            constraint=models.UniqueConstraint(
                fields=("project", "id", "organization"), name="task_project_id_org_unique"
            ),
        ),
        composite_foreign_keys(
            [
                (
                    "labeling_annotation",
                    "annotation_task_in_org_project_fk",
                    "(organization_id, project_id, task_id)",
                    "labeling_task (organization_id, project_id, id)",
                )
            ]
        ),
        composite_foreign_keys_drop(
            [
                (
                    "labeling_annotation",
                    "annotation_project_same_org_fk",
                    "(organization_id, project_id)",
                    "labeling_project (organization_id, id)",
                ),
                (
                    "labeling_annotation",
                    "annotation_task_in_project_fk",
                    "(project_id, task_id)",
                    "labeling_task (project_id, id)",
                ),
            ]
        ),
    ]

"""A lease's ``(organization_id, project_id, task_id)`` points at its task's ``(organization_id, project_id, id)``
(labeling ``0016``): one check proves the task, its project and its organization, where two did."""

from django.db import migrations

from labeling.db import composite_foreign_keys, composite_foreign_keys_drop


class Migration(migrations.Migration):
    dependencies = [("routing", "0004_lease_response_order"), ("labeling", "0016_task_org_project_key")]

    operations = [
        composite_foreign_keys(
            [
                (
                    "routing_assignment",
                    "assignment_task_in_org_project_fk",
                    "(organization_id, project_id, task_id)",
                    "labeling_task (organization_id, project_id, id)",
                )
            ]
        ),
        composite_foreign_keys_drop(
            [
                (
                    "routing_assignment",
                    "assignment_same_org_project_fk",
                    "(organization_id, project_id)",
                    "labeling_project (organization_id, id)",
                ),
                (
                    "routing_assignment",
                    "assignment_task_in_project_fk",
                    "(project_id, task_id)",
                    "labeling_task (project_id, id)",
                ),
            ]
        ),
    ]

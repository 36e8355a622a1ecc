"""PostgreSQL: drop the judgment table's single-column keys that composite keys cover (see ``labeling/db.py``), as
``0010`` did for tasks: each cost a check at commit or an index entry per imported judgment.

- ``organization_id``: its foreign key is implied by ``(organization_id, project_id) -> project``, and the indexes
  ``(organization_id, annotator_id)`` and ``(organization_id, project_id, created_at)`` start with it;
- ``task_id``: its foreign key is implied by ``(project_id, task_id) -> task (project_id, id)``, and the unique
  index ``(task_id, annotator_id)`` starts with it;
- ``project_id``: its foreign key is implied by ``(organization_id, project_id) -> project``; its index stays (no
  other index starts with it, and deleting a project deletes its judgments by it).
"""

from django.db import migrations

from labeling.db import covered_single_keys_drop


class Migration(migrations.Migration):
    dependencies = [("labeling", "0011_invitation")]

    operations = [
        covered_single_keys_drop(
            "labeling_annotation", ["organization_id", "task_id", "project_id"], keep_indexes=("project_id",)
        )
    ]

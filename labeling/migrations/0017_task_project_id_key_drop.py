"""Drop the task's ``(project_id, id)`` key: the judgment's and the lease's keys point at
``(project_id, id, organization_id)`` now (``0016``, routing ``0005``), which serves its lookups too."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("labeling", "0016_task_org_project_key"), ("routing", "0005_lease_task_key")]

    operations = [migrations.RemoveConstraint(model_name="task", name="task_project_id_unique")]

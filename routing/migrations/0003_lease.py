"""One word per concept (docs/ARCHITECTURE.md): the model ``Assignment`` is ``Lease``. State only: the table keeps its
name (set on the old model first, so the rename has nothing to move); the reverse migration restores the old name."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0002_postgres_composite_keys"),
        ("labeling", "0013_judgment"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelTable(name="assignment", table="routing_assignment"),
        migrations.RenameModel(old_name="Assignment", new_name="Lease"),
        # The reverse names follow the word (Django changes nothing in the database for a related name).
        migrations.AlterField(
            model_name="lease",
            name="annotator",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="leases", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AlterField(
            model_name="lease",
            name="project",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="leases", to="labeling.project"
            ),
        ),
        migrations.AlterField(
            model_name="lease",
            name="task",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="leases", to="labeling.task"
            ),
        ),
    ]

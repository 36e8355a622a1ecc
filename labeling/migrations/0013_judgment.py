"""One word per concept (docs/ARCHITECTURE.md): the model ``Annotation`` is ``Judgment`` and ``ProjectStats.annotations``
is ``judgments``. State only: the table and the column keep their names (set on the old model first, so the rename
has nothing to move), and the reverse migration restores the old names."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0012_annotation_covered_keys"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelTable(name="annotation", table="labeling_annotation"),
        migrations.RenameModel(old_name="Annotation", new_name="Judgment"),
        migrations.AlterField(
            model_name="projectstats",
            name="annotations",
            field=models.PositiveIntegerField(default=0, db_column="annotations"),
        ),
        migrations.RenameField(model_name="projectstats", old_name="annotations", new_name="judgments"),
        # The reverse names follow the word (Django changes nothing in the database for a related name).
        migrations.AlterField(
            model_name="judgment",
            name="annotator",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="judgments", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AlterField(
            model_name="judgment",
            name="project",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="judgments", to="labeling.project"
            ),
        ),
        migrations.AlterField(
            model_name="judgment",
            name="task",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="judgments", to="labeling.task"
            ),
        ),
    ]

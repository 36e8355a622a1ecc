"""Drop the judgment index on (organization, annotator): the unique key (organization, annotator, client_id) starts
with the same columns and serves its lookups, and each index cost an entry per judgment written."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0014_questions"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="judgment",
            name="annotation_org_annotator",
        ),
    ]
